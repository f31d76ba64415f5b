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
from getfile_core.protocol import LegacyRequest, Request, Response, Status, Trailer, Verb
from getfile_core.ratelimit import RateLimit
from getfile_core.server import digests as digests_module
from getfile_core.server import listing
from getfile_core.server.access import AccessEntry, Outcome
from getfile_core.server.root import Refused
from getfile_core.server.sending import Sender

if TYPE_CHECKING:
    from getfile_core.server.fileserver import FileServer

#: Seconds between ``102 processing`` heads while a version-1 client waits for a digest.
HEARTBEAT = 1.0


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

    async def _refuse(self, status: Status, reason: str, **head: int) -> None:
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
                await self._send_body(fd, 0, info.st_size)
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
            await self._refuse(refusal.status, refusal.reason)
            return
        try:
            if request.offset > info.st_size:
                message = f"offset {request.offset} is beyond the file's {info.st_size} bytes"
                await self._refuse(Status.BAD_OFFSET, message, size=info.st_size)
                return
            if not await self.server.take_slot_now():
                message = f"busy: {self.limits.max_transfers} transfers running, try again soon"
                await self._refuse(Status.BUSY, message)
                return
            try:
                await self._answer_get(fd, info, request)
            finally:
                self.server.give_slot()
        finally:
            os.close(fd)

    async def _answer_get(self, fd: int, info: os.stat_result, request: Request) -> None:
        if request.length is None:
            count = info.st_size - request.offset
        elif request.offset + request.length <= info.st_size:
            count = request.length
        else:
            message = f"range ends beyond the file's {info.st_size} bytes"
            await self._refuse(Status.BAD_OFFSET, message, size=info.st_size)
            return
        if request.version >= 2:
            await self._answer_get_v2(fd, info, request, count)
            return
        try:
            digest = await self._digest_with_heartbeat(fd, info)
        except ConnectionError:
            raise  # the client hung up while we hashed: client-gone, not our failure
        except OSError as error:
            # Answer, don't just close: silence would read as a legacy server.
            reason = f"cannot read the file: {error.strerror or error}"
            self.entry.refuse(Status.SERVER_ERROR.token, reason, Outcome.SERVER_ERROR)
            await self.sender.write(self.conn.send(Response(Status.SERVER_ERROR, reason)))
            return
        head = Response(
            Status.OK,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            digest=digest,
            offset=request.offset,
        )
        self.sender.writer.write(self.conn.send(head))
        self.entry.status = "ok"
        await self._send_body(fd, request.offset, count)
        self.entry.end(Outcome.COMPLETE)

    async def _answer_get_v2(
        self, fd: int, info: os.stat_result, request: Request, count: int
    ) -> None:
        """The body at once; the digest in the head if known, else in the trailer."""
        digests = self.server.digests
        digest = digests.known(info)
        if digest is None and digests.is_quick(info):
            digest = await digests.digest(fd, info)  # a small file: hashed inline, no trailer
        computation = None if digest is not None else digests.start(fd, info)
        head = Response(
            Status.OK,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            digest=digest,
            offset=request.offset,
            length=request.length,
            trailer=computation is not None,
        )
        self.sender.writer.write(self.conn.send(head))
        self.entry.status = "ok"
        await self._send_body(fd, request.offset, count)
        if computation is None:
            self.entry.end(Outcome.COMPLETE)
            return
        if count:
            self.conn.body_sent(count)
        await self._send_trailer(fd, info, computation)

    async def _send_trailer(
        self, fd: int, info: os.stat_result, computation: digests_module.Computation
    ) -> None:
        """Wait for the shared hash (a progress line each second), then the trailer."""
        future = computation.future
        assert future is not None
        while not future.done():
            await asyncio.wait({future}, timeout=HEARTBEAT)  # never cancels the shared hash
            if not future.done():
                await self.sender.write(self.conn.send_hash_progress(computation.hashed))
        if future.cancelled():
            raise digests_module.HashStopped("hashing stopped")
        error = future.exception()
        if isinstance(error, digests_module.HashStopped):
            raise error
        if error is not None:
            trailer = Trailer(error=f"cannot read the file: {error}")
            outcome = Outcome.SERVER_ERROR
        elif digests_module.file_key(os.fstat(fd)) != digests_module.file_key(info):
            trailer = Trailer(error="the file changed while it was sent")
            outcome = Outcome.FILE_CHANGED
        else:
            trailer, outcome = Trailer(digest=future.result()), Outcome.COMPLETE
        await self.sender.write(self.conn.send_trailer(trailer))
        self.entry.end(outcome, trailer.error)

    async def _digest_with_heartbeat(self, fd: int, info: os.stat_result) -> str:
        """Version 1: the file's digest; while it is computed, a ``102 processing`` each second.

        Hashing a big file the server has not seen before takes as long as
        reading it (minutes for a cold multi-GiB file). Without a sign of life
        the client's head deadline would expire and the download would fail.
        Each heartbeat says how far the hash got (``hashed`` of ``size``).
        """
        digests = self.server.digests
        if digests.is_quick(info):  # the common case: no task, no heartbeat
            return await digests.digest(fd, info)
        hashing = asyncio.ensure_future(digests.digest(fd, info))
        try:
            while True:
                done, _ = await asyncio.wait({hashing}, timeout=HEARTBEAT)
                if done:
                    return hashing.result()
                interim = Response(
                    Status.PROCESSING,
                    "hashing the file",
                    size=info.st_size,
                    hashed=digests.progress(info),
                )
                await self.sender.write(self.conn.send(interim))
        finally:
            hashing.cancel()  # only this wait: the shared computation goes on

    async def _send_body(self, fd: int, offset: int, count: int) -> None:
        """Send the body; ``entry.sent`` ends up as what the client really accepted."""
        try:
            await self.sender.send_file(fd, offset, count)
            await self.sender.drain()
        except BaseException:
            self.entry.sent = self.sender.accepted()
            raise
        self.entry.sent = count

    # ------------------------------------------------------------ LIST

    async def _serve_listing(self, request: Request) -> None:
        try:
            fd = self.server.root.open_dir(request.path)
        except Refused as refusal:
            await self._refuse(refusal.status, refusal.reason)
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
            await self._refuse(Status.BUSY, "busy: too many listings at once, try again soon")
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
