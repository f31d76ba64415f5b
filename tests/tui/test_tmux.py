"""The real app in a real terminal: tmux runs ``getfile-tui``, a test types into it.

This is what a person over SSH does: start the app with its local server,
type a file name, press Enter, read the screen, quit. tmux runs on a private
socket so it never touches anyone else's sessions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
APP = PROJECT / ".venv" / "bin" / "getfile-tui"
TMUX = shutil.which("tmux")


@pytest.fixture(autouse=True)
def _tools_present() -> None:
    """No skip to go green: scripts/test installs tmux and sets up the app, so a gap fails."""
    if TMUX is None:
        pytest.fail("tmux is not installed (scripts/test installs it)")
    if not APP.exists():
        pytest.fail(f"{APP} is missing: run bash scripts/setup")


class Tmux:
    def __init__(self) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-L", f"getfile-test-{uuid.uuid4().hex[:12]}", "-f", "/dev/null"]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def wait_for(self, what: Callable[[str], bool], timeout: float, name: str) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        for _ in range(int(timeout / 0.1) + 1):
            screen = self.screen()
            if what(screen):
                return screen
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling the screen, bounded: the condition is what we wait on
        raise AssertionError(f"timed out waiting for {name}; the screen was:\n{screen}")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux()
    try:
        yield session
    finally:
        subprocess.run([*session.base, "kill-server"], capture_output=True, timeout=10)


TERMINALS = {
    "xterm-256color": {"TERM": "xterm-256color"},
    "screen": {"TERM": "screen"},
    "linux-console": {"TERM": "linux"},
    "no-color": {"TERM": "xterm-256color", "NO_COLOR": "1"},
}


@pytest.mark.parametrize("terminal", TERMINALS)
def test_download_in_a_real_terminal(tmux: Tmux, root: Path, dest: Path, terminal: str) -> None:
    env = {
        **TERMINALS[terminal],
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # This checkout's code, whichever worktree's venv runs it (as test_tmux_hangup).
        "PYTHONPATH": str(PROJECT),
        # The app keeps its queue and history there: a test's own, never the user's.
        "XDG_STATE_HOME": str(dest.parent / "xdg-state"),
        "XDG_CONFIG_HOME": str(dest.parent / "xdg-config"),
    }
    # The shell reports how the app ended, on the screen, then keeps the pane open (tmux
    # may drop a dead pane's last output) until the fixture's kill-server.
    command = f"{APP} --serve {root} --dest {dest}; echo app exited with status $?; read -r _"
    tmux(
        "new-session", "-d", "-s", "app", "-x", "80", "-y", "24",
        *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
        command,
    )  # fmt: skip
    tmux.wait_for(lambda s: "local server: serving" in s, 20, "the app and its server")
    # The empty form was pointed at the local server and the cursor waits in File.
    tmux("send-keys", "-t", "app", "-l", "sub/data.bin")
    tmux("send-keys", "-t", "app", "Enter")
    screen = tmux.wait_for(lambda s: "digest verified" in s, 20, "the download to finish")
    assert "data.bin" in screen and "done" in screen and "100%" in screen
    assert (dest / "data.bin").read_bytes() == (root / "sub" / "data.bin").read_bytes()
    tmux("send-keys", "-t", "app", "C-q")
    screen = tmux.wait_for(lambda s: "app exited with status" in s, 15, "the app to exit")
    assert "app exited with status 0" in screen


def test_a_typed_number_of_segments_replaces_the_one_shown(tmux: Tmux, dest: Path) -> None:
    """In a real terminal the dialog's "1" stayed and typing 4 gave 14 segments; the pilot
    (whose focus arrives in another order) never showed it."""
    env = {
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT),
        "XDG_STATE_HOME": str(dest.parent / "xdg-state"),
        "XDG_CONFIG_HOME": str(dest.parent / "xdg-config"),
    }
    tmux(
        "new-session", "-d", "-s", "app", "-x", "80", "-y", "24",
        *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
        f"{APP} --dest {dest}",
    )  # fmt: skip
    tmux.wait_for(lambda s: "Ready." in s, 20, "the app")
    tmux("send-keys", "-t", "app", "C-p")
    tmux.wait_for(lambda s: "🔎" in s, 10, "the command palette")
    tmux("send-keys", "-t", "app", "-l", "Segments and mirrors")
    tmux.wait_for(lambda s: "Connections per file" in s, 10, "the command")
    tmux("send-keys", "-t", "app", "Enter")
    tmux.wait_for(lambda s: "Mirrors (Tab)" in s, 10, "the dialog")
    tmux("send-keys", "-t", "app", "4")
    tmux.wait_for(lambda s: "│ 4 " in s, 10, "the typed 4 alone in the field")
    tmux("send-keys", "-t", "app", "Enter")
    screen = tmux.wait_for(lambda s: "Download · " in s, 10, "the form's title")
    assert "Download · 4 segments" in screen
    tmux("send-keys", "-t", "app", "C-q")
