"""One connection, from its request to its last byte: parse, authenticate, dispatch.

The protocol object (``protocol.ServerConnection``) decides every state
transition; this module only moves bytes and asks the server's shared parts
(root, digests, slots, listings) for what it needs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import TYPE_CHECKING

from getfile_core import auth, protocol
from getfile_core.errors import ProtocolError
from getfile_core.protocol import LegacyRequest, Request, Response, Status, Verb
from getfile_core.ratelimit import RateLimit
from getfile_core.server import listing
from getfile_core.server.access import AccessEntry, Outcome
from getfile_core.server.get import FileAnswer
from getfile_core.server.root import Refused
from getfile_core.server.sending import Sender

if TYPE_CHECKING:
    from getfile_core.server.fileserver import FileServer


class Exchange:
    """Serves the one request of one connection; ``entry`` collects what the log will say."""

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
        self.sender = Sender(writer, self.limits.stall_timeout, rate)
        self.conn = protocol.ServerConnection()

    async def run(self) -> None:
        try:
            event = await self._next_event()
        except protocol.UnsupportedVersion as error:
            self.entry.kind = "?"
            self.entry.refuse(Status.UNSUPPORTED_VERSION.token, str(error), Outcome.BAD_REQUEST)
            await self.sender.write(self.conn.send_failure(Status.UNSUPPORTED_VERSION, str(error)))
            return
        except ProtocolError as error:
            self.entry.refuse("bad-request", str(error), Outcome.BAD_REQUEST)
            if self.conn.is_extended:
                await self.sender.write(self.conn.send_failure(Status.BAD_REQUEST, str(error)))
            return
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

    async def _next_event(self) -> Request | LegacyRequest | protocol.AuthProof:
        task = asyncio.current_task()
        assert task is not None
        self.server._idle.add(task)
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                while True:
                    event = self.conn.next_event()
                    if event is not protocol.NEED_DATA:
                        return event  # type: ignore[return-value]
                    self.conn.receive_data(await self.reader.read(64 * 1024))
        finally:
            self.server._idle.discard(task)

    async def _authenticate(self) -> bool:
        token = self.server.token
        assert token is not None
        challenge = secrets.token_bytes(32)
        needs = Response(Status.UNAUTHORIZED, "this server needs a token", challenge=challenge)
        await self.sender.write(self.conn.send(needs))
        proof = await self._next_event()
        assert isinstance(proof, protocol.AuthProof)
        if auth.verify(token, challenge, self.conn.request_line, proof.mac):
            return True
        self.entry.refuse(Status.UNAUTHORIZED.token, "wrong token")
        await self.sender.write(self.conn.send(Response(Status.UNAUTHORIZED, "wrong token")))
        return False

    async def refuse(self, status: Status, reason: str, **head: int) -> None:
        outcome = Outcome.BUSY if status is Status.BUSY else Outcome.REFUSED
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
            if not await self.server.take_slot_now():
                message = f"busy: {self.limits.max_transfers} transfers running, try again soon"
                await self.refuse(Status.BUSY, message)
                return
            try:
                await FileAnswer(self).answer(fd, info, request)
            finally:
                self.server.give_slot()
        finally:
            os.close(fd)

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
        self.entry.sent = len(body)
        self.entry.end(Outcome.COMPLETE)
