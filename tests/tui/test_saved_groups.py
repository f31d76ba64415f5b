"""A folder download survives a hang-up, and keys act on the row the user just started.

Both against real loopback servers at 80x24. The first hangs up (SIGHUP, as
a closed terminal does) while a grouped row downloads through a rate-limited
server; a new app restores the row, resumes the tree and mirrors it
identical. The second starts a folder download beside an old cancelled row
from a previous session: ctrl+x and then ctrl+r act on the new row, not on
row 0 where the list's cursor used to sit.
"""

from __future__ import annotations

import filecmp
import json
import os
import signal
from pathlib import Path

import pytest

from getfile_core import ServerLimits
from tests.support.servers import running_server
from tests.support.tui import pilot_wait_until
from tests.tui.test_folders import log_text, open_browser
from tui.app import GetfileApp
from tui.launch import Launch
from tui.queue_store import QueuedTransfer, QueueStore, SavedState
from tui.transfers import Transfer
from tui.widgets.transfer_list import TransferRow

SIZE = (80, 24)
#: 4 files of 200 kB at 64 KiB/s per connection (4 connections): about 3 s, so a
#: hang-up lands in the middle.
LIMITS = ServerLimits(rate=64 * 1024, grace=1)


@pytest.fixture
def served(tmp_path: Path) -> Path:
    top = tmp_path / "served"
    (top / "big" / "inner").mkdir(parents=True)
    (top / "big" / "empty").mkdir()
    for number in range(4):
        (top / "big" / "inner" / f"f{number}.bin").write_bytes(os.urandom(200_000))
    (top / "big" / "caf\xe9 [x].txt").write_bytes(b"odd name\n")
    (top / "old.bin").write_bytes(b"old\n")
    return top


def groups(app: GetfileApp) -> list[Transfer]:
    return [t for t in app.transfers.values() if t.group is not None]


def saved(state: Path) -> list[dict[str, object]]:
    return json.loads((state / "state.json").read_text())["transfers"]


async def test_a_folder_download_survives_a_hang_up(
    served: Path, dest: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with running_server(served, limits=LIMITS) as server:
        launch = Launch(host="127.0.0.1", port=str(server.port_bound), dest=str(dest))
        first = GetfileApp(launch, queue=QueueStore(state))
        async with first.run_test(size=SIZE) as pilot:
            await open_browser(pilot, first)
            await pilot.press("space", "enter")  # big/
            await pilot_wait_until(pilot, lambda: bool(groups(first)), what="the group")
            [running] = groups(first)
            await pilot_wait_until(
                pilot, lambda: running.progress is not None and running.progress.done > 0
            )
            os.kill(os.getpid(), signal.SIGHUP)  # the terminal went away
            await pilot_wait_until(pilot, lambda: not first.is_running, what="exit", timeout=20)
        [entry] = saved(state)
        assert entry["state"] == "active" and entry["url"].endswith(f":{server.port_bound}/")
        assert entry["group"]["names"] == ["big"] and entry["group"]["folder"] == ""
        assert not (dest / "big" / "inner" / "f3.bin").exists()  # it really was cut short

        second = GetfileApp(Launch(dest=str(tmp_path / "elsewhere")), queue=QueueStore(state))
        async with second.run_test(size=SIZE) as pilot:
            await pilot_wait_until(pilot, lambda: bool(groups(second)), what="the saved group")
            [again] = groups(second)
            await pilot_wait_until(pilot, lambda: again.state == "done", timeout=30)
            assert "resuming 1 unfinished download(s)" in log_text(second)
            assert again.folder == str(dest)  # its own destination, not this launch's
            row = second.transfer_list.row(again.id)
            assert row is not None and str(row.cell("name").content) == "+ big 5/5"
        compare = filecmp.dircmp(served / "big", dest / "big")
        assert not compare.diff_files and not compare.left_only and not compare.right_only
        inner = filecmp.dircmp(served / "big" / "inner", dest / "big" / "inner")
        assert not inner.diff_files and not inner.left_only and not inner.right_only
        assert not list(dest.rglob("*.getfile-part"))
        assert saved(state)[0]["state"] == "done"

        third = GetfileApp(Launch(dest=str(dest)), queue=QueueStore(state))
        async with third.run_test(size=SIZE) as pilot:  # finished: a finished row, not rerun
            await pilot_wait_until(pilot, lambda: bool(groups(third)), what="history")
            [finished] = groups(third)
            await pilot.pause()
            assert finished.state == "done" and finished.saved_path == str(dest)
            assert "resuming" not in log_text(third)


async def test_keys_act_on_the_download_just_started_not_on_an_old_row(
    served: Path, dest: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with running_server(served, limits=LIMITS) as server:
        old = QueuedTransfer(
            url=f"getfile://127.0.0.1:{server.port_bound}/old.bin",
            destination=str(dest),
            state=SavedState.CANCELLED,
        )
        with QueueStore(state) as store:
            store.save([old])
        launch = Launch(host="127.0.0.1", port=str(server.port_bound), dest=str(dest))
        app = GetfileApp(launch, queue=QueueStore(state))
        async with app.run_test(size=SIZE) as pilot:
            await pilot_wait_until(pilot, lambda: bool(app.transfers), what="the old row")
            [previous] = app.transfers.values()
            await open_browser(pilot, app)
            await pilot.press("space", "enter")  # big/
            await pilot_wait_until(pilot, lambda: bool(groups(app)), what="the group")
            [folder] = groups(app)
            await pilot_wait_until(pilot, lambda: app.transfer_list.selected_transfer() is folder)
            assert not isinstance(app.focused, TransferRow)  # the form keeps the focus
            await pilot_wait_until(pilot, lambda: folder.state == "downloading")
            await pilot.press("ctrl+x")
            await pilot_wait_until(pilot, lambda: folder.state == "cancelled", timeout=15)
            await pilot.press("ctrl+r")
            await pilot_wait_until(pilot, lambda: folder.state == "done", timeout=30)
            assert previous.state == "cancelled"  # the old row was left alone
            assert "old.bin: continuing" not in log_text(app)
            assert "old.bin: starting again" not in log_text(app)
            assert not (dest / "old.bin").exists()
