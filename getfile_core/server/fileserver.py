"""The asyncio file server: one folder, bounded in every dimension, zero-copy.

Each connection is a coroutine, not a thread. The request is parsed by
``protocol.ServerConnection``; the file is opened through ``paths.ServedRoot``
(which proves the descriptor lies under the root) and sent with
``loop.sendfile``, i.e. ``os.sendfile`` on plain TCP, in chunks sized to the
client's pace so that a stalled reader is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import resource
import secrets
import stat
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from getfile_core import auth, protocol
from getfile_core.digest import file_digest
from getfile_core.errors import ProtocolError
from getfile_core.protocol import Entry, LegacyRequest, Request, Response, Status, Verb
from getfile_core.server.root import Refused, ServedRoot

if TYPE_CHECKING:
    import ssl


#: Seconds between ``102 processing`` heads while a digest is computed.
HEARTBEAT = 1.0


@dataclass(frozen=True)
class ServerLimits:
    """Every bound the server enforces; all but ``backlog`` have a ``getfile serve`` flag."""

    #: Files being sent at once. Extended clients beyond it get ``busy``;
    #: legacy clients (who cannot be told) wait up to ``request_timeout``.
    max_transfers: int = 64
    #: Open connections at once, idle ones included; beyond it new ones are closed.
    max_connections: int = 2048
    #: Seconds a client has to send its whole request line (slow-loris bound).
    request_timeout: float = 10.0
    #: Seconds a client may take to accept a chunk of data before it is dropped.
    stall_timeout: float = 30.0
    #: Listen backlog: large enough to absorb a burst of 1000 connects.
    backlog: int = 1024
    #: Seconds running transfers get to finish after a stop is asked for.
    grace: float = 10.0


#: Descriptors kept for the process itself (listeners, log, event loop, imports).
FD_RESERVE = 64


def descriptors_needed(limits: ServerLimits) -> int:
    """Enough that ``fit_to_fd_limit`` shrinks neither the connection cap nor the backlog."""
    return 2 * limits.max_connections + 8 * limits.backlog + limits.max_transfers + FD_RESERVE


def raise_fd_limit(limits: ServerLimits) -> None:
    """Lift the soft RLIMIT_NOFILE to what ``limits`` need, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = descriptors_needed(limits)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def fit_to_fd_limit(limits: ServerLimits) -> tuple[int, int]:
    """``(max_connections, backlog)``, lowered to what the descriptor limit can carry.

    A connection may hold a socket and a file. asyncio accepts up to
    ``backlog`` sockets per wake-up, before any handler can turn the surplus
    away, and the surplus closes a loop turn or two later: three batches can
    be in flight. Admitting more than fits makes accept() fail with EMFILE,
    and the event loop then stops accepting anyone for a while; turning the
    surplus away at once keeps the door open for the next client.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections, limits.backlog
    spare = max(0, soft - FD_RESERVE - limits.max_transfers)
    backlog = max(16, min(limits.backlog, spare // 8))
    connections = max(1, min(limits.max_connections, (spare - 3 * backlog) // 2))
    return connections, backlog


@dataclass(frozen=True)
class AccessRecord:
    """One line of the access log: what was asked, what was answered, how much went."""

    when: float
    peer: str
    kind: str  # "GET", "LIST" or "LEGACY"
    path: str
    status: str
    sent: int
    seconds: float
    note: str = ""

    def format(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.when))
        note = f" ({self.note})" if self.note else ""
        return (
            f"{stamp} {self.peer} {self.kind} {self.path!r} {self.status} "
            f"{self.sent} B {self.seconds:.3f} s{note}"
        )


def print_access(record: AccessRecord) -> None:
    print(record.format(), file=sys.stderr, flush=True)


class DigestCache:
    """Digests of recently served files, keyed by identity and modification.

    Hashing is the only time the server reads a file itself; caching it makes
    repeat downloads pure ``sendfile``. Concurrent requests for a file share
    one computation. The key includes size and mtime_ns, so a changed file is
    hashed again.
    """

    INLINE_LIMIT = 256 * 1024

    def __init__(self, max_entries: int = 4096) -> None:
        self._done: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._pending: dict[tuple[int, ...], asyncio.Future[str]] = {}
        self._max = max_entries

    @staticmethod
    def _key(info: os.stat_result) -> tuple[int, ...]:
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)

    def is_quick(self, info: os.stat_result) -> bool:
        """Whether ``digest`` answers without a worker thread (cached, or a small file)."""
        return info.st_size <= self.INLINE_LIMIT or self._key(info) in self._done

    async def digest(self, fd: int, info: os.stat_result) -> str:
        key = self._key(info)
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        if info.st_size <= self.INLINE_LIMIT:
            value = file_digest(fd, info.st_size)
        else:
            pending = self._pending.get(key)
            if pending is None:
                # A private duplicate: the requester may close its descriptor
                # (client gone) while the hash still runs in its thread.
                own = os.dup(fd)
                pending = asyncio.ensure_future(asyncio.to_thread(_digest_and_close, own, info))
                self._pending[key] = pending
                pending.add_done_callback(lambda _f, k=key: self._pending.pop(k, None))
            value = await asyncio.shield(pending)
        self._done[key] = value
        if len(self._done) > self._max:
            self._done.popitem(last=False)
        return value


def _digest_and_close(fd: int, info: os.stat_result) -> str:
    try:
        return file_digest(fd, info.st_size)
    finally:
        os.close(fd)


class _Outcome:
    """What one connection did, filled in as it goes and logged once at the end."""

    def __init__(self) -> None:
        self.kind = "-"
        self.path = ""
        self.status = "closed"
        self.sent = 0
        self.note = ""


class FileServer:
    """Serves one folder. ``await start()``, then ``await stop()``; or ``serve()``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ServerLimits | None = None,
        token: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_access: Callable[[AccessRecord], None] | None = print_access,
        allow_hardlinks: bool = False,
    ) -> None:
        self.root = ServedRoot.open(root, allow_hardlinks=allow_hardlinks)
        self.host = host
        self.port = port
        self.limits = limits or ServerLimits()
        self.token = token
        self.ssl_context = ssl_context
        self.on_access = on_access
        self.digests = DigestCache()
        self.active_transfers = 0
        self._slots = asyncio.Semaphore(self.limits.max_transfers)
        self._handlers: set[asyncio.Task[None]] = set()
        #: Handlers still waiting for their request: a stop cuts these at once.
        self._idle: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._stopping = False
        #: ``limits.max_connections`` as the descriptor limit allows (set at start).
        self.connection_cap = self.limits.max_connections

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.connection_cap, backlog = fit_to_fd_limit(self.limits)
        self._server = await asyncio.start_server(
            self._handle,
            host=self.host or None,
            port=self.port,
            backlog=backlog,
            ssl=self.ssl_context,
            reuse_address=True,
            limit=protocol.MAX_REQUEST_LINE,
        )

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the server listens, as (host, port) pairs; port 0 is resolved."""
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    @property
    def port_bound(self) -> int:
        return self.addresses[0][1]

    @property
    def connections(self) -> int:
        return len(self._handlers)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let running transfers finish within the grace, then cut."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        grace = self.limits.grace if grace is None else grace
        for task in self._idle:
            task.cancel()
        pending = set(self._handlers)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    def cut(self) -> None:
        """End every connection now (a second Ctrl-C): ``stop`` then returns at once."""
        for task in self._handlers:
            task.cancel()

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (the CLI sets it from SIGINT/SIGTERM)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # ------------------------------------------------------------ connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._handlers) >= self.connection_cap or self._stopping:
            writer.transport.abort()
            return
        self._handlers.add(task)
        peer = _peer(writer)
        started = time.time()
        outcome = _Outcome()
        try:
            await self._serve_connection(reader, writer, outcome)
        except (ProtocolError, Refused) as error:
            outcome.status = outcome.status if outcome.status != "closed" else "bad-request"
            outcome.note = outcome.note or str(error)
        except TimeoutError:
            outcome.note = outcome.note or "timed out"
            outcome.status = "timeout" if outcome.status == "closed" else outcome.status
        except (ConnectionError, OSError) as error:
            outcome.note = f"client gone: {error.__class__.__name__}"
        except asyncio.CancelledError:
            # Only stop() cancels handlers. Ending normally rather than
            # re-raising matters on Python 3.11, whose stream protocol calls
            # task.exception() on a finished handler and logs a spurious
            # traceback for a cancelled one.
            outcome.note = "cut at shutdown"
        finally:
            self._handlers.discard(task)
            if outcome.note.startswith("client gone"):
                writer.transport.abort()
            else:
                writer.close()
            if outcome.kind != "-" or outcome.note:
                self._log(peer, started, outcome)

    def _log(self, peer: str, started: float, outcome: _Outcome) -> None:
        if self.on_access is None:
            return
        record = AccessRecord(
            when=started,
            peer=peer,
            kind=outcome.kind,
            path=outcome.path,
            status=outcome.status,
            sent=outcome.sent,
            seconds=time.time() - started,
            note=outcome.note,
        )
        with contextlib.suppress(Exception):
            self.on_access(record)

    async def _next_event(
        self, reader: asyncio.StreamReader, conn: protocol.ServerConnection
    ) -> Request | LegacyRequest | protocol.AuthProof:
        task = asyncio.current_task()
        self._idle.add(task)  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                while True:
                    event = conn.next_event()
                    if event is not protocol.NEED_DATA:
                        return event  # type: ignore[return-value]
                    conn.receive_data(await reader.read(64 * 1024))
        finally:
            self._idle.discard(task)  # type: ignore[arg-type]

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, outcome: _Outcome
    ) -> None:
        conn = protocol.ServerConnection()
        try:
            event = await self._next_event(reader, conn)
        except protocol.UnsupportedVersion as error:
            outcome.kind, outcome.status = "?", Status.UNSUPPORTED_VERSION.token
            await self._answer(writer, Response(Status.UNSUPPORTED_VERSION, str(error)))
            return
        except ProtocolError as error:
            outcome.status, outcome.note = "bad-request", str(error)
            if conn.is_extended:
                await self._answer(writer, Response(Status.BAD_REQUEST, str(error)))
            return
        if isinstance(event, LegacyRequest):
            outcome.kind, outcome.path = "LEGACY", os.fsdecode(event.path)
            await self._serve_legacy(writer, event, outcome)
            return
        assert isinstance(event, Request)
        outcome.kind, outcome.path = event.verb.value, os.fsdecode(event.path)
        if self.token is not None and not await self._authenticate(reader, writer, conn, outcome):
            return
        if event.verb is Verb.LIST:
            await self._serve_listing(writer, conn, event, outcome)
        else:
            await self._serve_get(writer, conn, event, outcome)

    async def _answer(self, writer: asyncio.StreamWriter, response: Response) -> None:
        writer.write(protocol.encode_response_head(response))
        async with asyncio.timeout(self.limits.stall_timeout):
            await writer.drain()

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: protocol.ServerConnection,
        outcome: _Outcome,
    ) -> bool:
        assert self.token is not None
        challenge = secrets.token_bytes(32)
        writer.write(
            conn.send(
                Response(Status.UNAUTHORIZED, "this server needs a token", challenge=challenge)
            )
        )
        await writer.drain()
        proof = await self._next_event(reader, conn)
        assert isinstance(proof, protocol.AuthProof)
        if auth.verify(self.token, challenge, conn.request_line, proof.mac):
            return True
        outcome.status, outcome.note = Status.UNAUTHORIZED.token, "wrong token"
        await self._answer(writer, Response(Status.UNAUTHORIZED, "wrong token"))
        return False

    # ------------------------------------------------------------ GET

    async def _serve_legacy(
        self, writer: asyncio.StreamWriter, request: LegacyRequest, outcome: _Outcome
    ) -> None:
        if self.token is not None:
            outcome.status, outcome.note = "refused", "legacy request, but a token is required"
            return
        try:
            fd, info = self.root.open_file(request.path)
        except Refused as refusal:
            # The book's protocol cannot carry an error: close, and say why in the log.
            outcome.status, outcome.note = refusal.status.token, refusal.reason
            return
        with open(fd, "rb", buffering=0) as file:
            try:
                async with asyncio.timeout(self.limits.request_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                outcome.status, outcome.note = Status.BUSY.token, "no transfer slot in time"
                return
            try:
                self.active_transfers += 1
                outcome.status = "ok"
                await self._send_file(writer, file, 0, info.st_size, outcome)
            finally:
                self.active_transfers -= 1
                self._slots.release()

    async def _serve_get(
        self,
        writer: asyncio.StreamWriter,
        conn: protocol.ServerConnection,
        request: Request,
        outcome: _Outcome,
    ) -> None:
        try:
            fd, info = self.root.open_file(request.path)
        except Refused as refusal:
            outcome.status, outcome.note = refusal.status.token, refusal.reason
            writer.write(conn.send(Response(refusal.status, refusal.reason)))
            return
        with open(fd, "rb", buffering=0) as file:
            if request.offset > info.st_size:
                outcome.status = Status.BAD_OFFSET.token
                message = f"offset {request.offset} is beyond the file's {info.st_size} bytes"
                writer.write(conn.send(Response(Status.BAD_OFFSET, message, size=info.st_size)))
                return
            if self._slots.locked():
                outcome.status = Status.BUSY.token
                message = f"busy: {self.limits.max_transfers} transfers running, try again soon"
                writer.write(conn.send(Response(Status.BUSY, message)))
                return
            async with self._slots:
                self.active_transfers += 1
                try:
                    try:
                        digest = await self._digest_with_heartbeat(writer, conn, fd, info)
                    except OSError as error:
                        # Answer, don't just close: silence would read as a legacy server.
                        reason = f"cannot read the file: {error.strerror or error}"
                        outcome.status, outcome.note = Status.SERVER_ERROR.token, reason
                        writer.write(conn.send(Response(Status.SERVER_ERROR, reason)))
                        return
                    head = Response(
                        Status.OK,
                        size=info.st_size,
                        mtime_ns=info.st_mtime_ns,
                        digest=digest,
                        offset=request.offset,
                    )
                    writer.write(conn.send(head))
                    outcome.status = "ok"
                    count = info.st_size - request.offset
                    await self._send_file(writer, file, request.offset, count, outcome)
                finally:
                    self.active_transfers -= 1

    async def _digest_with_heartbeat(
        self,
        writer: asyncio.StreamWriter,
        conn: protocol.ServerConnection,
        fd: int,
        info: os.stat_result,
    ) -> str:
        """The file's digest; while it is computed, a ``102 processing`` head each second.

        Hashing a big file the server has not seen before takes as long as
        reading it (minutes for a cold multi-GiB file). Without a sign of life
        the client's head deadline would expire and the download would fail.
        """
        if self.digests.is_quick(info):  # the common case: no task, no heartbeat
            return await self.digests.digest(fd, info)
        hashing = asyncio.ensure_future(self.digests.digest(fd, info))
        try:
            while True:
                done, _ = await asyncio.wait({hashing}, timeout=HEARTBEAT)
                if done:
                    return hashing.result()
                writer.write(conn.send(Response(Status.PROCESSING, "hashing the file")))
                async with asyncio.timeout(self.limits.stall_timeout):
                    await writer.drain()
        finally:
            hashing.cancel()

    async def _send_file(
        self, writer: asyncio.StreamWriter, file: object, offset: int, count: int, outcome: _Outcome
    ) -> None:
        """sendfile in chunks that each take about a second, so a stall is noticed.

        A chunk that does not finish within ``stall_timeout`` drops the client.
        Chunks grow with the measured rate (1 MiB up to 64 MiB), so fast
        clients pay for a handful of calls per GiB.
        """
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.limits.stall_timeout):
            await writer.drain()
        chunk = 1024 * 1024
        sent = 0
        while sent < count:
            size = min(chunk, count - sent)
            began = time.monotonic()
            async with asyncio.timeout(self.limits.stall_timeout):
                done = await loop.sendfile(writer.transport, file, offset + sent, size)  # type: ignore[arg-type]
            if done == 0:
                outcome.note = "file shrank while sending"
                break
            sent += done
            outcome.sent = sent
            elapsed = max(time.monotonic() - began, 1e-6)
            chunk = int(min(64 * 1024 * 1024, max(64 * 1024, done / elapsed)))
        async with asyncio.timeout(self.limits.stall_timeout):
            await writer.drain()

    # ------------------------------------------------------------ LIST

    async def _serve_listing(
        self,
        writer: asyncio.StreamWriter,
        conn: protocol.ServerConnection,
        request: Request,
        outcome: _Outcome,
    ) -> None:
        try:
            fd = self.root.open_dir(request.path)
        except Refused as refusal:
            outcome.status, outcome.note = refusal.status.token, refusal.reason
            writer.write(conn.send(Response(refusal.status, refusal.reason)))
            return
        try:
            entries, more = await asyncio.to_thread(
                _scan, fd, self.root, request.after, request.limit
            )
        finally:
            os.close(fd)
        body = protocol.encode_listing(entries)
        head = Response(
            Status.OK,
            size=len(body),
            entries=len(entries),
            next_after=entries[-1].name if more and entries else None,
        )
        outcome.status, outcome.sent = "ok", len(body)
        writer.write(conn.send(head) + body)
        async with asyncio.timeout(self.limits.stall_timeout):
            await writer.drain()


def _scan(fd: int, root: ServedRoot, after: bytes | None, limit: int) -> tuple[list[Entry], bool]:
    """The ``limit`` smallest names after the cursor; memory stays O(limit) for huge folders."""
    base = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else root.path
    names = (entry for entry in os.scandir(fd) if after is None or os.fsencode(entry.name) > after)
    chosen = heapq.nsmallest(limit + 1, names, key=lambda e: os.fsencode(e.name))
    more = len(chosen) > limit
    entries = []
    for entry in chosen[:limit]:
        name = os.fsencode(entry.name)
        kind, size, mtime = "other", 0, 0
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                target = os.path.realpath(os.path.join(base, entry.name))
                info = os.stat(target) if root.contains(target) else info
            if stat.S_ISREG(info.st_mode):
                kind, size = "file", info.st_size
            elif stat.S_ISDIR(info.st_mode):
                kind = "dir"
            mtime = info.st_mtime_ns
        except OSError:
            pass
        entries.append(Entry(name=name, kind=kind, size=size, mtime_ns=mtime))
    return entries, more


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)
