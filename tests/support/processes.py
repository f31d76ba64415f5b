"""The ``getfile`` command as users run it: one-shot runs, servers in child processes.

Every run is bounded in time; a server's port comes from its start-up line
(never a guessed port); its output is drained by threads so a chatty log
can never fill a pipe and stall it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.waits import PATIENCE, wait_until_sync

GETFILE = (sys.executable, "-m", "getfile_core")
PROJECT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str,
    cwd: Path | str | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m getfile_core ARGS`` with pipes (so never a terminal), bounded in time."""
    return run_program([*GETFILE, *args], cwd=cwd, timeout=timeout, env=env)


def run_program(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Any program with pipes and no stdin, bounded in time."""
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


async def run_async(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    stdin: bytes | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes, bytes]:
    """Run a process without blocking the event loop (an in-process server may be on it)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out, err


def run_cli_on_terminal(
    *args: str, cwd: Path | str | None = None, timeout: float = 60.0
) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; return (exit code, stdout, terminal text).

    stdout stays a pipe, so a test sees exactly what lands on the terminal
    and what would land in a redirected file.
    """
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            [*GETFILE, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
        )
        os.close(slave)
        slave = -1
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        reader.join(timeout=PATIENCE)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def assert_one_error_line(stderr: str) -> str:
    """A failure says one clear line on stderr and never shows a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    return lines[0]


_SERVING = re.compile(r"on getfiles?://(\S+):(\d+)/")


class ServeProcess:
    """A ``getfile`` server run as a child process; the port comes from its start-up line.

    stderr is drained by a thread into a queue (so the access log can never
    fill the pipe and stall the server) and kept in ``lines``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            [*GETFILE, *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.out_lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._drain, args=(self.proc.stderr, True), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stdout, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.port = self._wait_for_port()

    def _drain(self, stream, is_err: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            (self.lines if is_err else self.out_lines).append(line)
            if is_err:
                self._queue.put(line)
        if is_err:
            self._queue.put(None)

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError("server printed no start-up line in time") from None
            if line is None:
                self.kill()
                raise AssertionError(f"server exited early: {''.join(self.lines)}")
            match = _SERVING.search(line)
            if match:
                return int(match[2])

    def wait_for_line(self, needle: str, *, stdout: bool = False) -> str:
        """The first output line containing ``needle``, waiting for it (bounded)."""
        deadline = time.monotonic() + PATIENCE
        lines = self.out_lines if stdout else self.lines
        while time.monotonic() < deadline:
            for line in list(lines):
                if needle in line:
                    return line
            time.sleep(0.01)
        raise AssertionError(f"no line with {needle!r} in {lines!r}")

    def url(self, path: str = "") -> str:
        return f"getfile://127.0.0.1:{self.port}/{path}"

    def terminate(self, timeout: float = PATIENCE) -> int:
        """SIGTERM, then wait for the exit code (killing it if it overstays)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = PATIENCE) -> int:
        """Wait for the exit code without signalling (a second SIGTERM may cut a shutdown)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server did not stop after SIGTERM") from None
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """Make sure the process is gone and its pipes are closed (always safe to call)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=PATIENCE)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    @property
    def stdout(self) -> str:
        return "".join(self.out_lines)


@contextlib.contextmanager
def serve_process(
    argv: Sequence[str], cwd: Path | str | None = None, env: dict[str, str] | None = None
) -> Iterator[ServeProcess]:
    """``getfile ARGV`` as a server for the ``with`` block; killed (always) at its end."""
    server = ServeProcess(argv, cwd, env)
    try:
        yield server
    finally:
        server.kill()


class ServerProcess:
    """``python -m getfile_core serve`` in a subprocess; optionally as an unprivileged user.

    Dropping privileges happens inside the child after its imports, because
    the interpreter itself may live where the unprivileged user cannot read.
    """

    _DROP_AND_RUN = (
        "import os, sys, asyncio, heapq, secrets, signal, time, shutil, gettext, textwrap\n"
        "import concurrent.futures.thread\n"
        "import getfile_core.cli as cli, getfile_core.cli.serve, getfile_core.server.fileserver\n"
        "uid = int(sys.argv[1])\n"
        "os.setgroups([]); os.setgid(uid); os.setuid(uid)\n"
        "sys.exit(cli.main(sys.argv[2:]))\n"
    )

    def __init__(
        self,
        root: Path,
        *args: str,
        port: int = 0,
        as_uid: int | None = None,
        nofile: int | None = None,
        log: Path,
    ) -> None:
        self.root = root
        #: RLIMIT_NOFILE (soft and hard) for the child: a server short of descriptors.
        self.nofile = nofile
        self.args = list(args)
        self.port = port
        self.as_uid = as_uid
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> ServerProcess:
        serve = ["serve", str(self.root), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.as_uid is None:
            command = [sys.executable, "-m", "getfile_core", *serve, *self.args]
        else:
            command = [sys.executable, "-c", self._DROP_AND_RUN, str(self.as_uid), *serve]
            command += self.args
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=PROJECT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=None if self.nofile is None else self._limit_descriptors,
            )
        found: list[int] = []

        def announced() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()}"
            match = re.search(r"getfile://127\.0\.0\.1:(\d+)/", self.log.read_text())
            if match and (self.port == 0 or int(match[1]) == self.port):
                found.append(int(match[1]))
            return bool(found)

        wait_until_sync(announced, "the server announces its port", timeout)
        self.port = found[-1]
        return self

    def _limit_descriptors(self) -> None:
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
