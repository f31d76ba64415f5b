"""Shared tools for the hardening tests: what a server holds, a hostile tree, a cutting proxy.

Leaks are counted, not guessed: descriptors in ``/proc/self/fd``, tasks in
the event loop, and every task that ends in an exception nobody expected
(the closest thing an asyncio server has to a crash). Waits poll a
condition with a bounded deadline; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from getfile_core import protocol

PROJECT = Path(__file__).resolve().parents[2]
HOSTILE_PATHS = PROJECT / "tests" / "data" / "hostile_paths.txt"
UNPRIVILEGED_UID = 65534  # nobody
T = TypeVar("T")

# ---------------------------------------------------------------- counting


def open_fd_count() -> int:
    """Descriptors this process holds right now (the listing's own one included, always)."""
    return len(os.listdir("/proc/self/fd"))


def fds_under(folder: str | os.PathLike[str]) -> list[str]:
    """Open descriptors of this process that point into ``folder`` (open files left behind)."""
    prefix = os.path.realpath(folder).rstrip("/") + "/"
    found = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(prefix):
                found.append(target)
    return found


def raise_fd_limit(wanted: int) -> int:
    """Lift the soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def rss_of(pid: int) -> int:
    """Resident memory of a process in bytes (from /proc, as ``ps`` shows it)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"no VmRSS for pid {pid}"
    return int(match[1]) * 1024


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        tick.wait(0.01)


async def wait_for_async(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.01)


class TaskFailures:
    """Every task on a loop that ended with an exception: a server handler that crashed.

    Installed as the loop's task factory, so it sees handler tasks that
    ``asyncio.start_server`` creates, which nobody awaits.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def factory(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        task.add_done_callback(self._note)
        return task

    def _note(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]


@contextlib.contextmanager
def recording_task_failures() -> Iterator[TaskFailures]:
    """Record crashed tasks on the running loop for the duration of an async test."""
    loop = asyncio.get_running_loop()
    failures = TaskFailures()
    previous = loop.get_task_factory()
    loop.set_task_factory(failures.factory)
    try:
        yield failures
    finally:
        loop.set_task_factory(previous)


class LoopThread:
    """An event loop in a daemon thread, so synchronous tests (hypothesis) can host servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.failures = TaskFailures()
        self.loop.set_task_factory(self.failures.factory)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 10) -> T:
        """Run a plain function on the loop's thread (reading server state safely)."""

        async def wrapper() -> T:
            return function()

        return self.run(wrapper(), timeout)

    def task_count(self) -> int:
        """Tasks alive on the loop, not counting the one that counts."""
        return self.call(lambda: len(asyncio.all_tasks(self.loop)) - 1)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


# ---------------------------------------------------------------- raw sockets


def reset_on_close(sock: socket.socket) -> None:
    """SO_LINGER 0: ``close`` then sends RST, as a crashed or unplugged peer does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def exchange(
    port: int,
    chunks: list[bytes],
    ending: str = "half-close",
    timeout: float = 10.0,
    cap: int = 64 * 1024 * 1024,
) -> bytes:
    """Send ``chunks`` as separate segments, end as told, return what the server sent.

    ``ending``: ``half-close`` (shut our side, read to EOF), ``close`` (close
    at once), ``reset`` (RST at once). A server that neither answers nor
    closes within ``timeout`` fails the test: it hung.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            if chunk:
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server already gave up on us: allowed
        if ending == "reset":
            reset_on_close(sock)
            return b""
        if ending == "close":
            return b""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return read_to_eof(sock, cap)


def read_to_eof(sock: socket.socket, cap: int = 64 * 1024 * 1024) -> bytes:
    received = bytearray()
    while len(received) <= cap:
        try:
            data = sock.recv(256 * 1024)
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError("the server neither answered nor closed: it hung") from None
        if not data:
            break
        received += data
    return bytes(received)


def split_response(raw: bytes) -> tuple[protocol.Response, bytes]:
    """An extended answer as (head, body); a malformed head fails the test."""
    head, sep, body = raw.partition(b"\n\n")
    assert sep, f"no complete response head in {raw[:200]!r}"
    return protocol.parse_response_head(head), body


def extended_get(path: bytes, offset: int = 0) -> bytes:
    return protocol.encode_request(protocol.Request(protocol.Verb.GET, path, offset=offset))


# ---------------------------------------------------------------- a hostile tree


@dataclass
class HostileTree:
    """A served root full of traps, next to a secret the server must never send."""

    base: Path
    root: Path
    outside: Path
    marker: bytes
    #: Special files that exist in this run, by corpus name (devices need CAP_MKNOD).
    specials: dict[str, str] = field(default_factory=dict)

    @property
    def secret(self) -> Path:
        return self.outside / "secret.txt"

    def expand(self, raw: bytes) -> bytes:
        return raw.replace(b"{ROOT}", os.fsencode(self.root)).replace(
            b"{OUTSIDE}", os.fsencode(self.outside)
        )


def build_hostile_tree() -> HostileTree:
    """Make the tree in a world-readable temp folder, so an unprivileged server can use it.

    Layout (names are what the path corpus refers to)::

        outside/secret.txt           the marker; must never cross the wire
        outside/nested/secret2.txt   the marker again, one level deeper
        served/hello.txt, sub/data.bin, folder/
        served/link_out -> ../outside/secret.txt     (and link_out_abs, absolute)
        served/link_dir_out -> ../outside            (a folder symlink leading out)
        served/link_root -> /, link_zero -> /dev/zero, link_environ -> /proc/self/environ
        served/sub/link_up -> ..                     (inside, but a way up)
        served/chain_out -> link_out                 (symlink to a symlink)
        served/loop_a <-> loop_b, self_loop -> self_loop
        served/hardlink_secret, sub/hardlink_secret2 (hard links to outside/secret.txt)
        served/fifo, served/sock                     (a FIFO and a bound unix socket)
        served/zero_device, null_device              (char devices 1:5, 1:3, if mknod works)
        served/unreadable.bin                        (mode 000)
    """
    base = Path(tempfile.mkdtemp(prefix="getfile-hostile-"))
    base.chmod(0o755)
    marker = b"SECRET-" + uuid.uuid4().hex.encode()
    outside = base / "outside"
    root = base / "served"
    (outside / "nested").mkdir(parents=True)
    (root / "sub").mkdir(parents=True)
    (root / "folder").mkdir()
    (outside / "secret.txt").write_bytes(b"top " + marker + b" secret\n")
    (outside / "nested" / "secret2.txt").write_bytes(marker + b"\n")
    (root / "hello.txt").write_bytes(b"hello from inside\n")
    (root / "sub" / "data.bin").write_bytes(b"inside data " * 1000)
    links = {
        "link_out": "../outside/secret.txt",
        "link_out_abs": str(outside / "secret.txt"),
        "link_dir_out": "../outside",
        "link_root": "/",
        "link_zero": "/dev/zero",
        "link_environ": "/proc/self/environ",
        "sub/link_up": "..",
        "chain_out": "link_out",
        "loop_a": "loop_b",
        "loop_b": "loop_a",
        "self_loop": "self_loop",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    os.link(outside / "secret.txt", root / "hardlink_secret")
    os.link(outside / "nested" / "secret2.txt", root / "sub" / "hardlink_secret2")
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(root / "sock"))
    specials = {"fifo": "fifo", "sock": "socket"}
    for name, minor in (("zero_device", 5), ("null_device", 3)):
        try:
            os.mknod(root / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
            specials[name] = "char device"
        except PermissionError:
            pass  # no CAP_MKNOD: the /dev/zero symlink still covers devices
    unreadable = root / "unreadable.bin"
    unreadable.write_bytes(b"only the owner may read this\n")
    unreadable.chmod(0)
    return HostileTree(base=base, root=root, outside=outside, marker=marker, specials=specials)


def load_corpus(path: Path = HOSTILE_PATHS) -> list[tuple[int, bytes]]:
    """Entries of the corpus as (line number, raw bytes); see the file's header for the escapes."""
    entries = []
    for number, line in enumerate(path.read_text("ascii").splitlines(), 1):
        if not line or line == "#" or line.startswith("# "):
            continue
        raw = line.encode("ascii").decode("unicode_escape").encode("latin-1")
        raw = re.sub(
            rb"\{(\d+)\*([^{}]*)\}", lambda m: m[2] * int(m[1]), raw
        )  # {N*TEXT}: TEXT repeated N times
        entries.append((number, raw))
    return entries


# ---------------------------------------------------------------- a server process


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

        wait_for(announced, timeout, "the server announces its port")
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


# ---------------------------------------------------------------- a cutting proxy


@dataclass
class Plan:
    """What the proxy does to the next connection's server-to-client bytes."""

    #: Cut the connection after this many bytes (None: never).
    cut_at: int | None = None
    #: Cut with RST (SO_LINGER 0) instead of FIN.
    reset: bool = False
    #: Stop forwarding after this many bytes until ``release`` is called.
    hold_at: int | None = None


class CuttingProxy:
    """A TCP relay between a client and a server that cuts or holds where a test says.

    Only the server-to-client direction is metered: that is where a
    download can be interrupted. Each accepted connection takes the next
    queued ``Plan``; with none queued it relays faithfully.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.plans: deque[Plan] = deque()
        self.holding = asyncio.Event()
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def release(self) -> None:
        self._released.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        plan = self.plans.popleft() if self.plans else Plan()
        writer.transport.set_write_buffer_limits(0)  # drain() means "all handed to the kernel"
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(120):
                up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                forward = asyncio.ensure_future(_pump(reader, upstream))
                try:
                    if await self._meter(up_reader, writer, upstream, plan):
                        await forward  # the server finished: wait for the client to hang up
                finally:
                    forward.cancel()
                    with contextlib.suppress(BaseException):
                        await forward
        except (OSError, asyncio.CancelledError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            for end in (writer, upstream):
                if end is not None:
                    end.transport.abort()

    async def _meter(
        self,
        up_reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
        plan: Plan,
    ) -> bool:
        """Relay as planned; True if the server ended the stream, False if we cut it."""
        sent = 0
        while True:
            if plan.hold_at is not None and sent >= plan.hold_at and not self._released.is_set():
                self.holding.set()
                await self._released.wait()
            want = 256 * 1024
            if plan.cut_at is not None:
                want = min(want, plan.cut_at - sent)
            if plan.hold_at is not None and not self._released.is_set():
                want = min(want, plan.hold_at - sent)
            data = await up_reader.read(want)
            if not data:
                if client.can_write_eof():
                    client.write_eof()
                await client.drain()
                return True
            client.write(data)
            await client.drain()
            sent += len(data)
            if plan.cut_at is not None and sent >= plan.cut_at:
                if plan.reset:
                    reset_on_close(client.get_extra_info("socket"))
                    client.transport.abort()
                else:
                    client.close()
                upstream.transport.abort()
                return False


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
