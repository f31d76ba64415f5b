"""An escape sequence pasted into the app's fields is shown spelled out (issue 10 #6).

``tests/tui/test_hostile_text.py`` covers a launch argument; the issue also
names a paste: into the File field, and a ``getfile://`` URL (percent-encoded
ESC) into the Host field, which spreads over the fields. Either way the
field shows ``\\x1b`` as text, nothing reaches the terminal, and the file
fetched is the one named by the real bytes.
"""

from __future__ import annotations

from pathlib import Path

from textual import events

from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support.tui import make_app, only_transfer, pilot_wait_until

SIZE = (100, 24)
NAME = "a\x1b]2;PWNED\x07.txt"
SPELLED = "a\\x1b]2;PWNED\\x07.txt"


async def serving(tmp_path: Path) -> FileServer:
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(b"title?")
    server = FileServer(served, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    await server.start()
    return server


async def test_an_escape_pasted_into_the_file_field_is_spelled_out(
    tmp_path: Path, dest: Path
) -> None:
    server = await serving(tmp_path)
    try:
        app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            field = app.form.field("file")
            field.focus()
            field.post_message(events.Paste(NAME))
            await pilot_wait_until(pilot, lambda: field.value == SPELLED, what="the pasted name")
            assert "\x1b" not in app.export_screenshot()
            await pilot.press("enter")
            await pilot_wait_until(
                pilot, lambda: app.transfers and only_transfer(app).state == "done"
            )
            saved = Path(only_transfer(app).saved_path)
    finally:
        await server.stop(grace=1)
    assert saved.read_bytes() == b"title?"


async def test_an_escape_in_a_pasted_url_is_spelled_out(tmp_path: Path, dest: Path) -> None:
    server = await serving(tmp_path)
    try:
        app = make_app(dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            host = app.form.field("host")
            host.focus()
            host.post_message(
                events.Paste(f"getfile://127.0.0.1:{server.port_bound}/a%1b]2;PWNED%07.txt")
            )
            file = app.form.field("file")
            await pilot_wait_until(pilot, lambda: file.value == SPELLED, what="the URL spread out")
            assert host.value == "127.0.0.1"
            assert "\x1b" not in app.export_screenshot()
            await pilot.press("enter")
            await pilot_wait_until(
                pilot, lambda: app.transfers and only_transfer(app).state == "done"
            )
            saved = Path(only_transfer(app).saved_path)
    finally:
        await server.stop(grace=1)
    assert saved.read_bytes() == b"title?"
