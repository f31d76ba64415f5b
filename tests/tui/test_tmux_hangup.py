"""Close the terminal mid-download (tmux kill-session sends SIGHUP) and come back.

What a person over SSH lives through: the app downloads through a slow link
(``tests/support/links.py``), the session dies, the app is started again
with no arguments, and the download resumes from its partial file and
finishes verified. The app runs this worktree's code (``python -m tui``
with ``PYTHONPATH``) and keeps its queue in a private ``XDG_STATE_HOME``.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core import part_name
from tests.support import wait_until_sync
from tests.support.links import Link, LinkEmulator
from tests.tui.test_tmux import TMUX, Tmux

PROJECT = Path(__file__).resolve().parents[2]
BIG = 2 * 1024 * 1024
RATE = 256 * 1024  # 8 s for the file: the hang-up lands in the middle


@pytest.fixture(autouse=True)
def _tmux_present() -> None:
    """No skip to go green: scripts/test installs tmux."""
    if TMUX is None:
        pytest.fail("tmux is not installed (scripts/test installs it)")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux()
    try:
        yield session
    finally:
        subprocess.run([*session.base, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def served_port(root: Path) -> Iterator[int]:
    (root / "big.bin").write_bytes(os.urandom(BIG))
    proc = subprocess.Popen(
        [sys.executable, "-m", "getfile_core", "serve", str(root), "--host", "127.0.0.1",
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for _ in range(50):
            line = proc.stdout.readline()
            if "127.0.0.1:" in line:
                yield int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
                break
        else:
            raise AssertionError("the server did not say its port")
    finally:
        proc.terminate()
        proc.wait(10)


def start_app(tmux: Tmux, state: Path, *args: str) -> None:
    env = {
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT),
        "XDG_STATE_HOME": str(state),
        "XDG_CONFIG_HOME": str(state / "config"),
    }
    command = " ".join([sys.executable, "-m", "tui", *args])
    tmux(
        "new-session", "-d", "-s", "app", "-x", "80", "-y", "24",
        *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
        command + "; read -r _",
    )  # fmt: skip


def test_kill_the_session_and_come_back(
    tmux: Tmux, served_port: int, root: Path, dest: Path, tmp_path: Path
) -> None:
    state = tmp_path / "xdg-state"
    with LinkEmulator(served_port, Link(rate=RATE)) as relay:
        start_app(tmux, state, f"getfile://127.0.0.1:{relay.port}/big.bin", "--dest", str(dest))
        tmux.wait_for(lambda s: "Ready." in s, 20, "the app")
        tmux("send-keys", "-t", "app", "Enter")
        tmux.wait_for(lambda s: "downloading" in s, 20, "the download to start")
        part = dest / part_name("big.bin")
        tmux.wait_for(lambda s: part.exists() and part.stat().st_size > 0, 20, "bytes")
        [app_pid] = app_processes(dest)
        tmux("kill-session", "-t", "app")  # the terminal closes: SIGHUP
        queue = state / "getfile" / "state.json"
        tmux_wait_file(queue, '"active"')
        # The app really ends: it once stayed alive, unseen, blocked writing to the dead terminal.
        wait_until_sync(lambda: app_pid not in app_processes(dest), "the app to exit", 30)
        assert not (dest / "big.bin").exists()

        start_app(tmux, state, "--dest", str(dest))
        screen = tmux.wait_for(lambda s: "digest verified" in s, 40, "the resumed download")
        assert "resuming 1 unfinished" in screen or "resumed at" in screen
    assert (dest / "big.bin").read_bytes() == (root / "big.bin").read_bytes()
    assert not part.exists()


def app_processes(dest: Path) -> list[int]:
    """Pids of running ``python -m tui`` processes started with ``--dest dest``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tui" in argv and str(dest).encode() in argv:
            found.append(int(entry.name))
    return found


def tmux_wait_file(path: Path, text: str, timeout: float = 15.0) -> None:
    """Wait (bounded) until the app, exiting on SIGHUP, has saved ``text`` into ``path``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.1)  # polling a file another process writes; the content is the condition
    raise AssertionError(f"{path} never said {text}")


@pytest.fixture
def served_tree(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder ``big/`` of two files (one nested) and an empty folder, served."""
    top = tmp_path / "tree"
    (top / "big" / "sub").mkdir(parents=True)
    (top / "big" / "empty").mkdir()
    # Over 1 MiB each: smaller bodies are taken whole into memory, with no partial file.
    (top / "big" / "a.bin").write_bytes(os.urandom(BIG))
    (top / "big" / "sub" / "b.bin").write_bytes(os.urandom(BIG * 3 // 4))
    proc = subprocess.Popen(
        [sys.executable, "-m", "getfile_core", "serve", str(top), "--host", "127.0.0.1",
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for _ in range(50):
            line = proc.stdout.readline()
            if "127.0.0.1:" in line:
                yield top, int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
                break
        else:
            raise AssertionError("the server did not say its port")
    finally:
        proc.terminate()
        proc.wait(10)


def test_kill_the_session_mid_folder_download_and_come_back(
    tmux: Tmux, served_tree: tuple[Path, int], dest: Path, tmp_path: Path
) -> None:
    """The lead's report: the grouped row used to be gone after the relaunch."""
    top, port = served_tree
    state = tmp_path / "xdg-state"
    # All the tree's connections share 256 KiB/s: 14 s for the folder.
    with LinkEmulator(port, Link(total_rate=RATE)) as relay:
        start_app(tmux, state, f"getfile://127.0.0.1:{relay.port}/", "--dest", str(dest))
        tmux.wait_for(lambda s: "Ready." in s, 20, "the app")
        tmux("send-keys", "-t", "app", "C-l")
        tmux.wait_for(lambda s: "big/" in s, 20, "the listing")
        tmux("send-keys", "-t", "app", "Space", "Enter")
        tmux.wait_for(lambda s: "+ big" in s and "downloading" in s, 20, "the folder row")
        wait_until_sync(lambda: any(p.stat().st_size > 0 for p in parts(dest)), "bytes", 20)
        [app_pid] = app_processes(dest)
        tmux("kill-session", "-t", "app")  # the terminal closes: SIGHUP
        queue = state / "getfile" / "state.json"
        wait_until_sync(lambda: saved_group_state(queue) == "active", "the saved group", 15)
        wait_until_sync(lambda: app_pid not in app_processes(dest), "the app to exit", 30)

        start_app(tmux, state, "--dest", str(dest))
        tmux.wait_for(lambda s: "resuming 1 unfinished" in s, 20, "the folder's row back")
        screen = tmux.wait_for(lambda s: "+ big 2/2" in s and "done" in s, 40, "the tree done")
        assert "cancelled" not in screen
    for name in ("a.bin", "sub/b.bin"):
        assert (dest / "big" / name).read_bytes() == (top / "big" / name).read_bytes()
    assert (dest / "big" / "empty").is_dir() and not parts(dest)


def saved_group_state(queue: Path) -> str | None:
    """The saved state of the grouped row for ``big`` in the queue file, if there is one."""
    import json

    if not queue.exists():
        return None
    for entry in json.loads(queue.read_text())["transfers"]:
        if (entry.get("group") or {}).get("names") == ["big"]:
            return entry["state"]
    return None


def parts(dest: Path) -> list[Path]:
    return list(dest.rglob("*.getfile-part"))


def test_a_closed_terminal_ends_the_app_by_itself(
    served_port: int, dest: Path, tmp_path: Path
) -> None:
    """The app is the session leader of a pseudo-terminal, as under ``ssh -t host
    getfile-tui``, and the terminal closes under it: the kernel sends SIGHUP and SIGCONT.

    The SIGCONT used to restart Textual's screen on the dead terminal; its writer
    thread died on EIO, the exit then blocked on its full queue, and only the 15 s
    safety net (``FORCED_EXIT``) ended the process. The app must end by itself (0).
    """
    status = hang_up_mid_download(served_port, dest, tmp_path, lead=True)
    assert status == 0, f"exit status {status}: ended by the safety net, not by itself"


def test_a_closed_terminal_nobody_reports_still_ends_the_app(
    served_port: int, dest: Path, tmp_path: Path
) -> None:
    """The app runs under a shell that ignores the hang-up (``trap '' HUP``, as ``nohup``
    does): only the shell, the session's leader, is told. Untold, the app drew on a dead
    terminal, blocked for ever in Textual's writer and spun a core reading its end of
    file (two such processes ran 20 minutes). It must notice by itself and end cleanly.
    """
    status = hang_up_mid_download(served_port, dest, tmp_path, lead=False)
    assert status == 0, f"exit status {status}: ended by the safety net, not by itself"


def hang_up_mid_download(served_port: int, dest: Path, tmp_path: Path, *, lead: bool) -> int:
    """Run the app on a pty, start big.bin through a slow link, close the pty: the app's
    exit status (the queue must hold the row as unfinished, the partial file kept).

    ``lead``: the app leads the pty's session (``setsid -c``: no fork, since Popen's
    child leads no process group, so the app is our child); else a shell that ignores
    SIGHUP leads it and reports the app's status in a file.
    """
    state = tmp_path / "xdg-state"
    status_file = tmp_path / "status"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT),
        "XDG_STATE_HOME": str(state),
        "XDG_CONFIG_HOME": str(state / "config"),
    }
    part = dest / part_name("big.bin")
    with LinkEmulator(served_port, Link(rate=RATE)) as relay:
        app_argv = [sys.executable, "-m", "tui", f"getfile://127.0.0.1:{relay.port}/big.bin",
                    "--dest", str(dest)]  # fmt: skip
        if not lead:
            shell = f"trap '' HUP; {shlex.join(app_argv)}; echo $? > {status_file}"
            app_argv = ["sh", "-c", shell]
        leader = subprocess.Popen(
            ["setsid", "-c", *app_argv],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        screen = ScreenReader(master)
        try:
            try:
                wait_until_sync(lambda: b"Ready." in screen.output, "the app", 20)
                os.write(master, b"\r")
                wait_until_sync(lambda: part.exists() and part.stat().st_size > 0, "bytes", 20)
                [app_pid] = app_processes(dest)
            finally:
                screen.close()  # closes the master: the terminal hangs up
            wait_until_sync(lambda: app_pid not in app_processes(dest), "the app to exit", 30)
            status = leader.wait(10) if lead else int(wait_for_text(status_file))
        finally:
            for pid in app_processes(dest):  # never leave one behind, spinning
                os.kill(pid, signal.SIGKILL)
            if leader.poll() is None:
                leader.kill()
                leader.wait(10)
    saved = (state / "getfile" / "state.json").read_text()
    assert '"active"' in saved and part.exists()
    return status


def wait_for_text(path: Path) -> str:
    wait_until_sync(lambda: path.exists() and path.read_text().endswith("\n"), str(path), 10)
    return path.read_text()


class ScreenReader:
    """Drains a pty master in a thread (an undrained terminal blocks the app's drawing)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.output = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the app is gone
                return
            if not chunk:
                return
            self.output = (self.output + chunk)[-65536:]

    def close(self) -> None:
        """Stop reading, then close the master: the terminal hangs up."""
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
