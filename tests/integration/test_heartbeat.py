"""A server still hashing a big file keeps the client waiting, not timing out.

The digest goes in the head, so a file the server has not hashed before
delays the head by as long as reading it takes. ``102 processing`` heads
are the sign of life that keeps the client's head deadline from expiring.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client.api import fetch
from getfile_core.client.state import Options
from getfile_core.digest import file_digest
from getfile_core.errors import ProtocolError
from getfile_core.protocol import Request, Response, Status, Verb
from getfile_core.server import get as server_module
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import ok_head, scripted_server

PROCESSING_HEAD = b"getfile/1 102 processing\nmessage: hashing the file\n\n"


class HeldDigests:
    """A digest cache that answers only when the test says so."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def is_quick(self, info: os.stat_result) -> bool:
        return False  # plays a big file nobody has hashed yet

    def progress(self, info: os.stat_result) -> int | None:
        return None

    def stop(self) -> None:
        self.release.set()

    async def digest(self, fd: int, info: os.stat_result) -> str:
        await self.release.wait()
        return file_digest(fd, info.st_size)


async def test_server_sends_processing_heads_until_the_digest_is_ready(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "HEARTBEAT", 0.01)
    srv = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    held = HeldDigests()
    srv.digests = held  # type: ignore[assignment]
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port_bound)
        conn = protocol.ClientConnection(Request(Verb.GET, b"hello.txt"))
        writer.write(conn.request_bytes())
        interim: list[Response] = []
        final: Response | None = None
        body = b""
        async with asyncio.timeout(10):
            while True:
                event = conn.next_event()
                if event is protocol.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, Response) and event.status is Status.PROCESSING:
                    interim.append(event)
                    if len(interim) == 3:
                        held.release.set()
                elif isinstance(event, Response):
                    final = event
                elif isinstance(event, protocol.Data):
                    body += event.data
                else:
                    break
        writer.close()
    finally:
        await srv.stop(grace=1)
    assert len(interim) >= 3 and all(r.message == "hashing the file" for r in interim)
    assert final is not None and final.status is Status.OK
    assert body == (root / "hello.txt").read_bytes()


async def test_client_waits_through_processing_heads_longer_than_its_timeout(
    dest: Path,
) -> None:
    body = b"worth the wait\n"

    async def slow_hasher(_line: bytes, writer: asyncio.StreamWriter) -> None:
        for _ in range(6):  # 6 x 0.2 s of "processing" against a 0.5 s timeout
            writer.write(PROCESSING_HEAD)
            await writer.drain()
            await asyncio.sleep(0.2)
        writer.write(ok_head(body) + body)

    async with scripted_server(slow_hasher) as port:
        target = Target("127.0.0.1", port, b"x.txt")
        result = await fetch(target, str(dest), options=Options(timeout=0.5))
    assert (dest / "x.txt").read_bytes() == body
    assert result.size == len(body)


def test_client_refuses_endless_processing_heads() -> None:
    conn = protocol.ClientConnection(Request(Verb.GET, b"x"))
    conn.receive_data(PROCESSING_HEAD * (protocol.MAX_INTERIM + 1))
    with pytest.raises(ProtocolError, match="still preparing"):
        for _ in range(protocol.MAX_INTERIM + 2):
            conn.next_event()


def test_server_connection_stays_ready_after_an_interim_head() -> None:
    conn = protocol.ServerConnection()
    conn.receive_data(protocol.encode_request(Request(Verb.GET, b"a")))
    assert isinstance(conn.next_event(), Request)
    conn.send(Response(Status.PROCESSING, "hashing the file"))
    assert conn.state == "respond"
    conn.send(Response(Status.OK, size=0, digest=None))
    assert conn.state == "done"
