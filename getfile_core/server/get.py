"""Answering a GET: the head, the body, and (version 2) the digest trailer.

Version 1 puts the digest in the head, so a file not hashed before is
hashed first, with a ``102 processing`` each second (and its progress).
Version 2 sends the body at once: the digest goes in the head when known,
else in a trailer after the body, computed meanwhile: from the very buffers
sent when the body starts the file (one read of it), else on the hash pool. A
version-2 ``slice=K/N`` asks for the range the rule (``Slice.span``) gives
on the file's size, which only the server knows when the request comes.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from getfile_core.protocol import Request, Response, ServerState, Status, Trailer
from getfile_core.server import digests as digests_module
from getfile_core.server.access import Outcome

if TYPE_CHECKING:
    from getfile_core.server.exchange import Exchange

#: Seconds between signs of life while a client waits for a digest: ``102
#: processing`` heads (version 1) or ``hashed`` trailer lines (version 2).
HEARTBEAT = 1.0


class FileAnswer:
    """One GET's answer on one exchange (its connection, sender and log entry)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.server = exchange.server
        self.conn = exchange.conn
        self.sender = exchange.sender
        self.entry = exchange.entry

    async def answer(self, fd: int, info: os.stat_result, request: Request) -> None:
        offset, length = request.offset, request.length
        if request.slice is not None:  # the range is ours to pick: the rule, on this size
            offset, length = request.slice.span(info.st_size)
        if length is None:
            count = info.st_size - offset
        elif offset + length <= info.st_size:
            count = length
        else:
            message = f"range ends beyond the file's {info.st_size} bytes"
            await self.exchange.refuse(Status.BAD_OFFSET, message, size=info.st_size)
            return
        if request.version >= 2:
            await self._answer_v2(fd, info, offset, length, count)
            return
        try:
            digest = await self._digest_with_heartbeat(fd, info)
        except ConnectionError:
            raise  # the client hung up while we hashed: client-gone, not our failure
        except OSError as error:
            # Answer, don't just close: silence would read as a legacy server.
            reason = f"cannot read the file: {error.strerror or error}"
            await self.exchange.refuse(Status.SERVER_ERROR, reason)
            return
        head = Response(
            Status.OK,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            digest=digest,
            offset=request.offset,
        )
        self.entry.status = "ok"
        await self.send_body(fd, request.offset, count, head=self.conn.send(head))
        self.entry.end(Outcome.COMPLETE)

    async def _answer_v2(
        self, fd: int, info: os.stat_result, offset: int, length: int | None, count: int
    ) -> None:
        """The body at once; the digest in the head if known, else in the trailer."""
        digests = self.server.digests
        digest = digests.known(info)
        if digest is None and digests.is_quick(info):
            digest = await digests.digest(fd, info)  # a small file: hashed inline, no trailer
        computation = None
        if digest is None:
            feeding = offset == 0 and self.sender.feeds(count)  # one read: see Sender._send_read
            computation = digests.start_fed(fd, info) if feeding else digests.start(fd, info)
        head = Response(
            Status.OK,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            digest=digest,
            offset=offset,
            length=length,
            trailer=computation is not None,
        )
        self.entry.status = "ok"
        try:
            await self.send_body(fd, offset, count, self.conn.send(head), computation)
        finally:
            if computation is not None:
                digests.release(computation)
        if count and self.conn.state is ServerState.BODY:  # a trailer, or a kept connection
            self.conn.body_sent(count)
        if computation is None:
            self.entry.end(Outcome.COMPLETE)
            return
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
        await self.sender.finish()
        self.entry.end(outcome, trailer.error)
        self.entry.answered = True

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

    async def send_body(
        self,
        fd: int,
        offset: int,
        count: int,
        head: bytes = b"",
        feed: digests_module.Computation | None = None,
    ) -> None:
        """Send the head and the body; ``entry.sent`` ends up as what the client really accepted."""
        try:
            await self.sender.send_file(fd, offset, count, head, feed)
            await self.sender.finish()
        except BaseException:
            self.entry.sent = self.sender.accepted()
            raise
        self.entry.sent = count
