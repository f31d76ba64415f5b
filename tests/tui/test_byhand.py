"""What using the app by hand over a slow relay showed (tmux, 80x24 and 200x50), one test
each, driven at 80x24 against real loopback servers. The session's log is quoted in the
issue note (/work/coord/app-byhand.txt at the time)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import Label, OptionList

from getfile_core import ServerLimits
from tests.support import CuttingProxy, Plan
from tests.support.servers import running_server
from tests.support.tui import make_app, pilot_wait_until
from tui.app import GetfileApp
from tui.launch import Launch
from tui.queue_store import QueueStore
from tui.screens.remote_browser import RemoteBrowserScreen

SIZE = (80, 24)


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """A folder of 3000 small files, as a build's output or a mail spool."""
    top = tmp_path / "served"
    (top / "flat").mkdir(parents=True)
    for number in range(3000):
        (top / "flat" / f"f{number:04d}.txt").write_bytes(b"x")
    return top


async def test_filtering_3000_entries_fills_the_list_in_one_step(
    flat: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each letter typed rebuilt the list one option at a time, and Textual re-measured and
    re-scrolled the list after each: 0.7-2 s per letter in a folder of 3000 (2 loaded
    cores); filled in one ``add_options``, 0.1-0.2 s."""
    filled = []
    add_options = OptionList.add_options

    def counting(self: OptionList, items):  # type: ignore[no-untyped-def]
        items = list(items)
        filled.append(len(items))
        return add_options(self, items)

    monkeypatch.setattr(OptionList, "add_options", counting)
    async with running_server(flat) as server:
        app = make_app(host="127.0.0.1", port=server.port_bound, file="flat/", dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+l")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, RemoteBrowserScreen))
            listing = app.screen.query_one(OptionList)
            await pilot_wait_until(pilot, lambda: listing.option_count == 3001, what="flat/")
            filled.clear()
            await pilot.press("2")  # f2000-f2999 and every name with a 2: 1 + 1569 options
            await pilot_wait_until(pilot, lambda: listing.option_count < 3001, what="the filter")
            await pilot.pause()
            assert listing.option_count == 1 + sum("2" in f"f{n:04d}.txt" for n in range(3000))
            assert filled == [listing.option_count], f"filled in {len(filled)} steps"
            await pilot.press("escape")


def shown_text(widget) -> str:  # type: ignore[no-untyped-def]
    """What the widget's first line shows on the screen (after its own ellipsis)."""
    return widget.render_line(0).text


async def test_a_grouped_row_keeps_its_counts_at_80_columns(tmp_path: Path, dest: Path) -> None:
    """At 80x24 Name has 15 columns: ``+ usr-share-doc 2110/3000`` showed as
    ``+ usr-share-do…``, without the one number that moves."""
    top = tmp_path / "served"
    (top / "usr-share-doc").mkdir(parents=True)
    for number in range(3):
        (top / "usr-share-doc" / f"{number}.txt").write_bytes(b"doc\n")
    (top / "debian-12.5.0-amd64-netinst.iso").write_bytes(b"iso\n")
    async with running_server(top) as server:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+l")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, RemoteBrowserScreen))
            listing = app.screen.query_one(OptionList)
            await pilot_wait_until(pilot, lambda: listing.option_count == 2, what="the listing")
            await pilot.press("space", "enter")  # usr-share-doc/ (folders come first)
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, RemoteBrowserScreen))
            await pilot_wait_until(
                pilot, lambda: any(t.state == "done" for t in app.transfers.values())
            )
            app.form.set_values(file="debian-12.5.0-amd64-netinst.iso")
            await pilot.press("ctrl+g")
            await pilot_wait_until(
                pilot, lambda: len(app.transfers) == 2 and all(
                    t.state == "done" for t in app.transfers.values()
                ), what="both done"
            )  # fmt: skip
            await pilot.pause()
            names = [shown_text(cell).rstrip() for cell in app.query(".transfer-row .name")]
            assert names == ["+ usr-shar… 3/3", "debian-…nst.iso"]


async def test_an_automatic_retry_does_not_tell_the_user_to_press_retry(
    tmp_path: Path, dest: Path
) -> None:
    """A link closed mid-file: the log said "retrying in 1 s (1/10): connection closed
    after 1769316 of 41943040 bytes (kept …part; Retry continues it)", advice for
    a retry that was already on its way."""
    top = tmp_path / "served"
    top.mkdir()
    body = os.urandom(2 * 1024 * 1024)
    (top / "big.bin").write_bytes(body)
    async with running_server(top) as server:
        proxy = await CuttingProxy(server.port_bound).start()
        proxy.plans.append(Plan(cut_at=1024 * 1024))  # the first connection closes early
        try:
            app = make_app(host="127.0.0.1", port=proxy.port, file="big.bin", dest=dest)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.press("enter")
                await pilot_wait_until(
                    pilot, lambda: "digest verified" in "\n".join(app.log_history), "done"
                )
        finally:
            await proxy.close()
    [line] = [line for line in app.log_history if "retrying in" in line]
    assert "big.bin: retrying in 1 s (1/10): connection closed after" in line
    assert "(kept " in line and "Retry continues" not in line and "--resume" not in line
    assert (dest / "big.bin").read_bytes() == body


async def test_a_finished_row_redraws_its_bar_when_the_terminal_grows(
    tmp_path: Path, dest: Path
) -> None:
    """80x24 to 200x50: Name grows from 15 columns to 48 and the bar's cell shrinks by as
    much; a finished row, which gets no more progress, kept the bar it had drawn for the
    wider cell, cut to ``█████…`` without its ``100%``."""
    top = tmp_path / "served"
    top.mkdir()
    (top / "done.bin").write_bytes(os.urandom(100_000))
    async with running_server(top) as server:
        app = make_app(host="127.0.0.1", port=server.port_bound, file="done.bin", dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: "digest verified" in "\n".join(app.log_history))
            for size in ((200, 50), (80, 24), (200, 50)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                await pilot.pause()
                [bar] = app.query(".transfer-row .bar")
                shown = shown_text(bar).rstrip()
                assert shown.endswith("█ 100%"), (size, shown)
                assert bar.size.width - 2 <= len(shown) <= bar.size.width, (size, shown)


async def test_a_restored_finished_row_shows_its_rate(tmp_path: Path, dest: Path) -> None:
    """A finished row showed its average rate, and none after a restart (the queue did
    not keep it): the lead's leftover from the last session. The server sends 4 MiB/s,
    so the 2 MiB take long enough (0.5 s) for a rate to be measured at all (under 0.2 s a
    row shows none: ``tui.transfers.measured_rate``)."""
    top = tmp_path / "served"
    top.mkdir()
    (top / "two.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    state = tmp_path / "state"
    async with running_server(top, limits=ServerLimits(grace=2, rate=4 * 1024 * 1024)) as server:
        launch = Launch(host="127.0.0.1", port=str(server.port_bound), file="two.bin",
                        dest=str(dest))  # fmt: skip
        first = GetfileApp(launch, queue=QueueStore(state))
        async with first.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: "digest verified" in "\n".join(first.log_history))
            [row] = first.query(".transfer-row")
            shown = shown_text(row.query_one(".rate")).strip()
            assert shown.endswith("/s"), shown
    second = GetfileApp(Launch(dest=str(dest)), queue=QueueStore(state))
    async with second.run_test(size=SIZE) as pilot:
        await pilot_wait_until(pilot, lambda: bool(second.query(".transfer-row")))
        await pilot.pause()
        [row] = second.query(".transfer-row")
        assert shown_text(row.query_one(".rate")).strip() == shown


async def test_f1_wraps_long_descriptions_at_80_columns(dest: Path) -> None:
    """At 80x24 the longest lines were cut: ``retry the selected failed download (now, if
    waiting`` without its end, ``hand … to the browser`` without ``(--web)``."""
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "KeysScreen")
        await pilot.pause()
        listing = app.screen.query_one("#keys-list")
        label = listing.query_one(Label)
        shown = [label.render_line(y).text.rstrip() for y in range(label.size.height)]
        text = " ".join(" ".join(line.split()) for line in shown)
        assert "(now, if waiting)" in text and "to the browser (--web)" in text
        room = listing.scrollable_content_region.width  # what the dialog shows of a line
        assert all(len(line) <= room for line in shown), [x for x in shown if len(x) > room]
