"""Issue 14's rough edges, one pilot test each (each failed before its fix), at 80x24."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandList
from textual.widgets import Input

from getfile_core import FileServer, Progress, RetryNotice, Target, part_name
from tests.support import STALL_FIRST_BLOCK, StallingLegacyPeer, unused_port
from tests.support.tui import make_app, only_transfer, pilot_wait_until
from tests.tui.test_flows import log_text
from tui.downloads import DownloadController
from tui.launch import parse_args
from tui.messages import LogLine
from tui.screens.confirm import ConfirmScreen
from tui.screens.keys import KeysScreen
from tui.screens.overwrite import OverwriteScreen
from tui.text import in_app_words
from tui.transfers import Transfer
from tui.widgets.server_pane import ServerPane
from tui.widgets.transfer_list import TransferRow, name_width, short_reason

SIZE = (80, 24)


async def test_1_retry_after_rename_keeps_the_new_name(
    stalling_peer: tuple[StallingLegacyPeer, int], dest: Path
) -> None:
    _peer, port = stalling_peer
    (dest / "big.iso").write_bytes(b"keep me")
    app = make_app(host="127.0.0.1", port=port, file="big.iso", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: isinstance(app.screen, OverwriteScreen), what="dialog"
        )
        await pilot.press("n")
        await pilot_wait_until(
            pilot,
            lambda: bool(app.transfers) and only_transfer(app).progress is not None,
            what="bytes",
        )
        await pilot.press("ctrl+x")
        await pilot_wait_until(pilot, lambda: only_transfer(app).state == "cancelled")
        await pilot.press("ctrl+r")
        await pilot_wait_until(pilot, lambda: only_transfer(app).active, what="the retry")
        # No question about the original, and the renamed partial file is the one in use.
        assert not isinstance(app.screen, OverwriteScreen)
        assert only_transfer(app).name == "big (1).iso"
        await pilot.press("ctrl+x")
        await pilot_wait_until(pilot, lambda: only_transfer(app).state == "cancelled")
    assert (dest / "big.iso").read_bytes() == b"keep me"
    assert not (dest / part_name("big.iso")).exists()
    assert (dest / part_name("big (1).iso")).stat().st_size >= STALL_FIRST_BLOCK


async def test_2_port_field_holds_the_default_port(server: FileServer, dest: Path) -> None:
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE):
        assert app.form.field("port").value == "50001"
        # Empty at start is not wrong yet: nothing painted red before anyone typed.
        assert not any(field.has_class("-invalid") for field in app.form.query(Input))
        assert [key for key, _reason in app.form.problems()] == ["host", "file"]


def test_3_port_zero_in_a_url_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["getfile://h:0/x"])
    assert exit_info.value.code == 2
    assert "port 0" in capsys.readouterr().err


async def test_3_port_zero_pasted_is_refused(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.form.field("host").focus()
        app.form.field("host").value = "getfile://h:0/x"
        await pilot.pause()
        assert app.form.field("port").value == "50001"
        assert "port 0" in (app.form.border_subtitle or "")


async def test_4_picked_file_leaves_no_selection(server: FileServer, dest: Path) -> None:
    app = make_app(
        host="127.0.0.1", port=server.port_bound, file="a-much-longer-old-name", dest=dest
    )
    async with app.run_test(size=SIZE) as pilot:
        app.form.file_chosen(b"hello.txt")
        await pilot.pause()
        await pilot.pause()
        field = app.form.field("file")
        assert app.focused is field
        await pilot.press("x")
        assert field.value == "hello.txtx"


async def test_5_url_pasted_into_file_fills_the_form(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.form.field("file").focus()
        app.form.field("file").value = "getfile://example.org:6000/docs/x.txt"
        await pilot.pause()
        assert app.form.field("host").value == "example.org"
        assert app.form.field("port").value == "6000"
        assert app.form.field("file").value == "docs/x.txt"
        assert app.form.file_path() == b"docs/x.txt"


async def test_6_stopping_a_busy_local_server_asks(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(dest=tmp_path, serve=root)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server")
        monkeypatch.setattr(ServerPane, "sending", property(lambda _self: 2))
        await pilot.press("ctrl+s")
        await pilot_wait_until(
            pilot, lambda: isinstance(app.screen, ConfirmScreen), what="question"
        )
        await pilot.press("n")
        await pilot.pause()
        assert pane.running
        await pilot.press("ctrl+s")
        await pilot_wait_until(
            pilot, lambda: isinstance(app.screen, ConfirmScreen), what="question"
        )
        await pilot.press("y")
        await pilot_wait_until(pilot, lambda: not pane.running, what="the server to stop")


async def test_7_8_logs_rewrap_on_resize_and_follow(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        long_line = "word " * 60
        for number in range(40):
            app.log_pane.add(f"{number} {long_line}")
        await pilot.pause()
        log = app.log_pane
        narrow = len(log.lines)
        await pilot.resize_terminal(200, 50)
        await pilot_wait_until(pilot, lambda: len(log.lines) < narrow, what="re-wrap at 200")
        assert len(log.lines) <= 2 * 41 + 1, len(log.lines)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y  # the newest line is in sight
        await pilot.resize_terminal(60, 24)
        await pilot_wait_until(pilot, lambda: len(log.lines) > narrow, what="re-wrap at 60")


async def test_8_palette_keys_opens_our_keys_screen(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"keys")
        await pilot_wait_until(
            pilot, lambda: app.screen.query_one(CommandList).option_count > 0, what="matches"
        )
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, KeysScreen), what="keys")
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, KeysScreen))
        assert not app.screen.query("HelpPanel")


async def test_9_failed_row_keeps_its_bar_and_says_a_word(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        transfer = Transfer(Target("h", 1, b"big.iso"), str(tmp_path), "big.iso")
        app.transfer_list.add(transfer)
        transfer.observe(Progress("downloading", 35_688_712, 209_715_200, 1e6, 30.0, False))
        transfer.fail("connection closed after 35688712 of 209715200 bytes")
        await pilot.pause()
        row = app.transfer_list.row(transfer.id)
        assert row is not None
        row.show()
        await pilot.pause()
        assert "█░" in str(row.cell("bar").content) and "17%" in str(row.cell("bar").content)
        assert str(row.cell("rate").content) == "link lost"
        assert "34.0 MiB/200 MiB" in str(row.cell("bytes").content)
        assert row.has_class("-failed") and not row.has_class("-words")
    assert short_reason("no such file (404 not-found)") == "not found"


async def test_10_table_fits_the_width(tmp_path: Path) -> None:
    assert (name_width(76), name_width(196), name_width(56)) == (15, 48, 14)
    app = make_app(dest=tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        from getfile_core import Target
        from tui.transfers import Transfer

        transfer = Transfer(Target("h", 1, b"x"), str(tmp_path), "x")
        app.transfer_list.add(transfer)
        await pilot.pause()
        row = app.transfer_list.row(transfer.id)
        assert row is not None
        assert row.cell("name").size.width < 70
        assert row.cell("bar").size.width > 30
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        assert row.cell("name").size.width >= 12
        assert not row.cell("eta").display or row.cell("eta").size.width == 0


async def test_11_rows_are_one_tab_stop_and_a_key_jumps_to_the_form(tmp_path: Path) -> None:
    from getfile_core import Target
    from tui.transfers import Transfer

    app = make_app(host="h", port=1, file="f", dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for number in range(6):
            app.transfer_list.add(Transfer(Target("h", 1, b"x"), str(tmp_path), f"x{number}"))
        await pilot.pause()
        focusable_rows = [w for w in app.screen.focus_chain if isinstance(w, TransferRow)]
        assert len(focusable_rows) == 1
        app.transfer_list.select(app.transfer_list.rows[0])
        await pilot.press("down", "down")
        assert app.focused is app.transfer_list.rows[2]
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.focused, Input) and app.focused in app.form.query(Input)
        await pilot.press("ctrl+t")
        await pilot.pause()
        await pilot.pause()
        assert app.focused in app.server_pane.query("Input, Button")


def test_12_advice_is_said_in_the_app() -> None:
    said = in_app_words("x exists (use --overwrite to replace it)")
    assert "--" not in said and "Retry" in said
    assert "use ls" not in in_app_words("is a folder (use ls)")


async def test_13_no_dialog_for_a_server_that_is_not_there(dest: Path) -> None:
    (dest / "x.bin").write_bytes(b"old")
    app = make_app(host="127.0.0.1", port=unused_port(), file="x.bin", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: "refused" in log_text(app), what="the refusal")
        assert not isinstance(app.screen, OverwriteScreen)
    assert (dest / "x.bin").read_bytes() == b"old"


async def test_15_title_keeps_the_port_and_the_form_follows_a_restart(
    root: Path, tmp_path: Path
) -> None:
    app = make_app(dest=tmp_path, serve=root)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server")
        first = str(pane.server.port_bound)  # type: ignore[union-attr]
        assert app.sub_title.startswith(f"serving on 127.0.0.1:{first}")
        assert app.form.field("port").value == first
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: not pane.running, what="stop")
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: pane.running, what="start again")
        second = str(pane.server.port_bound)  # type: ignore[union-attr]
        await pilot_wait_until(
            pilot, lambda: app.form.field("port").value == second, what="new port"
        )
        app.form.set_values(host="", port="1")
        await pilot.press("f6")
        assert app.form.field("port").value == second


def test_14_rate_and_eta_after_a_resume_count_fresh_bytes_only() -> None:
    transfer = Transfer(Target("h", 1, b"big.iso"), "/tmp", "big.iso")
    mib = 1024 * 1024
    # The client's first sample predates the resume offset: its rate counts 100 MiB as new.
    transfer.observe(Progress("connecting", 0, None, 0.0, 0.1, False))
    transfer.observe(Progress("downloading", 100 * mib, 200 * mib, 190 * mib, 0.6, False))
    transfer.observe(Progress("downloading", 101 * mib, 200 * mib, 170 * mib, 1.6, False))
    transfer.observe(Progress("downloading", 102 * mib, 200 * mib, 150 * mib, 2.6, False))
    assert transfer.rate == pytest.approx(mib)
    assert transfer.eta == pytest.approx(98.0)


async def test_17_waiting_for_a_hashing_server_says_so(tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        transfer = Transfer(Target("h", 1, b"big.iso"), str(tmp_path), "big.iso")
        app.transfer_list.add(transfer)
        note = "server is hashing big.iso (40%)"
        transfer.observe(Progress("waiting", 0, None, 0.0, 5.0, False, note=note))
        await pilot.pause()
        row = app.transfer_list.row(transfer.id)
        assert row is not None
        row.show()
        await pilot.pause()
        assert str(row.cell("state").content) == "waiting"
        assert str(row.cell("reason").content) == note
        assert row.cell("reason").display and row.has_class("-words")


def test_12_retry_lines_say_it_in_the_app_too() -> None:
    posted: list[object] = []
    controller = DownloadController(None, posted.append, lambda *_: None)  # type: ignore[arg-type]
    transfer = Transfer(Target("h", 1, b"big.iso"), "/tmp", "big.iso")
    reason = "connection closed after 5 of 40 bytes (kept x.getfile-part; --resume continues it)"
    controller._retrying(transfer, RetryNotice(1, 10, 1.0, reason))
    [line] = [m for m in posted if isinstance(m, LogLine)]
    # No command-line advice, and no advice to press Retry for a retry on its way.
    assert "--resume" not in line.text and "Retry continues" not in line.text
    assert line.text.endswith("(kept x.getfile-part)")
