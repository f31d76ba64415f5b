"""Folders, segments and mirrors in the app, driven at 80x24 against real loopback servers.

The remote browser's multi-select, filter, ``..`` and ``other`` entries; a
selection downloaded as one grouped row (expand, collapse, cancel, retry);
a segmented download showing its connections; a mirror's line in the log.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
from textual.widgets import Input, Label, OptionList

from getfile_core import ServerLimits
from tests.support.servers import running_server
from tests.support.tui import make_app, only_transfer, pilot_wait_until, transfer_reaches
from tui.groups import Connections
from tui.screens.connections import ConnectionsScreen, parse_connections
from tui.screens.remote_browser import OTHER_WHY, RemoteBrowserScreen
from tui.widgets.transfer_list import GroupFiles

SIZE = (80, 24)


def log_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(app.log_history)


def labels(listing: OptionList) -> list[str]:
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Nested folders, an empty one, odd names, a FIFO (listed as ``other``)."""
    top = tmp_path / "tree"
    (top / "photos" / "2024" / "deep" / "deeper").mkdir(parents=True)
    (top / "photos" / "empty").mkdir()
    (top / "logs").mkdir()
    (top / "photos" / "a.jpg").write_bytes(os.urandom(70_000))
    (top / "photos" / "2024" / "b c.jpg").write_bytes(os.urandom(3000))
    (top / "photos" / "2024" / "deep" / "deeper" / "[b]x.txt").write_bytes(b"deep\n")
    (top / "logs" / "one.log").write_bytes(b"log\n")
    (top / "hello.txt").write_bytes(b"hello\n")
    (top / "help.md").write_bytes(b"help\n")
    (top / "notes.txt").write_bytes(b"notes\n")
    os.mkfifo(top / "pipe")
    return top


async def open_browser(pilot, app) -> OptionList:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+l")
    await pilot_wait_until(pilot, lambda: isinstance(app.screen, RemoteBrowserScreen))
    listing = app.screen.query_one(OptionList)
    await pilot_wait_until(pilot, lambda: listing.option_count > 0, what="the listing")
    return listing


async def test_browser_filter_parent_and_other_entry(tree: Path, dest: Path) -> None:
    async with running_server(tree) as server:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            listing = await open_browser(pilot, app)
            shown = labels(listing)
            assert shown[:2] == ["  logs/  (folder)", "  photos/  (folder)"]  # folders first
            assert "  hello.txt  (6 B)" in shown
            assert f"  pipe  ({OTHER_WHY})" in shown  # a FIFO: shown, with why
            pipe = shown.index(f"  pipe  ({OTHER_WHY})")
            assert listing.get_option_at_index(pipe).disabled
            await pilot.press("h", "e", "l")  # typing filters: hello.txt, help.md
            await pilot_wait_until(pilot, lambda: listing.option_count == 2, what="the filter")
            assert labels(listing) == ["  hello.txt  (6 B)", "  help.md  (5 B)"]
            note = app.screen.query_one("#browser-note", Label)
            assert "filter “hel”: 2 of" in str(note.content)
            await pilot.press("backspace", "backspace", "backspace")  # the filter goes first
            await pilot_wait_until(pilot, lambda: listing.option_count == len(shown))
            assert app.screen.folder == b""  # Backspace did not go up from the root
            assert listing.highlighted == shown.index("  hello.txt  (6 B)")  # the filter's pick
            await pilot.press("home", "down", "enter")  # photos/
            await pilot_wait_until(pilot, lambda: app.screen.folder == b"photos", what="photos/")
            await pilot_wait_until(pilot, lambda: "  ../" in labels(listing))
            assert labels(listing)[0] == "  ../"
            assert listing.highlighted == 1  # the first entry, not ``..``
            await pilot.press("up", "enter")  # .. goes up
            await pilot_wait_until(pilot, lambda: app.screen.folder == b"", what="the root")
            await pilot_wait_until(pilot, lambda: "  ../" not in labels(listing))
            await pilot.press("escape")


async def test_selection_downloads_as_one_group_that_expands(tree: Path, dest: Path) -> None:
    async with running_server(tree) as server:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            listing = await open_browser(pilot, app)
            await pilot.press("down", "space")  # photos/ (space moves on to the next)
            await pilot.press("space")  # hello.txt
            assert labels(listing)[1] == "* photos/  (folder)"
            assert labels(listing)[2] == "* hello.txt  (6 B)"
            assert "2 selected" in str(app.screen.query_one("#browser-note", Label).content)
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, RemoteBrowserScreen))
            transfer = await transfer_reaches(pilot, app, "done")
            assert transfer.group is not None and transfer.name == "2 items"
            # Mirrored identical: nested, odd names, the empty folder; nothing unselected.
            compare = filecmp.dircmp(tree / "photos", dest / "photos")
            assert not compare.diff_files and not compare.left_only and not compare.right_only
            assert (dest / "photos" / "2024" / "deep" / "deeper" / "[b]x.txt").read_bytes() == (
                b"deep\n"
            )
            assert (dest / "photos" / "empty").is_dir()
            assert (dest / "hello.txt").read_bytes() == b"hello\n"
            assert sorted(os.listdir(dest)) == ["hello.txt", "photos"]
            row = app.transfer_list.row(transfer.id)
            assert row is not None
            assert str(row.cell("name").content) == "+ 2 items 4/4"
            # Once done, the average rate; 20 bytes are too few to measure one: "—".
            assert str(row.cell("rate").content) == "—"
            app.transfer_list.select(row)
            await pilot.press("right")  # expand: its files under the row
            await pilot_wait_until(pilot, lambda: bool(app.transfer_list.query(GroupFiles)))
            files = str(app.transfer_list.query_one(GroupFiles).content)
            assert "done    photos/2024/deep/deeper/[b]x.txt" in files
            assert str(row.cell("name").content).startswith("- 2 items")
            await pilot.press("left")  # collapse
            await pilot_wait_until(pilot, lambda: not app.transfer_list.query(GroupFiles))
            assert "2 items: saved in" in log_text(app)


async def test_group_cancel_and_retry_continue_the_tree(tmp_path: Path, dest: Path) -> None:
    served = tmp_path / "slow"
    (served / "big" / "inner").mkdir(parents=True)
    for number in range(3):
        (served / "big" / "inner" / f"f{number}.bin").write_bytes(os.urandom(200_000))
    limits = ServerLimits(rate=64 * 1024, grace=1)  # 64 KiB/s per connection: seconds long
    async with running_server(served, limits=limits) as server:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await open_browser(pilot, app)
            await pilot.press("space", "enter")  # big/
            transfer = await transfer_reaches(pilot, app, "downloading")
            await pilot_wait_until(pilot, lambda: (transfer.progress.done or 0) > 0)
            await pilot.press("ctrl+x")
            await transfer_reaches(pilot, app, "cancelled")
            assert not (dest / "big" / "inner" / "f0.bin").exists()  # never a whole name early
            parts = list((dest / "big" / "inner").glob("*.getfile-part"))
            assert parts  # what arrived is kept for the retry
            await pilot.press("ctrl+r")
            await transfer_reaches(pilot, app, "done", timeout=30)
            compare = filecmp.dircmp(served / "big", dest / "big")
            assert not compare.left_only and not compare.right_only
            inner = filecmp.dircmp(served / "big" / "inner", dest / "big" / "inner")
            assert not inner.diff_files and not inner.left_only and not inner.right_only
            assert "big: cancelled; partial files kept" in log_text(app)
            assert "big: continuing where it stopped" in log_text(app)


async def test_segments_show_live_connections_and_a_mirror_line(tmp_path: Path, dest: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    one.mkdir()
    other.mkdir()
    (one / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    (other / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))  # the same size, not the file
    limits = ServerLimits(rate=1024 * 1024, grace=1)  # 1 MiB/s per connection
    async with (
        running_server(one, limits=limits) as server,
        running_server(other, limits=limits) as mirror,
    ):
        app = make_app(host="127.0.0.1", port=server.port_bound, file="big.bin", dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+p")
            await pilot.press(*"Segments and mirrors")
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
            segments = app.screen.query_one("#segments", Input)
            segments.value = "4"
            app.screen.query_one(
                "#mirrors", Input
            ).value = f"getfile://127.0.0.1:{mirror.port_bound}/big.bin"
            segments.focus()
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, ConnectionsScreen))
            assert "4 segments · 1 mirror" in str(app.form.border_title)
            app.form.focus_end("file")
            await pilot.press("enter")
            transfer = await transfer_reaches(pilot, app, "downloading")
            row = app.transfer_list.row(transfer.id)
            assert row is not None
            await pilot_wait_until(
                pilot,
                lambda: (
                    str(row.cell("state").content).startswith("dl ")
                    and str(row.cell("state").content).endswith(" conns")
                ),
                what="the connection count",
            )
            live = int(str(row.cell("state").content).split()[1])
            assert live > 1
            await transfer_reaches(pilot, app, "done", timeout=30)
            assert (dest / "big.bin").read_bytes() == (one / "big.bin").read_bytes()
            assert "big.bin: mirror" in log_text(app) and "not used" in log_text(app)
            assert only_transfer(app).state == "done"


def test_connections_dialog_checks_its_fields() -> None:
    assert parse_connections("", "") == Connections(1, ())
    assert parse_connections("8", "getfile://a:1/x getfile://b/y").mirrors == (
        "getfile://a:1/x",
        "getfile://b/y",
    )
    with pytest.raises(ValueError, match="Segments"):
        parse_connections("99", "")
    with pytest.raises(ValueError, match="Mirror"):
        parse_connections("2", "http://nope/x")


async def test_typing_a_number_of_segments_replaces_the_one_shown(dest: Path) -> None:
    """The dialog opens on "1": typing 4 means 4 (it made 14, silently, in a tmux session)."""
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Segments and mirrors")
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        await pilot.press("4", "enter")
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, ConnectionsScreen))
        assert "4 segments" in str(app.form.border_title)
