"""Pictures of the screen a reviewer can open (``__snapshots__/*.svg``).

Deterministic by construction: a fixed clock for the log, relative paths
under a temporary working folder, port 1 (nothing listens there) for the
failed download, and the local server's one varying value (its port)
masked in the text before the picture is taken.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from getfile_core import part_name
from tests.support.tui import FIXED_TIME, answering_lister, make_app, pilot_wait_until
from tui.app import GetfileApp
from tui.launch import Launch
from tui.screens.keys import KeysScreen
from tui.screens.overwrite import OverwriteScreen
from tui.settings import LoadedSettings, Settings
from tui.widgets.server_pane import ServerPane


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with ``downloads/`` and ``served/hello.txt``; paths shown stay short."""
    (tmp_path / "downloads").mkdir()
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "hello.txt").write_bytes(b"hello, world\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_main_screen_80x24(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(host="files.example.org", port=50001, file="docs/report.pdf", dest="downloads")
    assert snap_compare(app, terminal_size=(80, 24))


def test_main_screen_120x40(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(host="files.example.org", port=50001, file="docs/report.pdf", dest="downloads")
    assert snap_compare(app, terminal_size=(120, 40))


def test_failed_download(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(host="127.0.0.1", port=1, file="hello.txt", dest="downloads")
    app.downloads.lister = answering_lister  # a server that is there (port 1 is not)

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: [t.state for t in app.transfers.values()] == ["failed"], what="failure"
        )

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_overwrite_dialog(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    (workdir / "downloads" / "hello.txt").write_bytes(b"old")
    (workdir / "downloads" / part_name("hello.txt")).write_bytes(b"hel")
    app = make_app(host="127.0.0.1", port=1, file="hello.txt", dest="downloads")
    app.downloads.lister = answering_lister  # a server that is there (port 1 is not)

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: isinstance(app.screen, OverwriteScreen), what="dialog"
        )

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_server_pane_running(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(dest="downloads", serve="served")

    async def run_before(pilot: Pilot) -> None:
        pane = app.query_one(ServerPane)
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server")
        await pilot.press("ctrl+t")
        port = str(pane.server.port_bound)  # type: ignore[union-attr]
        mask = {str(workdir): "/home/me", f":{port}": ":50001"}

        def masked(text: str) -> str:
            for real, shown in mask.items():
                text = text.replace(real, shown)
            return text

        status = pane.query_one("#server-status", Static)
        status.update(masked(str(status.content)))
        app.sub_title = masked(app.sub_title)
        app.form.set_values(port="50001")
        await pilot.pause()

    assert os.path.isdir("served")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_keys_screen_with_a_remapped_key(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    """F1 at 80x24 after ``[keys] download = "f12"`` and ``cancel = "ctrl+k"``: the keys
    in force, and a list that fits (it scrolls) instead of running off the screen."""
    loaded = LoadedSettings(
        Settings(keys={"download": "f12", "cancel": "ctrl+k"}), (), Path("config.toml")
    )
    app = GetfileApp(Launch(dest="downloads"), clock=lambda: FIXED_TIME, settings=loaded)

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("f1")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, KeysScreen), what="keys")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_remote_browser_with_a_selection(snap_compare, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    from getfile_core.protocol import Entry
    from tui.screens.remote_browser import RemoteBrowserScreen

    entries = [
        Entry(b"photos", "dir", 0, 0),
        Entry(b"logs", "dir", 0, 0),
        Entry(b"report.pdf", "file", 2_400_000, 0),
        Entry(b"notes [draft].txt", "file", 1200, 0),
        Entry(b"pipe", "other", 0, 0),
    ]

    async def lister(*_args: object, **_kwargs: object) -> tuple[list[Entry], bool]:
        return entries, False

    app = make_app(host="files.example.org", port=50001, file="docs/report.pdf", dest="downloads")

    async def run_before(pilot: Pilot) -> None:
        screen = RemoteBrowserScreen("files.example.org", 50001, b"docs", {}, lister=lister)
        app.push_screen(screen)
        await pilot_wait_until(pilot, lambda: len(screen.rows) == 5, what="the listing")
        # logs/ (Space moves on to photos/), then notes [draft].txt
        await pilot.press("space", "down", "space")
        await pilot_wait_until(pilot, lambda: len(screen.selected) == 2, what="the selection")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
