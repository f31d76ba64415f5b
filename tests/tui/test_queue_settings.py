"""The queue that survives a hang-up, the settings file, keys remapped, --version."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from getfile_core import FileServer, ServerLimits, part_name
from tests.support.tui import make_app, only_transfer, pilot_wait_until
from tests.tui.test_flows import log_text
from tui.app import GetfileApp
from tui.history import Bookmark, HistoryStore
from tui.launch import Launch, parse_args
from tui.queue_store import QueueStore
from tui.screens.keys import KeysScreen
from tui.settings import load_settings

SIZE = (80, 24)
BIG = 1024 * 1024  # at 256 KiB/s: four seconds, so a hang-up lands mid-download


@pytest.fixture
async def slow_server(root: Path) -> AsyncIterator[FileServer]:
    (root / "big.bin").write_bytes(os.urandom(BIG))
    srv = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(grace=1, rate=256 * 1024))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop(grace=1)


def saved(folder: Path) -> list[dict[str, object]]:
    return json.loads((folder / "state.json").read_text())["transfers"]


async def test_sighup_saves_and_a_relaunch_resumes(
    slow_server: FileServer, root: Path, dest: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    launch = Launch(host="127.0.0.1", port=str(slow_server.port_bound), file="big.bin",
                    dest=str(dest))  # fmt: skip
    first = GetfileApp(launch, queue=QueueStore(state), history=HistoryStore(state))
    async with first.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot,
            lambda: (
                bool(first.transfers)
                and (only_transfer(first).progress or 0) != 0
                and only_transfer(first).progress.done > 0
            ),
            what="bytes",
        )
        os.kill(os.getpid(), signal.SIGHUP)  # the terminal went away
        await pilot_wait_until(pilot, lambda: not first.is_running, what="exit", timeout=15)
    [entry] = saved(state)
    assert entry["state"] == "active" and entry["name"] == "big.bin"
    assert (dest / part_name("big.bin")).exists() and not (dest / "big.bin").exists()

    # Relaunched with no arguments: the form has the last server; the download resumes.
    second = GetfileApp(
        Launch(dest=str(dest)), queue=QueueStore(state), history=HistoryStore(state)
    )
    async with second.run_test(size=SIZE) as pilot:
        assert second.form.field("port").value == str(slow_server.port_bound)
        await pilot_wait_until(pilot, lambda: bool(second.transfers), what="the saved transfer")
        await pilot_wait_until(pilot, lambda: only_transfer(second).state == "done", timeout=30)
        assert "resumed at" in log_text(second)
    assert (dest / "big.bin").read_bytes() == (root / "big.bin").read_bytes()
    assert saved(state)[0]["state"] == "done"

    # Finished ones stay as history.
    third = GetfileApp(Launch(dest=str(dest)), queue=QueueStore(state))
    async with third.run_test(size=SIZE) as pilot:
        await pilot_wait_until(pilot, lambda: bool(third.transfers), what="history")
        assert only_transfer(third).state == "done"


async def test_a_second_instance_is_read_only(dest: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = QueueStore(state)
    holder.open()
    try:
        app = GetfileApp(Launch(dest=str(dest)), queue=QueueStore(state))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "another getfile-tui has the queue open" in log_text(app)
    finally:
        holder.close()


async def test_settings_remap_a_key_and_report_a_bad_value(tmp_path: Path, dest: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('retries = "many"\n[keys]\ndownload = "f12"\n')
    action_ids = ["download", "cancel", "keys"]
    loaded = load_settings(config, action_ids=action_ids)
    app = GetfileApp(Launch(dest=str(dest)), settings=loaded)
    async with app.run_test(size=SIZE) as pilot:
        assert "settings: " in log_text(app) and "retries" in log_text(app)
        assert app.downloads.retries == 10  # the default kept
        assert app.key_for("download") == "f12"
        await pilot.press("f1")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, KeysScreen))
        shown = app.export_screenshot()
        assert "f12" in shown


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("getfile-tui ")


async def test_no_state_without_a_queue(dest: Path) -> None:
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE):
        assert app.saved_queue.keeper is None


def test_completion_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    for shell, marker in (("bash", "complete"), ("zsh", "#compdef"), ("fish", "complete -c")):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["--completion", shell])
        assert exit_info.value.code == 0
        script = capsys.readouterr().out
        assert marker in script and "--serve" in script and "getfile-tui" in script


async def test_recent_servers_one_key_away_and_clear_finished(
    server: FileServer, dest: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    history = HistoryStore(state)
    history.save(history.load().remember("127.0.0.1", server.port_bound).remember("far", 7))
    queue = QueueStore(state)
    app = GetfileApp(Launch(dest=str(dest)), queue=queue, history=HistoryStore(state))
    async with app.run_test(size=SIZE) as pilot:
        assert app.form.field("host").value == "far"  # the last one used
        await pilot.press("ctrl+y")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "RecentScreen")
        await pilot.press("down", "enter")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")
        assert app.form.field("port").value == str(server.port_bound)
        await pilot.press(*"hello.txt", "enter")
        await pilot_wait_until(
            pilot, lambda: bool(app.transfers) and only_transfer(app).state == "done"
        )
        assert saved(state)[0]["state"] == "done"
        await app.run_action("clear_finished")
        await pilot.pause()
        assert app.transfers == {} and not app.transfer_list.rows
        assert saved(state) == []


async def test_serve_takes_the_place_of_the_remembered_server(
    root: Path, dest: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    history = HistoryStore(state)
    history.save(history.load().remember("far.example", 7))
    launch = Launch(dest=str(dest), serve=str(root))
    app = GetfileApp(launch, history=HistoryStore(state))
    async with app.run_test(size=SIZE) as pilot:
        pane = app.server_pane
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server")
        port = str(pane.server.port_bound)  # type: ignore[union-attr]
        await pilot_wait_until(pilot, lambda: app.form.field("port").value == port, what="the form")
        assert app.form.field("host").value == "127.0.0.1"


async def test_bookmarks_keep_a_name_a_folder_and_a_token_file(dest: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    token_file = tmp_path / "token"
    token_file.write_bytes(b"s3cret\n")
    history = HistoryStore(state)
    history.save(
        history.load().with_bookmark(Bookmark("mirror", "m.example", 6000, "isos", str(token_file)))
    )
    app = GetfileApp(
        Launch(host="h.example", port="7000", file="pub/x.iso", dest=str(dest)),
        history=HistoryStore(state),
    )
    async with app.run_test(size=SIZE) as pilot:
        await app.run_action("bookmark")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "NameScreen")
        await pilot.press(*"work", "enter")
        bookmarks = lambda: app.places.history.bookmarks  # noqa: E731
        await pilot_wait_until(pilot, lambda: "work" in bookmarks(), what="the bookmark")
        assert app.places.history.bookmarks["work"].folder == "pub"
        assert "work" in HistoryStore(state).load().bookmarks  # saved
        assert "s3cret" not in (state / "history.json").read_text()  # never the token itself
        await pilot.press("ctrl+y")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "RecentScreen")
        await pilot.press("enter")  # the first: "mirror"
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")
        assert app.form.field("host").value == "m.example"
        assert app.form.field("file").value == "isos/"
        assert app.downloads.tokens["m.example:6000"] == b"s3cret"
