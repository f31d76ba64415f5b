"""Verify against…: a finished download checked against what a publisher wrote."""

from __future__ import annotations

import hashlib
from pathlib import Path

from textual.widgets import Label

from getfile_core import FileServer
from tests.support.tui import make_app, only_transfer, pilot_wait_until
from tui.screens.verify import VerifyScreen

SIZE = (80, 24)
HELLO = b"hello, world\n"


async def _verify(
    server: FileServer, dest: Path, typed: str
) -> tuple[VerifyScreen, str, list[str]]:
    app = make_app(host="127.0.0.1", port=server.port_bound, file="hello.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: bool(app.transfers) and only_transfer(app).state == "done"
        )
        await pilot.press("f8")
        await pilot_wait_until(
            pilot, lambda: isinstance(app.screen, VerifyScreen), what="the dialog"
        )
        screen = app.screen
        assert isinstance(screen, VerifyScreen)
        await pilot.press(*typed, "enter")
        await pilot_wait_until(pilot, lambda: screen.verdict is not None, what="the verdict")
        verdict = str(screen.query_one("#verdict", Label).content)
        shown = str(screen.query_one("#digest", Label).content)
        assert shown == screen.digest
        await pilot.press("c")
        assert app.clipboard == screen.digest
        await pilot.press("escape")
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, VerifyScreen))
    return screen, verdict, app.log_history


async def test_verify_against_a_sha256sums_file(server: FileServer, dest: Path) -> None:
    sums = dest.parent / "SHA256SUMS"
    digest = hashlib.sha256(HELLO).hexdigest()
    sums.write_text(f"{'0' * 64}  other.iso\n{digest}  hello.txt\n")
    screen, verdict, log = await _verify(server, dest, str(sums))
    assert screen.verdict is True and verdict.startswith("✓ matches")
    assert f"hello.txt: sha256:{digest} matches (SHA256SUMS line 2)" in "\n".join(log)
    assert screen.digest == f"sha256:{digest}"  # the full digest, not a prefix


async def test_verify_mismatch_says_so(server: FileServer, dest: Path) -> None:
    screen, verdict, _log = await _verify(server, dest, "sha1:" + "0" * 40)
    assert screen.verdict is False and "MISMATCH" in verdict
    assert screen.digest == "sha1:" + hashlib.sha1(HELLO).hexdigest()
