"""Helpers shared by the unit and integration tests: peers, processes, files, waits.

Every wait here is bounded in time and says what it was waiting for, so a
hang turns into a clear failure instead of a stuck CI job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import blake3

from getfile_core import protocol
from getfile_core.protocol import Request, Response

GETFILE = (sys.executable, "-m", "getfile_core")
LEGACY_PEER = Path(__file__).parent / "peers" / "legacy_getfile.py"
MIB = 1024 * 1024
#: Generous bound for anything that should take well under a second.
PATIENCE = 20.0


# ---------------------------------------------------------------- files and digests


def write_random(path: Path, size: int, chunk: int = MIB) -> str:
    """Write ``size`` random bytes in chunks; return their ``blake3:<hex>`` digest."""
    hasher = blake3.blake3()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            handle.write(block)
            hasher.update(block)
            left -= len(block)
    return "blake3:" + hasher.hexdigest()


def digest_of(path: Path) -> str:
    """The wire digest of a file on disk, read in chunks (never loaded whole)."""
    hasher = blake3.blake3()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            hasher.update(block)
    return "blake3:" + hasher.hexdigest()


def digest_bytes(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


# ---------------------------------------------------------------- ports and waits


def unused_port() -> int:
    """A loopback port that was just bound and closed, so nothing listens on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    """Poll a condition until it holds; fail with ``what`` if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def transfer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "getfile-transfer" and t.is_alive()]


def join_transfer_threads(timeout: float = PATIENCE) -> list[threading.Thread]:
    """Join every transfer thread; return the ones still alive afterwards (should be none)."""
    deadline = time.monotonic() + timeout
    for thread in transfer_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    return transfer_threads()


# ---------------------------------------------------------------- the CLI


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

    def __init__(self, argv: Sequence[str], cwd: Path | str | None = None) -> None:
        self.proc = subprocess.Popen(
            [*GETFILE, *argv],
            cwd=cwd,
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
def serve_process(argv: Sequence[str], cwd: Path | str | None = None) -> Iterator[ServeProcess]:
    server = ServeProcess(argv, cwd)
    try:
        yield server
    finally:
        server.kill()


# ---------------------------------------------------------------- scripted peers

VERSION_2_MAGIC = b"\x00getfile/2 "
UNSUPPORTED_VERSION = b"getfile/1 505 unsupported-version\nmessage: this server speaks 1\n\n"

Script = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted_server(script: Script, *, version_2: bool = False) -> AsyncIterator[int]:
    """A one-purpose peer on 127.0.0.1:0: read the request line, run ``script``, close.

    Used to play servers that lie, stall or break the format, which our own
    server never does. Yields the port. A version-1 server unless
    ``version_2``: a version-2 request is answered ``505`` (as a real one
    would) and the client asks again in version 1, which ``script`` then sees.
    """
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            line = await asyncio.wait_for(reader.readline(), PATIENCE)
            if line.startswith(VERSION_2_MAGIC) and not version_2:
                writer.write(UNSUPPORTED_VERSION)  # what a version-1 server answers
                return
            await script(line.rstrip(b"\n"), writer)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=5)
        await asyncio.wait_for(server.wait_closed(), 5)


def ok_head(body: bytes, *, digest: str | None = None, size: int | None = None) -> bytes:
    """An honest-looking response head for ``body`` (the digest and size may be overridden)."""
    return protocol.encode_response_head(
        Response(
            protocol.Status.OK,
            size=len(body) if size is None else size,
            mtime_ns=1_700_000_000_000_000_000,
            digest=digest_bytes(body) if digest is None else digest,
        )
    )


# ---------------------------------------------------------------- raw protocol exchanges


async def raw_exchange(
    port: int, request: Request, *, max_body: int = 64 * MIB
) -> tuple[Response, bytes]:
    """One extended request over asyncio streams, framed by ``ClientConnection``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = protocol.ClientConnection(request)
    response: Response | None = None
    body = bytearray()
    try:
        writer.write(conn.request_bytes())
        async with asyncio.timeout(PATIENCE):
            while True:
                event = conn.next_event()
                if event is protocol.NEED_DATA:
                    conn.receive_data(await reader.read(256 * 1024))
                elif isinstance(event, Response):
                    response = event
                elif isinstance(event, protocol.Data):
                    body += event.data
                    assert len(body) <= max_body
                else:
                    break
    finally:
        writer.close()
    assert response is not None
    return response, bytes(body)
