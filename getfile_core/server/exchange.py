"""One connection, from its first request to its last byte: parse, authenticate, dispatch.

The protocol object (``protocol.ServerConnection``) decides every state
transition; this module only moves bytes and asks the server's shared parts
(root, digests, slots, listings) for what it needs.

A version-2 request with ``keep`` leaves the connection open: the requests
that follow (pipelined or not) are answered one after the other, in order,
each with its own access-log line. Nothing is read ahead beyond what the
protocol object holds (``MAX_SERVER_BUFFER``), so a flood of pipelined
requests waits in TCP's buffers, not in ours, and a client that sends
without reading is cut by the stall rule like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING

from getfile_core import auth, protocol
from getfile_core.errors import ProtocolError
from getfile_core.protocol import LegacyRequest, Request, Response, ServerState, Status, Verb
from getfile_core.ratelimit import RateLimit
from getfile_core.server import listing
from getfile_core.server.access import AccessEntry, Outcome
from getfile_core.server.get import FileAnswer
from getfile_core.server.root import Refused
from getfile_core.server.sending import Sender

if TYPE_CHECKING:
    from getfile_core.server.fileserver import FileServer

#: Bytes read from the socket at a time while waiting for a request line.
READ_SIZE = 64 * 1024
#: Seconds a connection answers pipelined requests before letting the others run.
SLICE = 0.002
#: Seconds a closing kept connection keeps reading (and dropping) what the
#: client had already pipelined. Closing with unread bytes makes the kernel
#: send a reset, which can destroy the last answer in the client's buffers
#: before it read it (HTTP's "lingering close").
LINGER = 2.0


class Exchange:
    """Serves the requests of one connection; ``entry`` collects what the log will say.

    One entry per request: a finished request's line is handed to the
    server's log at once, and ``entry`` starts afresh for the next.
    """

    def __init__(
        self,
        server: FileServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        entry: AccessEntry,
    ) -> None:
        self.server = server
        self.limits = server.limits
        self.reader = reader
        self.entry = entry
        rate = RateLimit(self.limits.rate) if self.limits.rate is not None else None
        self.sender = Sender(writer, self.limits.stall_timeout, rate, server.copies)
        self.conn = protocol.ServerConnection(self.limits.max_requests)
        self._yield_at = 0.0
        self._corked = False

    async def run(self) -> None:
        while True:
            kept = self.conn.sequence >= 0
            if kept and self.server._stopping:
                break  # between two answers: the client sends the rest elsewhere
            try:
                event = await self._next_event()
            except TimeoutError:
                if kept and not self.conn.buffered:
                    self.entry.quiet = True  # idle between requests: the normal end
                    return
                raise
            except protocol.UnsupportedVersion as error:
                self.entry.kind = "?"
                self.entry.refuse(Status.UNSUPPORTED_VERSION.token, str(error), Outcome.BAD_REQUEST)
                failure = self.conn.send_failure(Status.UNSUPPORTED_VERSION, str(error))
                await self.sender.write(failure)
                break
            except ProtocolError as error:
                self.entry.refuse("bad-request", str(error), Outcome.BAD_REQUEST)
                if self.conn.is_extended:
                    await self.sender.write(self.conn.send_failure(Status.BAD_REQUEST, str(error)))
                break
            if isinstance(event, protocol.ConnectionClosed):
                self.entry.quiet = True
                return
            if kept:
                self.entry.started = time.time()  # not the idle time before it
            await self._serve(event)
            if not self.conn.keeps_going:
                break
            self._next_entry()
            # Small answers from the page cache complete without suspending:
            # without this, a thousand pipelined requests would hold the event
            # loop (every other connection) for their whole run. Once per
            # ``SLICE``, not per answer: a turn of the loop (an epoll_wait)
            # per 4 KiB file was ~10 % of the server's time on a tree.
            if time.monotonic() >= self._yield_at:
                await asyncio.sleep(0)
                self._yield_at = time.monotonic() + SLICE
        self._cork(False)
        if self.conn.sequence > 0 or _asked_to_keep(self.conn.request):
            await self._linger()

    def _cork(self, on: bool) -> None:
        """``TCP_CORK`` while answering requests that were already pipelined.

        Each 4 KiB answer was its own segment, and on loopback each send
        paid the receiver's side too (27 us a send, the server's dearest
        call on a tree of small files); corked, the kernel sends full
        segments, and everything goes out when we wait for the client again.
        """
        if on is self._corked or _TCP_CORK is None:
            return
        sock = self.sender.transport.get_extra_info("socket")
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))
            self._corked = on

    async def _serve(self, event: Request | LegacyRequest | protocol.AuthProof) -> None:
        if isinstance(event, LegacyRequest):
            self.entry.kind, self.entry.path = "LEGACY", os.fsdecode(event.path)
            await self._serve_legacy(event)
            return
        assert isinstance(event, Request)
        self.entry.kind, self.entry.path = event.verb.value, os.fsdecode(event.path)
        if event.verb is Verb.PING:
            self.entry.quiet = True
            self.entry.status = "ok"
            await self.sender.write(self.conn.send(protocol.pong()))
            self.entry.end(Outcome.COMPLETE)
            return
        if self.server.token is not None and not await self._authenticate():
            return
        if event.verb is Verb.LIST:
            await self._serve_listing(event)
        else:
            await self._serve_get(event)

    def _next_entry(self) -> None:
        """Log the finished request, and start the next one's entry."""
        if self.entry.worth_logging:
            self.server._log(self.entry.record())
        self.entry = AccessEntry(self.entry.peer)

    async def _linger(self) -> None:
        """Half-close, then drop what the client still sends, for at most ``LINGER`` seconds."""
        transport = self.sender.transport
        if transport.is_closing() or not transport.can_write_eof():
            return  # TLS cannot half-close; its close_notify plays the part
        with contextlib.suppress(OSError, TimeoutError):
            await self.sender.drain()
            transport.write_eof()
            async with asyncio.timeout(LINGER):
                while await self.reader.read(READ_SIZE):
                    pass

    async def _next_event(self) -> Request | LegacyRequest | protocol.AuthProof:
        event = self.conn.next_event()
        if event is not protocol.NEED_DATA:  # pipelined: already here, no wait to bound
            self._cork(True)
            return event  # type: ignore[return-value]
        self._cork(False)  # what we answered leaves now: the client may wait for it
        task = asyncio.current_task()
        assert task is not None
        self.server._idle.add(task)
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                while True:
                    event = self.conn.next_event()
                    if event is not protocol.NEED_DATA:
                        return event  # type: ignore[return-value]
                    self.conn.receive_data(await self.reader.read(READ_SIZE))
        finally:
            self.server._idle.discard(task)

    async def _authenticate(self) -> bool:
        """One challenge per connection; then a proof of each request, bound to its place."""
        token = self.server.token
        assert token is not None
        if self.conn.state is not ServerState.AUTH:  # no challenge on this connection yet
            challenge = secrets.token_bytes(32)
            needs = Response(Status.UNAUTHORIZED, "this server needs a token", challenge=challenge)
            await self.sender.write(self.conn.send(needs))
        proof = await self._next_event()
        assert isinstance(proof, protocol.AuthProof) and self.conn.challenge is not None
        if auth.verify(token, self.conn.challenge, self.conn.proof_subject(), proof.mac):
            return True
        self.entry.refuse(Status.UNAUTHORIZED.token, "wrong token")
        await self.sender.write(self.conn.send(Response(Status.UNAUTHORIZED, "wrong token")))
        return False

    async def refuse(self, status: Status, reason: str, **head: int) -> None:
        outcome = _OUTCOMES.get(status, Outcome.REFUSED)
        self.entry.refuse(status.token, reason, outcome)
        await self.sender.write(self.conn.send(Response(status, reason, **head)))

    # ------------------------------------------------------------ legacy

    async def _serve_legacy(self, request: LegacyRequest) -> None:
        if self.server.token is not None:
            self.entry.refuse("refused", "legacy request, but a token is required")
            return
        try:
            fd, info = self.server.root.open_file(request.path)
        except Refused as refusal:
            # The book's protocol cannot carry an error: close, and say why in the log.
            self.entry.refuse(refusal.status.token, refusal.reason)
            return
        try:
            waited = await self.server.take_slot_waiting(self.limits.legacy_wait)
            if waited is None:
                note = f"no transfer slot within {self.limits.legacy_wait:g} s"
                self.entry.refuse(Status.BUSY.token, note, Outcome.BUSY)
                return
            try:
                if waited >= 1:
                    self.entry.note = f"waited {waited:.0f} s for a transfer slot"
                self.entry.status = "ok"
                await FileAnswer(self).send_body(fd, 0, info.st_size)
                self.entry.end(Outcome.COMPLETE)
            finally:
                self.server.give_slot()
        finally:
            os.close(fd)

    # ------------------------------------------------------------ GET

    async def _serve_get(self, request: Request) -> None:
        try:
            fd, info = self.server.root.open_file(request.path)
        except Refused as refusal:
            await self.refuse(refusal.status, refusal.reason)
            return
        try:
            if request.offset > info.st_size:
                message = f"offset {request.offset} is beyond the file's {info.st_size} bytes"
                await self.refuse(Status.BAD_OFFSET, message, size=info.st_size)
                return
            if not await self._take_slot(request):
                message = f"busy: {self.limits.max_transfers} transfers running, try again soon"
                await self.refuse(Status.BUSY, message)
                return
            self.server.kept_transfers += request.keep
            try:
                await FileAnswer(self).answer(fd, info, request)
            finally:
                self.server.kept_transfers -= request.keep
                self.server.give_slot()
        finally:
            os.close(fd)

    async def _take_slot(self, request: Request) -> bool:
        """A slot for this one answer: at once, or in turn (up to ``request_timeout``).

        A kept connection holds a slot per answer, never between two, and
        waits in line for the next rather than being told busy (its requests
        are already on the wire). The line is fair (FIFO), so a connection
        with a thousand requests queued goes to the back after each file.
        Anyone else joins the line too while kept connections hold slots:
        those slots turn over at every answer, and a request told "busy"
        would otherwise only ever find them retaken the same instant.
        """
        if not request.keep and not self.server.kept_transfers:
            return await self.server.take_slot_now()
        waited = await self.server.take_slot_waiting(self.limits.request_timeout)
        return waited is not None

    # ------------------------------------------------------------ LIST

    async def _serve_listing(self, request: Request) -> None:
        try:
            fd = self.server.root.open_dir(request.path)
        except Refused as refusal:
            await self.refuse(refusal.status, refusal.reason)
            return
        try:
            async with self.server.listing_turn():
                entries, more = await asyncio.to_thread(
                    listing.scan,
                    fd,
                    self.server.root,
                    request.after,
                    request.limit,
                    self.server.sorted_names,
                )
        except TimeoutError:
            await self.refuse(Status.BUSY, "busy: too many listings at once, try again soon")
            return
        finally:
            os.close(fd)
        body = protocol.encode_listing(entries)
        head = Response(
            Status.OK,
            size=len(body),
            entries=len(entries),
            next_after=entries[-1].name if more and entries else None,
        )
        self.entry.status = "ok"
        await self.sender.write(self.conn.send(head) + body)
        if body and self.conn.state is ServerState.BODY:
            self.conn.body_sent(len(body))
        self.entry.sent = len(body)
        self.entry.end(Outcome.COMPLETE)


#: Linux's option (absent elsewhere: answers then go out one by one, as before).
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)
#: How an answer that is not the file shows in the access log; any other is a refusal.
_OUTCOMES = {Status.BUSY: Outcome.BUSY, Status.SERVER_ERROR: Outcome.SERVER_ERROR}


def _asked_to_keep(request: Request | LegacyRequest | None) -> bool:
    return isinstance(request, Request) and request.keep
