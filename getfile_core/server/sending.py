"""Moving bytes to one client: never cut a reader that is still reading.

The only rule for cutting a client is progress: a connection is dropped
when it has accepted **no byte** for ``stall_timeout`` seconds. The first
version required each ``loop.sendfile`` chunk to finish within the timeout,
with chunks sized from a pace measured while the socket buffers swallowed
the first MiB; through a 1 MiB/s link that cut every download past ~35 MB.

Plain TCP: our own loop around ``os.sendfile`` on the non-blocking socket.
Each call moves what fits in the socket buffer and returns at once; when
nothing fits we wait for writability, that wait bounded by what is left of
the stall allowance, and any byte moved restarts the clock. TLS cannot use
sendfile: the file is read in chunks and written through the transport, and
the same rule is applied to the transport's write buffer while draining.
A first download (its digest not known yet) reads, hashes and sends each
chunk from one buffer instead (``_send_read``), and so does a large body for
a client on this machine (``CopySlots``: over loopback a copy beats
``sendfile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import termios
from collections.abc import Iterator
from typing import Protocol

from getfile_core.ratelimit import RateLimit

#: Most bytes one ``os.sendfile`` call may move. The kernel moves at most what
#: the socket buffer has room for (a few MiB on loopback), so this only bounds
#: how long one connection holds the event loop between yields.
SENDFILE_CHUNK = 8 * 1024 * 1024
#: Bytes read and written per step on the TLS path, and the transport's
#: high-water mark: enough to keep a fast link busy, small for memory.
TLS_CHUNK = 256 * 1024
#: Bodies up to this size go out with their head in one write (a ``pread``
#: and one ``send``) instead of a head ``send`` and a ``sendfile`` (with its
#: descriptor duplicate and pause of reading). Measured on 2000 files of
#: 4 KiB pipelined on one connection: see docs/protocol.md.
SMALL_BODY = 64 * 1024
#: Bytes read, hashed and sent per step of a first download (``_send_read``):
#: the hash pool's chunk, well inside the 2 MiB L2 so the client copies it hot.
READ_CHUNK = 1024 * 1024


#: Smallest body a client on this machine gets by copy instead of ``sendfile``
#: (``CopySlots``). Below it the copy's buffer and its first cold read are not
#: worth it, and the 1000-client bench (1 MiB each) keeps ``sendfile``.
COPY_MIN = 8 * 1024 * 1024
#: Bodies sent by copy at once, server-wide: each holds a ``READ_CHUNK`` buffer.
COPY_SLOTS = 8


class CopySlots:
    """How many large bodies for clients on this machine may go by copy at once.

    Over loopback ``sendfile`` hands the client page-cache pages that are cold
    in the CPU caches, and the client's copy out of them is its dearest step.
    Reading a chunk into a buffer and writing it (what socat does) costs the
    server a copy but leaves the bytes hot for the client. Measured (1 GiB,
    2-core Xeon, ``bench --only throughput --runs 3``, two interleaved runs):
    verified download 1848 and 1850 MB/s against 1328 and 1665 by
    ``sendfile``; client CPU 0.55 s/GiB against 0.63-0.68, the server's
    0.48-0.50 against 0.32-0.39. Over a real network ``sendfile`` stays: the
    card reads the pages itself, and a copy would only cost the server CPU.
    Bounded so that many local clients cannot make the server hold a buffer
    each: beyond ``COPY_SLOTS`` bodies go by ``sendfile`` as before.
    """

    def __init__(self, slots: int = COPY_SLOTS, smallest: int = COPY_MIN) -> None:
        self.free = slots
        #: Bodies (what is left of them) under this many bytes keep ``sendfile``.
        self.smallest = smallest

    def take(self) -> bool:
        if self.free <= 0:
            return False
        self.free -= 1
        return True

    def give(self) -> None:
        self.free += 1


def on_this_machine(transport: asyncio.BaseTransport) -> bool:
    """Whether the peer is this host: a loopback address, or our own address."""
    peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    if not (isinstance(peer, tuple) and isinstance(local, tuple)):
        return False
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback or peer[0] == local[0]


class Fed(Protocol):
    """A digest computation the sender feeds (``digests.Computation``)."""

    fed: bool
    hashed: int

    def feed(self, data: memoryview) -> None: ...


class Stalled(TimeoutError):
    """The client accepted no byte for the whole stall allowance."""


class FileShrank(Exception):
    """The file ended before the bytes announced were sent."""


class Sender:
    """Writes heads and bodies to one client, applying the progress rule and the rate."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        stall_timeout: float,
        rate: RateLimit | None = None,
        copies: CopySlots | None = None,
    ) -> None:
        self.writer = writer
        self.transport = writer.transport
        self.stall_timeout = stall_timeout
        self.rate = rate
        self.tls = writer.get_extra_info("ssl_object") is not None
        #: Where large bodies may go by copy, if the client is on this machine (asked
        #: once, when the first large body is sent: most connections never send one).
        self.copies = copies
        self._local: bool | None = None
        #: Body bytes handed to the kernel (plain) or the transport (TLS).
        self.queued = 0
        if self.tls:
            self.transport.set_write_buffer_limits(high=TLS_CHUNK)

    # ------------------------------------------------------------ draining

    async def write(self, data: bytes) -> None:
        """Write a head, a listing or a trailer, and wait until the client took it."""
        self.writer.write(data)
        await self.drain()

    async def drain(self) -> None:
        """``drain()``, cut only when the client takes no byte for the stall allowance.

        Progress is what the client's TCP acknowledges (``TCP_INFO``), or, where
        that is unavailable, the write buffer shrinking. With TLS the buffer
        asyncio reports is only the TLS layer's, which may sit still while the
        TCP transport below it drains slowly: acknowledgements see both.
        """
        if not self.transport.get_write_buffer_size() and not self.transport.is_closing():
            return  # nothing waits in our buffers: the common case, without timers
        loop = asyncio.get_running_loop()
        poll = min(1.0, self.stall_timeout / 4)
        mark = self._progress_mark()
        progressed = loop.time()
        while True:
            try:
                # Cancelling a drain on timeout is clean (it only leaves a waiter list).
                async with asyncio.timeout(poll):
                    await self.writer.drain()
                return
            except TimeoutError:
                pass
            now, latest = loop.time(), self._progress_mark()
            if latest != mark:
                mark, progressed = latest, now
            elif now - progressed >= self.stall_timeout:
                raise self._stalled()

    async def finish(self) -> None:
        """Wait until every byte has left our process, under the same stall rule.

        Plain TCP: once ``sendfile`` has handed the last byte to the kernel,
        the kernel delivers it (or gives up) after we close; waiting for the
        client's acknowledgement too cost 20-30% on 200 back-to-back small
        downloads, for nothing the log needs. TLS: the transport keeps up to
        a chunk in its own buffers, and closing it with bytes left would wait
        on a stalled client for ever, so we wait until the client has
        acknowledged everything (one round trip).
        """
        await self.drain()
        if not self.tls:
            return
        loop = asyncio.get_running_loop()
        mark, progressed, pause = self._progress_mark(), loop.time(), 0.002
        while self.transport.get_write_buffer_size() or _unacknowledged(self.transport):
            if self.transport.is_closing():
                raise ConnectionResetError("connection closed before the client took every byte")
            await asyncio.sleep(pause)
            pause = min(0.1, pause * 2)
            now, latest = loop.time(), self._progress_mark()
            if latest != mark:
                mark, progressed = latest, now
            elif now - progressed >= self.stall_timeout:
                raise self._stalled()

    def _stalled(self) -> Stalled:
        return Stalled(f"no byte accepted for {self.stall_timeout:g} s")

    def _progress_mark(self) -> tuple[int, int]:
        """Something that changes whenever the client takes bytes."""
        return _bytes_acked(self.transport), self.transport.get_write_buffer_size()

    # ------------------------------------------------------------ bodies

    def feeds(self, count: int) -> bool:
        """Whether ``send_file`` would feed a digest computation ``count`` bytes.

        Not a small body sent in one ``pread`` with its head (``_send_small``).
        """
        return count > SMALL_BODY or self.rate is not None

    async def send_file(
        self, fd: int, offset: int, count: int, head: bytes = b"", feed: Fed | None = None
    ) -> None:
        """Send ``head``, then ``count`` bytes of ``fd`` from ``offset``; ``queued`` counts them.

        ``feed``: a first download's digest computation that wants the bytes
        from ``offset`` on. While it stays fed, each chunk is read once, hashed
        and sent from the same buffer (``_send_read``); the rest goes by
        ``sendfile``, or, to a client on this machine, by copy (``CopySlots``).
        """
        if 0 < count <= SMALL_BODY and self.rate is None:
            await self._send_small(fd, offset, count, head)
            return
        if head:
            self.writer.write(head)
        await self.drain()
        if count <= 0:
            return
        if self.tls:
            await self._send_through_transport(fd, offset, count, feed)
            return
        with self._raw_socket() as sock:
            self.queued = 0
            if feed is not None and feed.fed and feed.hashed == offset:
                await self._send_read(sock, fd, offset, count, feed)
            copies = self.copies
            if (
                copies is not None
                and count - self.queued >= copies.smallest
                and self._local_peer()
                and copies.take()
            ):
                try:
                    await self._send_read(sock, fd, offset, count)
                finally:
                    copies.give()
            await self._sendfile(sock, fd, offset, count)

    def _local_peer(self) -> bool:
        if self._local is None:
            self._local = on_this_machine(self.transport)
        return self._local

    async def _send_small(self, fd: int, offset: int, count: int, head: bytes) -> None:
        """Head and body in one write (the file was just hashed: it is in the page cache)."""
        await self.drain()
        data = os.pread(fd, count, offset)
        if len(data) < count:
            raise FileShrank(f"file ended after {offset + len(data)} bytes")
        self.writer.write(head + data)
        self.queued = count
        await self.drain()

    @contextlib.contextmanager
    def _raw_socket(self) -> Iterator[int]:
        """A duplicate of the socket to write to ourselves, the transport's reading paused.

        A duplicate: the loop refuses ``add_writer`` on a descriptor its
        transport owns, and the duplicate also keeps the descriptor number
        ours even if the transport closes its socket meanwhile.
        """
        sock = os.dup(self.transport.get_extra_info("socket").fileno())
        reading = self.transport.is_reading()
        self.transport.pause_reading()
        try:
            yield sock
        finally:
            os.close(sock)
            if reading and not self.transport.is_closing():
                self.transport.resume_reading()

    async def _sendfile(self, sock: int, fd: int, offset: int, count: int) -> None:
        """Bytes ``queued`` to ``count`` of the body (from ``offset``), by ``os.sendfile``."""
        loop = asyncio.get_running_loop()
        progressed = loop.time()
        sent = self.queued
        while sent < count:
            if self.transport.is_closing():
                raise ConnectionResetError("connection closed while sending")
            want = min(SENDFILE_CHUNK, count - sent)
            if self.rate is not None:
                want = self.rate.chunk(want)
            try:
                done = os.sendfile(sock, fd, offset + sent, want)
            except (BlockingIOError, InterruptedError):
                await self._writable(sock, progressed + self.stall_timeout - loop.time())
                continue
            if done == 0:
                raise FileShrank(f"file ended after {offset + sent} bytes")
            sent += done
            self.queued = sent
            progressed = loop.time()
            await self._pace(done)

    async def _send_read(
        self, sock: int, fd: int, offset: int, count: int, feed: Fed | None = None
    ) -> None:
        """A first download: read each chunk once, hash it, send that same buffer.

        Instead of ``sendfile`` plus a second ``pread`` pass on the hash pool:
        one read of the file, the hash on bytes hot in the cache, and the
        client copies bytes the kernel just wrote (cache-hot) instead of page
        cache from memory. Measured (1 GiB, 2-core Xeon, three interleaved
        runs): first / repeat download 1.15-1.19 against 0.83-0.87, server
        CPU 0.46-0.48 s/GiB against 0.60-0.63, the client's 0.49-0.50
        against 0.61-0.63. The hash runs on the event loop (BLAKE3 on 1 MiB:
        ~0.13 ms here, ~0.4 ms on AVX2), between writes. Stops as soon as the
        computation is released (another client wants the digest at disk
        speed, not at this reader's pace): ``sendfile`` sends the rest.
        Without ``feed``: a body copied to a client on this machine (``CopySlots``).
        """
        loop = asyncio.get_running_loop()
        view = memoryview(bytearray(min(READ_CHUNK, count)))
        progressed = loop.time()
        sent = self.queued
        while sent < count and (feed is None or feed.fed):
            want = min(len(view), count - sent)
            if self.rate is not None:
                want = self.rate.chunk(want)
            got = os.preadv(fd, [view[:want]], offset + sent)
            if got <= 0:
                raise FileShrank(f"file ended after {offset + sent} bytes")
            if feed is not None:
                feed.feed(view[:got])
            put = 0
            while put < got:
                if self.transport.is_closing():
                    raise ConnectionResetError("connection closed while sending")
                try:
                    put += os.write(sock, view[put:got])
                except (BlockingIOError, InterruptedError):
                    await self._writable(sock, progressed + self.stall_timeout - loop.time())
                    continue
                self.queued = sent + put
                progressed = loop.time()
            sent += got
            await self._pace(got)

    async def _writable(self, sock: int, allowance: float) -> None:
        if allowance <= 0:
            raise self._stalled()
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(sock, wake)
        try:
            async with asyncio.timeout(allowance):
                await ready
        except TimeoutError:
            raise self._stalled() from None
        finally:
            loop.remove_writer(sock)

    async def _send_through_transport(
        self, fd: int, offset: int, count: int, feed: Fed | None = None
    ) -> None:
        """TLS: chunks read off the loop; a first download's hash fed the same bytes."""
        loop = asyncio.get_running_loop()
        sent = 0
        while sent < count:
            want = min(TLS_CHUNK, count - sent)
            if self.rate is not None:
                want = self.rate.chunk(want)
            data = await loop.run_in_executor(None, os.pread, fd, want, offset + sent)
            if not data:
                raise FileShrank(f"file ended after {offset + sent} bytes")
            if feed is not None and feed.fed and feed.hashed == offset + sent:
                feed.feed(memoryview(data))
            self.writer.write(data)
            sent += len(data)
            self.queued = sent
            await self.drain()
            await self._pace(len(data))

    async def _pace(self, moved: int) -> None:
        """Wait what the rate limit asks for, or just let the other connections run."""
        delay = self.rate.reserve(moved) if self.rate is not None else 0.0
        await asyncio.sleep(delay)

    # ------------------------------------------------------------ the truth for the log

    def accepted(self) -> int:
        """Body bytes the client really took: queued minus what still waits to go.

        On plain TCP the kernel's send queue (``SIOCOUTQ``) holds bytes not yet
        acknowledged by the client; on TLS the transport's buffer holds bytes
        not yet handed to the kernel.
        """
        pending = self.transport.get_write_buffer_size()
        if not self.tls:
            pending += _unacknowledged(self.transport)
        return max(0, self.queued - pending)


#: ``struct tcp_info``: ``tcpi_bytes_acked`` (u64) sits at byte 120 (Linux 4.1+).
_TCP_INFO_BYTES_ACKED = 120


def _bytes_acked(transport: asyncio.BaseTransport) -> int:
    """Bytes of this connection the peer has acknowledged (0 where unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0 or not hasattr(socket, "TCP_INFO"):
        return 0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return 0
    if len(info) < _TCP_INFO_BYTES_ACKED + 8:
        return 0
    return struct.unpack_from("Q", info, _TCP_INFO_BYTES_ACKED)[0]


def _unacknowledged(transport: asyncio.BaseTransport) -> int:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0
    return struct.unpack("i", raw)[0]
