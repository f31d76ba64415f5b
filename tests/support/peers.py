"""Peers that play a server our own never is: scripted replies, the book's server, a staller.

``scripted_server`` runs one async script per connection (a lie, a stall, a
broken format); ``StallingLegacyPeer`` answers like the book's server, sends
a first block and then nothing, which is how a test gets a download that is
reliably *in progress*. Both are real loopback sockets; only their pace and
their words are staged. Threaded liars live in ``liars``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from getfile_core import protocol
from getfile_core.protocol import Response
from tests.support.files import digest_bytes
from tests.support.waits import PATIENCE

#: The book's program (our rewrite from the note), run as a peer.
LEGACY_PEER = Path(__file__).resolve().parents[1] / "peers" / "legacy_getfile.py"
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


#: The client reads whole 1 MiB buffers (MSG_WAITALL), so its counters move a MiB at a time.
STALL_FIRST_BLOCK = 1024 * 1024


class StallingLegacyPeer:
    """Speaks the book's protocol: no answer to our extended request, then raw bytes.

    It sends ``STALL_FIRST_BLOCK`` bytes of the file and then holds the
    connection open, silent, until ``release()`` (or the test's end).
    """

    def __init__(self) -> None:
        self.release_event = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.legacy_requests: list[bytes] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line.startswith(b"\x00"):
                return  # our extended request: the book's server finds no such file and closes
            self.legacy_requests.append(line.strip())
            writer.write(b"x" * STALL_FIRST_BLOCK)
            await writer.drain()
            await asyncio.wait_for(self.release_event.wait(), 60)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def release(self) -> None:
        self.release_event.set()

    async def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
