"""A link emulator: a TCP relay that makes 127.0.0.1 behave like a slow, long or flaky path.

netem needs root and a kernel module these machines do not have, and
loopback moves GB/s with no delay, so every bug that only shows on a real
link (a server that cuts slow readers, a client that gives up on the first
reset) stays hidden. This relay sits in front of a target port and, per
connection and per direction, emulates:

- ``rate``: bytes per second the link carries, paced in slices of
  ``SLICE`` seconds (a 64 KiB/s link moves ~1.3 KiB every 20 ms, not 64 KiB
  in one burst each second);
- ``delay``: one-way seconds every byte spends on the path;
- ``window``: at most this many bytes in flight, forwarded but not yet
  "acknowledged"; an acknowledgement returns one reverse delay after the
  bytes were delivered, so a path of ``delay`` each way carries at most
  ``window / (2 * delay)`` bytes/s on one connection, as TCP does on a long
  fat path. It also bounds the relay's memory;
- ``reset_every``: after this many bytes forwarded to the client on one
  connection, both ends get a RST (SO_LINGER 0), as from a NAT or a
  firewall that drops state;
- ``total_rate``: bytes per second each way shared by every connection
  through the relay, as a server's uplink or a mirror's cap: more
  connections to it do not make it faster (``rate`` caps each connection,
  as many servers and CDNs do, so more connections do).

The upstream socket's kernel buffers play the sender's queue: the relay
reads from it only as fast as the link drains, so a server sees the
backpressure a real slow client gives it.

Counters (``stats()``): connections accepted (and when the first was),
resets sent, bytes forwarded each way (handed to the receiving socket).
Use it from synchronous code as a context manager (its own event loop in a
thread) or from async code with ``async with``. Every wait is bounded: a
connection with no byte moving either way for ``idle_timeout`` seconds is
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Self, TypeVar

T = TypeVar("T")
KiB = 1024
MiB = 1024 * KiB
#: Pacing granularity: small enough that a slow link is smooth, large enough
#: that a 1 MiB/s link costs 50 wake-ups a second, not thousands.
SLICE = 0.02
#: Largest read from a socket; an unpaced link moves 256 KiB per step.
MAX_CHUNK = 256 * KiB
#: TCP payload per segment on Ethernet (1500 MTU, IPv4, timestamps).
ETHERNET_MSS = 1448
#: A reset waits at most this long for the bytes before it to reach the client.
FLUSH_TIMEOUT = 2.0


@dataclass(frozen=True)
class Link:
    """What the path does to every connection; each direction gets its own rate and window."""

    #: Bytes per second each way; None: as fast as loopback.
    rate: float | None = None
    #: One-way delay each way, seconds.
    delay: float = 0.0
    #: Bytes in flight per direction, not yet acknowledged. The default bounds
    #: the relay's memory and caps a path of 50 ms each way at 40 MiB/s; raise
    #: it for faster long paths, lower it (e.g. 256 KiB) for a window-bound one.
    window: int = 4 * MiB
    #: Reset a connection after this many bytes towards the client; None: never.
    reset_every: int | None = None
    #: Bytes queued before the link, each way: the relay's receive buffer
    #: (SO_RCVBUF, before the handshake). None: the kernel's autotuning (up to
    #: several MiB on loopback, like an ssh tunnel's channel buffers).
    queue: int | None = None
    #: Largest segment the relay announces (TCP_MAXSEG, before the handshake),
    #: e.g. 1448 as on Ethernet. None: loopback's ~64 KiB, which lets a sender
    #: start with ~640 KiB in flight and a send buffer of over 1 MiB.
    mss: int | None = None
    #: Bytes per second each way for all connections through the relay
    #: together (a mirror's uplink); None: no shared cap.
    total_rate: float | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be > 0 bytes/s, not {self.rate!r}")
        if self.total_rate is not None and not self.total_rate > 0:
            raise ValueError(f"total_rate must be > 0 bytes/s, not {self.total_rate!r}")
        if not 0 <= self.delay <= 60:
            raise ValueError(f"delay must be 0-60 s, not {self.delay!r}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 byte, not {self.window!r}")
        if self.reset_every is not None and self.reset_every < 1:
            raise ValueError(f"reset_every must be at least 1 byte, not {self.reset_every!r}")
        if self.queue is not None and self.queue < 4 * KiB:
            raise ValueError(f"queue must be at least 4 KiB, not {self.queue!r}")
        if self.mss is not None and not 536 <= self.mss <= 65495:
            raise ValueError(f"mss must be 536-65495 bytes, not {self.mss!r}")

    @classmethod
    def network(cls, rate: float, delay: float = 0.0, **more: Any) -> Link:
        """A capped link as a server meets it on a network, not on loopback.

        Ethernet's segment size (with loopback's 64 KiB segments a sender
        starts with ~640 KiB in flight and over 1 MiB in its send buffer) and
        a quarter second of queue in front of the link, like a router (the
        relay's receive buffer would otherwise autotune to MiBs). Without
        them a slow reader stays hidden from the server for tens of seconds.
        """
        queue = max(16 * KiB, int(rate / 4))
        return cls(rate=rate, delay=delay, queue=queue, mss=ETHERNET_MSS, **more)

    @property
    def stream_limit(self) -> int:
        """asyncio's read-ahead (it pauses reading at twice this): within the queue."""
        return 64 * KiB if self.queue is None else max(KiB, self.queue // 4)

    @property
    def chunk(self) -> int:
        """Bytes taken from a socket per step: one pacing slice, within the window."""
        rates = [rate for rate in (self.rate, self.total_rate) if rate is not None]
        paced = max(KiB, int(min(rates) * SLICE)) if rates else MAX_CHUNK
        return max(1, min(paced, MAX_CHUNK, self.window))


@dataclass
class LinkStats:
    """What crossed the link since it started."""

    connections: int = 0
    resets: int = 0
    #: Target to client (the download direction).
    bytes_down: int = 0
    #: Client to target.
    bytes_up: int = 0
    #: ``time.monotonic()`` when the first connection was accepted (None: none yet).
    first_connected: float | None = None
    #: Connections open now, and the most that were open at once.
    open: int = 0
    most_at_once: int = 0


class _Pacer:
    """One direction's shared rate: connections book its time in turn, first come first served."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.free_at = 0.0

    def book(self, size: int, now: float) -> float:
        """When ``size`` bytes read now have left through the shared link."""
        self.free_at = max(self.free_at, now) + size / self.rate
        return self.free_at


class _End:
    """Markers in a delay line: the source closed its side, or the link resets here."""

    def __init__(self, reset: bool) -> None:
        self.reset = reset


_EOF = _End(reset=False)
_RESET = _End(reset=True)


class _Reset(Exception):
    """Raised out of a connection's tasks once the link has reset it."""


class _Direction:
    """One way of one connection: paced reads, a delay line, a window of unacknowledged bytes."""

    def __init__(
        self,
        link: Link,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        count: Callable[[int], None],
        limit: int | None,
        shared: _Pacer | None = None,
    ) -> None:
        self.link = link
        self.shared = shared
        self.source = source
        self.sink = sink
        self.count = count
        self.limit = limit
        self.in_flight = 0
        self._room = asyncio.Event()
        self._line: asyncio.Queue[tuple[float, bytes | _End]] = asyncio.Queue()

    async def take(self) -> None:
        """Read from the source as the link drains: never past the window, never above rate."""
        loop = asyncio.get_running_loop()
        link = self.link
        free_at = loop.time()
        taken = 0
        while True:
            room = link.window - self.in_flight
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            want = min(link.chunk, room)
            if self.limit is not None:
                want = min(want, self.limit - taken)
            data = await self.source.read(want)
            if not data:
                self._line.put_nowait((loop.time() + link.delay, _EOF))
                return
            self.in_flight += len(data)
            taken += len(data)
            # The last byte of this chunk leaves when the link (this connection's
            # rate, and the rate all connections share) has carried it.
            leaves = now = loop.time()
            if link.rate is not None:
                free_at = leaves = max(free_at, now) + len(data) / link.rate
            if self.shared is not None:
                leaves = max(leaves, self.shared.book(len(data), now))
            if leaves > now:
                await asyncio.sleep(leaves - now)
            arrives = loop.time() + link.delay
            self._line.put_nowait((arrives, data))
            if self.limit is not None and taken >= self.limit:
                self._line.put_nowait((arrives, _RESET))
                return

    async def deliver(self) -> None:
        """Hand each chunk to the sink when its delay is over; acknowledge it one delay later."""
        loop = asyncio.get_running_loop()
        while True:
            arrives, data = await self._line.get()
            if (wait := arrives - loop.time()) > 0:
                await asyncio.sleep(wait)
            if isinstance(data, _End):
                if data.reset:
                    await _flushed(self.sink)
                    raise _Reset
                if self.sink.can_write_eof():
                    self.sink.write_eof()
                return
            self.sink.write(data)
            await self.sink.drain()
            self.count(len(data))
            loop.call_at(loop.time() + self.link.delay, self._acknowledge, len(data))

    def _acknowledge(self, size: int) -> None:
        self.in_flight -= size
        self._room.set()


async def _flushed(writer: asyncio.StreamWriter) -> None:
    """Wait (bounded) until the kernel has sent what we wrote, so a reset cuts after it."""
    sock = writer.get_extra_info("socket")
    deadline = time.monotonic() + FLUSH_TIMEOUT
    while sock is not None and time.monotonic() < deadline:
        try:
            unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))
        except OSError:
            return
        if unsent[0] == 0:
            return
        await asyncio.sleep(0.001)


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, as from a crashed box or a dropped NAT entry."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _tcp_socket(link: Link) -> socket.socket:
    """A TCP socket with the link's receive buffer and segment size, set before any handshake.

    Set before listen/connect so the handshake announces them (window scale,
    MSS); accepted sockets inherit them from the listener.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if link.queue is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, link.queue)
    if link.mss is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, link.mss)
    return sock


class LinkEmulator:
    """A relay on ``host``:``port`` in front of ``target_host:target_port``, shaped by ``link``.

    ``host`` is any loopback address (127.0.0.1 by default): relays on
    127.0.0.2, 127.0.0.3 … look like different servers to a client that
    limits its connections per host (aria2c's ``-x``), as mirrors are.

    ``async with LinkEmulator(port, link) as relay`` on a running loop, or
    ``with LinkEmulator(port, link) as relay`` from synchronous code (the
    relay then runs its own loop in a daemon thread).
    """

    def __init__(
        self,
        target_port: int,
        link: Link | None = None,
        *,
        target_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        idle_timeout: float = 120.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.link = link or Link()
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self._stats = LinkStats()
        shared = self.link.total_rate
        self._shared = (_Pacer(shared), _Pacer(shared)) if shared is not None else (None, None)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the link emulator is not started")
        return self._server.sockets[0].getsockname()[1]

    def stats(self) -> LinkStats:
        """A copy of the counters (safe from any thread: each field is one int)."""
        return dataclasses.replace(self._stats)

    # ------------------------------------------------------------ async use

    async def start(self) -> Self:
        listener = _tcp_socket(self.link)
        listener.bind((self.host, 0))
        self._server = await asyncio.start_server(
            self._connection, sock=listener, limit=self.link.stream_limit
        )
        return self

    async def close(self) -> None:
        """Stop accepting and tear down every connection (bounded: 5 s for them to end)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ sync use

    def __enter__(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="link-emulator", daemon=True
        )
        self._thread.start()
        try:
            self._run(self.start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            self._run(self.close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = self._thread = None

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------ one connection

    async def _connection(
        self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._stats.connections += 1
        self._stats.open += 1
        self._stats.most_at_once = max(self._stats.most_at_once, self._stats.open)
        if self._stats.first_connected is None:
            self._stats.first_connected = time.monotonic()
        upstream: asyncio.StreamWriter | None = None
        clean = False
        try:
            async with asyncio.timeout(self.connect_timeout):
                upstream_in, upstream = await self._open_upstream()
            clean = await self._relay(client_in, client, upstream_in, upstream)
        except _Reset:
            self._stats.resets += 1
            _reset(client)
            _reset(upstream)
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass
        finally:
            self._stats.open -= 1
            self._tasks.discard(task)
            for end in (client, upstream):
                if end is None or end.transport.is_closing():
                    continue
                if clean:
                    end.close()
                else:
                    end.transport.abort()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = _tcp_socket(self.link)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, self.target)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock, limit=self.link.stream_limit)

    async def _relay(
        self,
        client_in: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        upstream_in: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
    ) -> bool:
        """Run both directions; True when both ended with EOF, raises _Reset on a reset."""
        activity = [time.monotonic()]

        def counter(field: str) -> Callable[[int], None]:
            def count(size: int) -> None:
                setattr(self._stats, field, getattr(self._stats, field) + size)
                activity[0] = time.monotonic()

            return count

        for writer in (client, upstream):
            writer.transport.set_write_buffer_limits(0)  # drain() = "handed to the kernel"
        shared_down, shared_up = self._shared
        down = _Direction(
            self.link,
            upstream_in,
            client,
            counter("bytes_down"),
            self.link.reset_every,
            shared_down,
        )
        up = _Direction(self.link, client_in, upstream, counter("bytes_up"), None, shared_up)
        jobs = [
            asyncio.ensure_future(job)
            for job in (down.take(), down.deliver(), up.take(), up.deliver())
        ]
        watchdog = asyncio.ensure_future(self._watch(activity))
        live: set[asyncio.Future[None]] = {*jobs, watchdog}
        deliveries = {jobs[1], jobs[3]}
        try:
            # Done when both deliveries end (EOF both ways), or any job fails.
            while deliveries:
                finished, live = await asyncio.wait(live, return_when=asyncio.FIRST_COMPLETED)
                if watchdog in finished:
                    raise TimeoutError("no byte moved on the link for the idle timeout")
                for job in finished:
                    if (error := job.exception()) is not None:
                        raise error
                deliveries -= finished
            return True
        finally:
            for job in [*jobs, watchdog]:
                job.cancel()
            await asyncio.wait([*jobs, watchdog], timeout=5)

    async def _watch(self, activity: list[float]) -> None:
        """End when no byte moved either way for ``idle_timeout`` seconds."""
        while time.monotonic() - activity[0] < self.idle_timeout:
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
