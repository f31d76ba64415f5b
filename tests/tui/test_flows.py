"""Each flow of the app, driven at 80x24 against real loopback servers."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from textual.command import CommandList
from textual.widgets import Button, Input, Label, OptionList, TabbedContent

from getfile_core import FileServer, ServerLimits, part_name
from tests.support import STALL_FIRST_BLOCK, StallingLegacyPeer, unused_port
from tests.support.tui import (
    make_app,
    only_transfer,
    pilot_wait_until,
    transfer_reaches,
)
from tui.screens.confirm_quit import ConfirmQuitScreen
from tui.screens.overwrite import OverwriteScreen
from tui.screens.token_prompt import TokenScreen
from tui.widgets.server_pane import ServerPane

SIZE = (80, 24)


def log_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(app.log_history)


async def test_good_download(server: FileServer, root: Path, dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=server.port_bound, file="sub/data.bin", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.focused, Input)  # the form has the focus at start-up
        await pilot.press("enter")
        await transfer_reaches(pilot, app, "done")
        transfer = only_transfer(app)
        row = app.transfer_list.row(transfer.id)
        assert row is not None
        # The row redraws on the controller's message, a moment after the state changes.
        shown = lambda: str(row.cell("state").content)  # noqa: E731
        await pilot_wait_until(pilot, lambda: shown() in ("done", "failed", "cancelled"))
        assert str(row.cell("state").content) == "done"
        assert "100%" in str(row.cell("bar").content)
        assert "293 KiB/293 KiB" in str(row.cell("bytes").content)
    assert (dest / "data.bin").read_bytes() == (root / "sub" / "data.bin").read_bytes()
    assert not (dest / part_name("data.bin")).exists()
    text = log_text(app)
    assert f"saved {dest / 'data.bin'}" in text
    assert "digest verified (blake3:" in text


async def test_not_found_is_a_failed_row(server: FileServer, dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=server.port_bound, file="missing.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: app.transfers and only_transfer(app).state == "failed"
        )
        transfer = only_transfer(app)
        row = app.transfer_list.row(transfer.id)
        assert row is not None
        await pilot_wait_until(pilot, lambda: str(row.cell("state").content) == "failed")
        assert "no such file" in str(row.cell("reason").content)
        assert app.is_running
    assert list(dest.iterdir()) == []
    assert "error: missing.txt: no such file (404 not-found) (from 127.0.0.1:" in log_text(app)


async def test_connection_refused_is_a_failed_row(dest: Path) -> None:
    port = unused_port()
    app = make_app(host="127.0.0.1", port=port, file="hello.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: app.transfers and only_transfer(app).state == "failed"
        )
        assert "connection refused" in only_transfer(app).error
        assert app.is_running
    assert f"connection refused by 127.0.0.1:{port}" in log_text(app)


async def test_legacy_server_without_size(legacy_server: int, root: Path, dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=legacy_server, file="hello.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await transfer_reaches(pilot, app, "done")
        assert only_transfer(app).legacy
    assert (dest / "hello.txt").read_bytes() == (root / "hello.txt").read_bytes()
    assert "legacy server, so no size or digest" in log_text(app)


async def test_size_unknown_shows_bytes_and_rate_without_total(
    stalling_peer: tuple[StallingLegacyPeer, int], dest: Path
) -> None:
    _peer, port = stalling_peer
    app = make_app(host="127.0.0.1", port=port, file="stream.bin", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot,
            lambda: app.transfers and only_transfer(app).state == "downloading",
            what="the legacy transfer to start",
        )
        row = app.transfer_list.row(only_transfer(app).id)
        assert row is not None
        await pilot_wait_until(pilot, lambda: str(row.cell("bytes").content) == "1.00 MiB")
        assert "??" in str(row.cell("bar").content)  # indeterminate: no percentage
        assert "legacy server detected" in log_text(app)
        await pilot.press("ctrl+x")
        await transfer_reaches(pilot, app, "cancelled")


async def test_cancel_keeps_the_part(
    stalling_peer: tuple[StallingLegacyPeer, int], dest: Path
) -> None:
    _peer, port = stalling_peer
    app = make_app(host="127.0.0.1", port=port, file="big.iso", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot,
            lambda: (
                app.transfers
                and only_transfer(app).progress is not None
                and only_transfer(app).progress.done == STALL_FIRST_BLOCK
            ),  # type: ignore[union-attr]
        )
        await pilot.press("ctrl+x")
        await transfer_reaches(pilot, app, "cancelled")
        assert app.is_running
    assert not (dest / "big.iso").exists()
    assert (dest / part_name("big.iso")).stat().st_size == STALL_FIRST_BLOCK
    assert "big.iso: cancelled; kept" in log_text(app)


async def test_cancel_button_works_with_the_mouse_too(
    stalling_peer: tuple[StallingLegacyPeer, int], dest: Path
) -> None:
    _peer, port = stalling_peer
    app = make_app(host="127.0.0.1", port=port, file="big.iso", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#download")
        await pilot_wait_until(pilot, lambda: app.transfers and only_transfer(app).active)
        await pilot_wait_until(pilot, lambda: not app.query_one("#cancel", Button).disabled)
        await pilot.click("#cancel")
        await transfer_reaches(pilot, app, "cancelled")
        assert app.query_one("#cancel", Button).disabled  # nothing left to cancel
        await pilot.click("#retry")
        await pilot_wait_until(pilot, lambda: only_transfer(app).active)
        await pilot.click("#cancel-all")
        await transfer_reaches(pilot, app, "cancelled")


async def test_retry_after_failure_reuses_the_row(
    server: FileServer, root: Path, dest: Path
) -> None:
    app = make_app(host="127.0.0.1", port=server.port_bound, file="late.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: app.transfers and only_transfer(app).state == "failed"
        )
        (root / "late.txt").write_bytes(b"here now\n")
        await pilot.press("ctrl+r")
        await transfer_reaches(pilot, app, "done")
        assert len(app.transfer_list.rows) == 1
    assert (dest / "late.txt").read_bytes() == b"here now\n"
    assert "late.txt: starting again" in log_text(app)


async def test_retry_after_cancel_continues_the_part(
    server: FileServer, root: Path, dest: Path
) -> None:
    data = (root / "sub" / "data.bin").read_bytes()
    app = make_app(host="127.0.0.1", port=server.port_bound, file="sub/data.bin", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        # A cancelled row whose .part holds the first 100 000 bytes, as a cancel leaves it.
        await pilot.press("enter")
        await transfer_reaches(pilot, app, "done")
        transfer = only_transfer(app)
        (dest / "data.bin").unlink()
        (dest / part_name("data.bin")).write_bytes(data[:100_000])
        transfer.stop()  # as a cancel leaves it
        await pilot.press("ctrl+r")
        await pilot_wait_until(pilot, lambda: transfer.state == "done")
    assert (dest / "data.bin").read_bytes() == data
    assert "data.bin: continuing from 97.7 KiB" in log_text(app)  # not "retrying"
    assert "resumed at 97.7 KiB" in log_text(app)


async def test_local_server_start_download_stop(root: Path, dest: Path) -> None:
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        pane.query_one("#serve-root", Input).value = str(root)
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server to start")
        port = pane.server.port_bound  # type: ignore[union-attr]
        form = app.form
        assert form.field("host").value == "127.0.0.1"  # the empty form now points at it
        assert form.field("port").value == str(port)
        assert app.focused is form.field("file")
        await pilot.press(*"hello.txt", "enter")
        await transfer_reaches(pilot, app, "done")
        await pilot_wait_until(
            pilot, lambda: [(r.path, r.status) for r in pane.records] == [("hello.txt", "ok")]
        )
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: not pane.running, what="the local server to stop")
        assert pane.query_one("#serve-toggle", Button).label.plain == "Start"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # the port is closed again
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    assert "local server stopped" in log_text(app)


async def test_local_server_refuses_a_missing_folder(tmp_path: Path, dest: Path) -> None:
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        pane.query_one("#serve-root", Input).value = str(tmp_path / "nope")
        await pilot.press("ctrl+s")
        assert not pane.running
        assert app.query_one(TabbedContent).active == "server-tab"
        assert app.focused is pane.query_one("#serve-root", Input)


async def test_token_is_asked_for_and_used(root: Path, dest: Path) -> None:
    server = FileServer(
        root, "127.0.0.1", 0, limits=ServerLimits(grace=1), token=b"s3cret", on_access=None
    )
    await server.start()
    try:
        app = make_app(host="127.0.0.1", port=server.port_bound, file="hello.txt", dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, TokenScreen))
            await pilot.press(*"wrong", "enter")
            await pilot_wait_until(
                pilot, lambda: isinstance(app.screen, TokenScreen) and app.screen.wrong
            )
            await pilot.press(*"s3cret", "enter")
            await transfer_reaches(pilot, app, "done")
    finally:
        await server.stop(grace=1)
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


# ---------------------------------------------------------------- the overwrite dialog


async def _dialog_choice(
    server: FileServer, dest: Path, file: str, key: str
) -> tuple[object, OverwriteScreen]:
    app = make_app(host="127.0.0.1", port=server.port_bound, file=file, dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, OverwriteScreen))
        dialog = app.screen
        assert isinstance(dialog, OverwriteScreen)
        await pilot.press(key)
        await pilot_wait_until(
            pilot, lambda: not app.workers or all(w.is_finished for w in app.workers)
        )
        await pilot_wait_until(
            pilot, lambda: all(not t.active for t in app.transfers.values()), what="downloads"
        )
    return app, dialog


async def test_dialog_overwrite(server: FileServer, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"old\n")
    _app, dialog = await _dialog_choice(server, dest, "hello.txt", "o")
    assert not dialog.can_resume  # no .part: nothing to resume
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


async def test_dialog_resume(server: FileServer, root: Path, dest: Path) -> None:
    data = (root / "sub" / "data.bin").read_bytes()
    (dest / part_name("data.bin")).write_bytes(data[:123_456])
    app, dialog = await _dialog_choice(server, dest, "sub/data.bin", "r")
    assert dialog.can_resume
    assert (dest / "data.bin").read_bytes() == data
    assert "resumed at 121 KiB" in log_text(app)


async def test_dialog_rename(server: FileServer, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"keep me\n")
    await _dialog_choice(server, dest, "hello.txt", "n")
    assert (dest / "hello.txt").read_bytes() == b"keep me\n"
    assert (dest / "hello (1).txt").read_bytes() == b"hello, world\n"


async def test_dialog_skip(server: FileServer, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"keep me\n")
    app, _dialog = await _dialog_choice(server, dest, "hello.txt", "s")
    assert app.transfers == {}
    assert (dest / "hello.txt").read_bytes() == b"keep me\n"
    assert "hello.txt: skipped" in log_text(app)


async def test_dialog_offers_no_resume_from_a_legacy_server(legacy_server: int, dest: Path) -> None:
    (dest / part_name("hello.txt")).write_bytes(b"hel")
    app = make_app(host="127.0.0.1", port=legacy_server, file="hello.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, OverwriteScreen))
        assert not app.screen.query("#resume")
        await pilot.press("r")  # Resume is not on offer: the dialog stays
        assert isinstance(app.screen, OverwriteScreen)
        await pilot.press("o")
        await transfer_reaches(pilot, app, "done")
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


# ---------------------------------------------------------------- the form


async def test_invalid_inputs_are_marked_and_block_the_download(tmp_path: Path) -> None:
    app = make_app(host="127.0.0.1", port=50001, file="hello.txt", dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        form = app.form
        cases = [
            ("port", "70000", "Port: a number from 1 to 65535"),
            ("host", "bad host", "Server: a host name or address"),
            ("file", "docs/..", "File: the path of a file"),
            ("dest", str(tmp_path / "missing"), "Save to: an existing folder"),
        ]
        for key, value, reason in cases:
            field = form.field(key)
            field.focus()
            field.value = value
            await pilot.pause()
            assert field.has_class("-invalid"), key
            assert reason in form.border_subtitle, (key, form.border_subtitle)
            await pilot.press("enter")
            assert app.transfers == {}
            assert app.focused is form.field(next(k for k, _ in form.problems()))
            field.value = {"port": "50001", "host": "h", "file": "f", "dest": str(tmp_path)}[key]
            await pilot.pause()
            assert not field.has_class("-invalid")
        assert form.problems() == []


async def test_port_field_takes_digits_only(tmp_path: Path) -> None:
    app = make_app(host="h", port="", file="f", dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.form.field("port").focus()
        await pilot.press(*"5x0-0 01")
        assert app.form.field("port").value == "50001"


async def test_pasting_a_url_fills_the_form(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        form = app.form
        form.field("host").focus()
        form.field("host").value = "getfile://example.org:6000/docs/a%20b.txt"
        await pilot.pause()
        assert form.field("host").value == "example.org"
        assert form.field("port").value == "6000"
        assert form.field("file").value == "docs/a b.txt"
        assert app.focused is form.field("file")


# ---------------------------------------------------------------- quitting


async def test_quit_while_busy_asks_and_keeps_the_part(
    stalling_peer: tuple[StallingLegacyPeer, int], dest: Path
) -> None:
    _peer, port = stalling_peer
    app = make_app(host="127.0.0.1", port=port, file="big.iso", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: app.transfers and only_transfer(app).state == "downloading"
        )
        await pilot.press("ctrl+q")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("n")  # stay
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, ConfirmQuitScreen))
        assert app.is_running and only_transfer(app).active
        await pilot.press("ctrl+q")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("y")
        await pilot_wait_until(pilot, lambda: not app.is_running, what="the app to exit")
    assert not (dest / "big.iso").exists()
    assert (dest / part_name("big.iso")).stat().st_size == STALL_FIRST_BLOCK


async def test_quit_when_idle_does_not_ask(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await pilot_wait_until(pilot, lambda: not app.is_running, what="the app to exit")


async def test_quit_stops_the_local_server(root: Path, tmp_path: Path) -> None:
    app = make_app(dest=tmp_path, serve=root)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        await pilot_wait_until(pilot, lambda: pane.running)
        port = pane.server.port_bound  # type: ignore[union-attr]
        await pilot.press("ctrl+q")
        await pilot_wait_until(pilot, lambda: not app.is_running, what="the app to exit")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


# ---------------------------------------------------------------- keys, palette, folder


async def test_command_palette_runs_app_commands(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.log_history
        await pilot.press("ctrl+p")
        await pilot.press(*"clear log")
        await pilot_wait_until(
            pilot, lambda: app.screen.query_one(CommandList).option_count > 0, what="matches"
        )
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: not app.log_history, what="the log to be cleared")


async def test_f1_lists_the_keys(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "KeysScreen")
        text = "\n".join(str(label.content) for label in app.screen.query("Label"))
        assert "^x" in text and "cancel the selected download" in text
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")


async def test_folder_picker_sets_the_destination(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    app = make_app(dest=tmp_path / "inbox")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "FolderPickerScreen")
        await pilot.press("backspace")  # up to tmp_path
        await pilot.press("enter")  # choose it
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")
        assert Path(app.form.field("dest").value) == tmp_path.resolve()


async def test_local_server_port_in_use_is_a_log_line(root: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = make_app(dest=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(ServerPane)
            pane.query_one("#serve-root", Input).value = str(root)
            pane.query_one("#serve-port", Input).value = str(port)
            await pilot.press("ctrl+s")
            await pilot_wait_until(pilot, lambda: "cannot serve" in log_text(app), what="the error")
            assert not pane.running and app.is_running
            assert app.query_one(TabbedContent).active == "server-tab"
    assert "address already in use" in log_text(app).lower()


async def test_retry_from_a_legacy_server_starts_again(
    stalling_peer: tuple[StallingLegacyPeer, int], dest: Path
) -> None:
    peer, port = stalling_peer
    app = make_app(host="127.0.0.1", port=port, file="big.iso", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: (dest / part_name("big.iso")).exists())
        await pilot_wait_until(
            pilot,
            lambda: (
                only_transfer(app).progress is not None
                and only_transfer(app).progress.done == STALL_FIRST_BLOCK
            ),  # type: ignore[union-attr]
        )
        await pilot.press("ctrl+x")
        await transfer_reaches(pilot, app, "cancelled")
        assert (dest / part_name("big.iso")).stat().st_size == STALL_FIRST_BLOCK
        only_transfer(app).legacy = False  # as if cancelled before the app learnt it was legacy
        await pilot.press("ctrl+r")
        await pilot_wait_until(
            pilot, lambda: len(peer.legacy_requests) == 2, what="a second request"
        )
        assert only_transfer(app).active
        assert "is a legacy server and cannot resume; starting again" in log_text(app)
        await pilot.press("ctrl+x")
        await transfer_reaches(pilot, app, "cancelled")


async def test_listing_the_server_picks_the_file(server: FileServer, dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=server.port_bound, dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "RemoteBrowserScreen")
        listing = app.screen.query_one(OptionList)
        await pilot_wait_until(pilot, lambda: listing.option_count == 3, what="the listing")
        labels = [str(listing.get_option_at_index(i).prompt) for i in range(3)]
        assert labels == ["  sub/  (folder)", "  empty.bin  (0 B)", "  hello.txt  (13 B)"]
        await pilot.press("enter")  # open sub/ (folders come first)
        # ``..`` and data.bin; the first entry, not ``..``, is highlighted
        await pilot_wait_until(pilot, lambda: listing.option_count == 2, what="sub/'s listing")
        await pilot.press("enter")  # choose data.bin
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")
        assert app.form.field("file").value == "sub/data.bin"
        await pilot.press("enter")
        await transfer_reaches(pilot, app, "done")


async def test_listing_a_legacy_server_says_it_cannot(legacy_server: int, dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=legacy_server, dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "RemoteBrowserScreen")
        note = app.screen.query_one("#browser-note", Label)
        await pilot_wait_until(pilot, lambda: "needs a getfile server" in str(note.content))
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")


async def test_one_table_of_actions_feeds_keys_help_and_palette(tmp_path: Path) -> None:
    from tui.actions import ACTIONS

    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.set_keymap({"cancel": "ctrl+k"})
        await pilot.press("f1")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "KeysScreen")
        text = "\n".join(str(label.content) for label in app.screen.query("Label"))
        words = " ".join(text.split())  # long descriptions wrap under themselves
        for action in ACTIONS:
            if action.key:
                assert action.help in words
        assert re.search(r"\^k +cancel the selected download", text)  # the key in force
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: type(app.screen).__name__ == "MainScreen")
        titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert titles["Cancel download"].endswith("(^k)")
        assert {a.palette for a in ACTIONS if a.palette} <= set(titles)
