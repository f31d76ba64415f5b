"""The asyncio file server: one folder, bounded in every dimension, zero-copy.

Each connection is a coroutine, not a thread. This module is the server's
lifecycle (start, stop with a grace, cut) and what connections share:
transfer slots, the listing turns, the digest cache. One connection's
exchange lives in ``exchange``; moving bytes in ``sending``; hashing in
``digests``; listings in ``listing``; the log's records in ``access``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from getfile_core import protocol
from getfile_core.address import format_address
from getfile_core.errors import ProtocolError
from getfile_core.server.access import (
    AccessEntry,
    AccessRecord,
    Outcome,
    RepeatFilter,
)
from getfile_core.server.digests import DigestCache, HashStopped
from getfile_core.server.exchange import Exchange
from getfile_core.server.get import HEARTBEAT
from getfile_core.server.limits import (
    FD_RESERVE,
    ServerLimits,
    descriptors_needed,
    fit_to_fd_limit,
    raise_fd_limit,
)
from getfile_core.server.listing import SortedNames
from getfile_core.server.root import Refused, ServedRoot
from getfile_core.server.sending import CopySlots, FileShrank, Stalled

if TYPE_CHECKING:
    import ssl

__all__ = [
    "FD_RESERVE",
    "HEARTBEAT",
    "AccessRecord",
    "DigestCache",
    "FileServer",
    "ServerLimits",
    "descriptors_needed",
    "fit_to_fd_limit",
    "raise_fd_limit",
]


class FileServer:
    """Serves one folder. ``await start()``, then ``await stop()``; or ``serve()``.

    ``on_access`` receives one ``AccessRecord`` per connection worth a line;
    the library itself never prints.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ServerLimits | None = None,
        token: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_access: Callable[[AccessRecord], None] | None = None,
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
        self.copies = CopySlots()
        self.sorted_names = SortedNames()
        self.active_transfers = 0
        #: Of those, answers on kept connections (their slots turn over at each answer).
        self.kept_transfers = 0
        self._slots = asyncio.Semaphore(self.limits.max_transfers)
        self._listings = asyncio.Semaphore(self.limits.max_listings)
        self._handlers: set[asyncio.Task[None]] = set()
        #: Handlers still waiting for their request: a stop cuts these at once.
        self._idle: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._stopping = False
        self._handshake_failures = RepeatFilter()
        #: ``limits.max_connections`` as the descriptor limit allows (set at start).
        self.connection_cap = self.limits.max_connections

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.connection_cap, backlog = fit_to_fd_limit(self.limits)
        # TLS is started by the handler, after the connection is counted, so
        # handshakes obey max_connections and request_timeout like requests.
        if not self.host and socket.has_dualstack_ipv6():
            # Every interface on ONE socket (IPv6, taking IPv4 as mapped addresses): asyncio's
            # own "all interfaces" opens one socket per family, and with port 0 each one got
            # its own port (two addresses for one server).
            listener = socket.create_server(
                ("::", self.port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True
            )
            self._server = await asyncio.start_server(
                self._handle, sock=listener, limit=protocol.MAX_REQUEST_LINE
            )
            return
        self._server = await asyncio.start_server(
            self._handle,
            host=self.host or None,
            port=self.port,
            backlog=backlog,
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
        """Stop accepting, let running transfers finish within the grace, then cut.

        Hashes still running are stopped at once (at their next 1 MiB chunk):
        nobody new will ask, and a client waiting for one is cut anyway.
        """
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
        self.digests.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    def cut(self) -> None:
        """End every connection now (a second Ctrl-C): ``stop`` then returns at once."""
        self.digests.stop()
        for task in self._handlers:
            task.cancel()

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (the CLI sets it from SIGINT/SIGTERM)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # ------------------------------------------------------------ shared by connections

    async def take_slot_now(self) -> bool:
        """A transfer slot if one is free this instant (extended clients are told "busy")."""
        if self._slots.locked():
            return False
        await self._slots.acquire()  # not locked: returns without suspending
        self.active_transfers += 1
        return True

    async def take_slot_waiting(self, patience: float) -> float | None:
        """Wait up to ``patience`` seconds for a slot; the seconds waited, or None."""
        began = time.monotonic()
        try:
            async with asyncio.timeout(patience):
                await self._slots.acquire()
        except TimeoutError:
            return None
        self.active_transfers += 1
        return time.monotonic() - began

    def give_slot(self) -> None:
        self.active_transfers -= 1
        self._slots.release()

    @contextlib.asynccontextmanager
    async def listing_turn(self) -> AsyncIterator[None]:
        """One of ``max_listings`` turns, waited for up to ``request_timeout`` (else busy)."""
        async with asyncio.timeout(self.limits.request_timeout):
            await self._listings.acquire()
        try:
            yield
        finally:
            self._listings.release()

    # ------------------------------------------------------------ connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._handlers) >= self.connection_cap or self._stopping:
            writer.transport.abort()
            return
        self._handlers.add(task)
        entry = AccessEntry(_peer(writer))
        exchange: Exchange | None = None
        try:
            if self.ssl_context is not None and not await self._start_tls(writer, entry):
                return
            exchange = Exchange(self, reader, writer, entry)
            await exchange.run()
        except (Exception, asyncio.CancelledError) as error:
            if exchange is not None:
                entry = exchange.entry  # a kept connection's current request
            if exchange is not None and _between_requests(exchange, error):
                entry.quiet = True  # a kept connection cut while idle: nothing to say
            elif not self._note_failure(entry, error):
                raise  # a bug: asyncio logs it with its traceback
        finally:
            if exchange is not None:
                entry = exchange.entry
            self._handlers.discard(task)
            if entry.outcome in _CLOSED_POLITELY or entry.answered:
                writer.close()
            else:
                writer.transport.abort()
            if entry.worth_logging:
                self._log(entry.record())

    def _note_failure(self, entry: AccessEntry, error: BaseException) -> bool:
        """Turn what ended a connection into its outcome; False for an unexpected error."""
        if isinstance(error, Stalled):
            entry.end(Outcome.STALLED, "timed out")
        elif isinstance(error, TimeoutError):
            entry.status = "timeout" if entry.status == "closed" else entry.status
            entry.end(Outcome.BAD_REQUEST, "timed out")
        elif isinstance(error, FileShrank):
            entry.end(Outcome.FILE_CHANGED, str(error))
        elif isinstance(error, HashStopped):
            entry.end(Outcome.STOPPING, "cut at shutdown")
        elif isinstance(error, ProtocolError | Refused):
            entry.status = entry.status if entry.status != "closed" else "bad-request"
            entry.end(Outcome.BAD_REQUEST, str(error))
        elif isinstance(error, OSError):
            entry.end(Outcome.CLIENT_GONE, f"client gone: {error.__class__.__name__}")
        elif isinstance(error, asyncio.CancelledError):
            # Only stop() and cut() cancel handlers. Ending normally rather
            # than re-raising matters on Python 3.11, whose stream protocol
            # calls task.exception() on a finished handler and logs a
            # spurious traceback for a cancelled one.
            outcome = Outcome.STOPPING if self._stopping else Outcome.CANCELLED
            entry.end(outcome, "cut at shutdown")
        else:
            entry.end(Outcome.SERVER_ERROR, f"{error.__class__.__name__}: {error}")
            return False
        return True

    async def _start_tls(self, writer: asyncio.StreamWriter, entry: AccessEntry) -> bool:
        """The handshake, bounded by ``request_timeout``; failures logged sparingly.

        A flood of silent or broken handshakes must cost neither descriptors
        beyond ``max_connections`` nor a log line (or traceback) each: one
        line per cause per interval, with how many were folded into it.
        """
        assert self.ssl_context is not None
        try:
            await writer.start_tls(
                self.ssl_context, ssl_handshake_timeout=self.limits.request_timeout
            )
        except (OSError, TimeoutError) as error:
            cause = _handshake_cause(error)
            entry.end(Outcome.BAD_REQUEST)
            folded = self._handshake_failures.admit(cause)
            if folded is not None:
                entry.kind, entry.status = "TLS", "handshake-failed"
                entry.note = cause + (f" (and {folded} more like it)" if folded else "")
            else:
                entry.quiet = True
            return False
        return True

    def _log(self, record: AccessRecord) -> None:
        if self.on_access is not None:
            self.on_access(record)


#: Outcomes after which the connection is closed (what was written still goes
#: out); after any other it is reset, so a stalled peer cannot hold its buffers.
_CLOSED_POLITELY = (Outcome.COMPLETE, Outcome.REFUSED, Outcome.BUSY, Outcome.BAD_REQUEST, None)


def _between_requests(exchange: Exchange, error: BaseException) -> bool:
    """A kept connection that ended while waiting for its next request (idle, cut at a stop)."""
    idle = exchange.conn.keeps_going and not exchange.conn.buffered
    return idle and isinstance(error, asyncio.CancelledError | ConnectionError)


def _handshake_cause(error: BaseException) -> str:
    """A short, stable name for why a handshake failed (the unit of log folding)."""
    # asyncio aborts a handshake that outlives its timeout with this error.
    if isinstance(error, TimeoutError) or "longer than" in str(error):
        return "handshake timed out"
    reason = getattr(error, "reason", None)  # ssl.SSLError: e.g. WRONG_VERSION_NUMBER
    if isinstance(reason, str):
        return f"TLS error: {reason}"
    return error.__class__.__name__


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        # An IPv4 client of the dual-stack socket: shown as the IPv4 address it is.
        return format_address(host.removeprefix("::ffff:") if "." in host else host, peer[1])
    return str(peer)
