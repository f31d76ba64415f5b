"""Text from servers and disks is shown as plain, printable text: never markup, never escapes.

Each test fails on an app that hands such text to a widget with markup on
(issue 10 #1, #13, #14): a crash (``MarkupError``), an action run by a click,
a name restyled or hidden, a dialog that never opens.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.widgets import Label, OptionList

from getfile_core import protocol
from getfile_core.protocol import Response, Status
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import scripted_server
from tests.support.tui import answering_lister, make_app, only_transfer, pilot_wait_until
from tui.screens.overwrite import OverwriteScreen
from tui.screens.remote_browser import RemoteBrowserScreen

SIZE = (80, 24)
HOSTILE_NAMES = ["[a=b c=d]x.txt", "[@click=app.quit]innocent.txt", "[reverse]report.pdf"]


def log_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(app.log_history)


def answer(status: Status, message: str):  # type: ignore[no-untyped-def]
    """A scripted server that answers every request with ``status`` and ``message``."""

    async def script(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(protocol.encode_response_head(Response(status, message=message)))

    return script


async def serving(folder: Path) -> FileServer:
    server = FileServer(folder, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    await server.start()
    return server


def options_of(listing: OptionList) -> list[str]:
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_server_message_with_markup_shows_on_the_failed_row(dest: Path) -> None:
    async with scripted_server(answer(Status.NOT_FOUND, "[/] gone [b]bold")) as port:
        app = make_app(host="127.0.0.1", port=port, file="a.txt", dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot_wait_until(
                pilot, lambda: app.transfers and only_transfer(app).state == "failed"
            )
            row = app.transfer_list.row(only_transfer(app).id)
            assert row is not None
            await pilot_wait_until(pilot, lambda: str(row.cell("state").content) == "failed")
            assert "[/] gone [b]bold" in str(row.cell("reason").content)
            assert app.is_running
    assert "[/] gone [b]bold" in log_text(app)


async def test_hostile_listing_names_show_as_written_and_click_does_nothing_else(
    tmp_path: Path, dest: Path
) -> None:
    served = tmp_path / "hostile"
    served.mkdir()
    for name in HOSTILE_NAMES:
        (served / name).write_bytes(b"x")
    server = await serving(served)
    try:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+l")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, RemoteBrowserScreen))
            listing = app.screen.query_one(OptionList)
            await pilot_wait_until(pilot, lambda: listing.option_count == 3, what="the listing")
            assert options_of(listing) == [f"  {name}  (1 B)" for name in sorted(HOSTILE_NAMES)]
            await pilot.pause()
            screen_text = app.export_screenshot()
            assert "[reverse]report.pdf" in screen_text  # the brackets are shown, not obeyed
            # A click on the first entry ("[@click=app.quit]innocent.txt") picks it; nothing quits.
            x = listing.content_region.x - listing.region.x + 3
            y = listing.content_region.y - listing.region.y
            await pilot.click(OptionList, offset=(x, y))
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, RemoteBrowserScreen))
            assert app.is_running
            assert app.form.field("file").value == "[@click=app.quit]innocent.txt"
    finally:
        await server.stop(grace=1)


async def test_listing_refused_with_a_markup_message_says_so(dest: Path) -> None:
    async with scripted_server(answer(Status.FORBIDDEN, "[/]")) as port:
        app = make_app(host="127.0.0.1", port=port, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+l")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, RemoteBrowserScreen))
            note = app.screen.query_one("#browser-note", Label)
            await pilot_wait_until(pilot, lambda: "[/]" in str(note.content), what="the refusal")
            await pilot.pause()
            shown = app.export_screenshot()
            assert "[/]" in shown and "listing…" not in shown  # drawn, not stuck on "listing…"
            await pilot.press("escape")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, RemoteBrowserScreen))


async def test_overwrite_dialog_with_ten_thousand_taken_names(dest: Path) -> None:
    (dest / "x.bin").write_bytes(b"old")
    for number in range(1, 10_001):
        (dest / f"x ({number}).bin").touch()
    app = make_app(host="127.0.0.1", port=1, file="x.bin", dest=dest)
    app.downloads.lister = answering_lister  # a server that is there (port 1 is not)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: isinstance(app.screen, OverwriteScreen), what="dialog"
        )
        notes = [str(label.content) for label in app.screen.query(Label)]
        assert "Rename saves it as x (10001).bin" in notes
        await pilot.press("s")
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, OverwriteScreen))
        assert app.is_running


async def test_non_utf8_name_is_readable_and_fetched_exactly(tmp_path: Path, dest: Path) -> None:
    served = tmp_path / "latin1"
    served.mkdir()
    body = os.urandom(5000)
    with open(os.path.join(os.fsencode(served), b"\xff.bin"), "wb") as out:
        out.write(body)
    (served / "ff.bin").write_bytes(b"a decoy the old code fetched instead")
    server = await serving(served)
    try:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+l")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, RemoteBrowserScreen))
            listing = app.screen.query_one(OptionList)
            await pilot_wait_until(pilot, lambda: listing.option_count == 2, what="the listing")
            assert options_of(listing) == ["  ff.bin  (36 B)", "  \\xff.bin  (4.88 KiB)"]
            await pilot.press("down", "enter")
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, RemoteBrowserScreen))
            assert app.form.field("file").value == "\\xff.bin"
            await pilot.press("enter")
            await pilot_wait_until(
                pilot, lambda: app.transfers and only_transfer(app).state == "done"
            )
            saved = Path(only_transfer(app).saved_path)
    finally:
        await server.stop(grace=1)
    assert saved.read_bytes() == body


async def test_escape_sequence_in_a_launch_path_is_shown_spelled_out(
    tmp_path: Path, dest: Path
) -> None:
    served = tmp_path / "esc"
    served.mkdir()
    name = "a\x1b]2;PWNED\x07.txt"
    (served / name).write_bytes(b"title?")
    server = await serving(served)
    try:
        app = make_app(host="127.0.0.1", port=server.port_bound, file=name, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            assert app.form.field("file").value == "a\\x1b]2;PWNED\\x07.txt"
            await pilot.press("enter")
            await pilot_wait_until(
                pilot, lambda: app.transfers and only_transfer(app).state == "done"
            )
            saved = Path(only_transfer(app).saved_path)
            assert "\x1b" not in app.export_screenshot()
    finally:
        await server.stop(grace=1)
    assert saved.read_bytes() == b"title?"
    assert "\x1b" not in log_text(app)
