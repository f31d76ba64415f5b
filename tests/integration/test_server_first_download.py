"""A first (never-hashed) download: the server hashes the very bytes it sends, read once.

Real loopback sockets. Socket buffers are pinned small on both ends, so a
reader that stops really holds the server back (the file is 8 MiB, the
buffers 32 KiB): "the rewrite happened during the send" is an order of
events, not a timing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.protocol import Request, Response, Status, Trailer, Verb
from getfile_core.server import digests as digests_module
from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.tls import client_context, server_context
from tests.support import (
    KIB,
    MIB,
    digest_bytes,
    extended_get,
    make_cert_set,
    running_server,
    split_response,
    wait_until,
    write_random,
)

SIZE = 8 * MIB
SMALL_BUFFER = 32 * KIB
#: Read before the reader stops: far less than the file, more than the buffers.
FIRST_PART = 256 * KIB


@pytest.fixture
def pool_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the hash pool's passes (each records the offset it started from)."""
    started: list[int] = []
    original = digests_module.Computation.run

    def counted(self: digests_module.Computation) -> str:
        started.append(self.hashed)
        return original(self)

    monkeypatch.setattr(digests_module.Computation, "run", counted)
    return started


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    write_random(root / "big.bin", SIZE)
    limits = ServerLimits(grace=1, stall_timeout=30)
    async with running_server(root, limits=limits) as srv:
        assert srv._server is not None
        for listener in srv._server.sockets:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        yield srv


def served_file(server: FileServer) -> Path:
    return Path(server.root.path) / "big.bin"


class Reader:
    """A version-2 GET on a blocking socket with a small receive buffer."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        sock.settimeout(20)
        sock.connect(("127.0.0.1", port))
        self.sock = tls.wrap_socket(sock, server_hostname="127.0.0.1") if tls else sock
        self.request = Request(Verb.GET, b"big.bin", version=2)
        self.sock.sendall(protocol.encode_request(self.request))
        self.raw = bytearray()

    def read(self, at_least: int | None = None) -> None:
        """Read until ``at_least`` bytes arrived, or (None) until the server closes."""
        while at_least is None or len(self.raw) < at_least:
            chunk = self.sock.recv(64 * KIB)
            if not chunk:
                return
            self.raw += chunk

    def events(self) -> tuple[Response, bytes, Trailer]:
        conn = protocol.ClientConnection(self.request)
        conn.receive_data(bytes(self.raw))
        head, body, trailer = None, bytearray(), None
        while (event := conn.next_event()) not in (protocol.NEED_DATA, protocol.EndOfMessage()):
            if isinstance(event, Response):
                head = event
            elif isinstance(event, protocol.Data):
                body += event.data
            elif isinstance(event, Trailer):
                trailer = event
        assert head is not None and trailer is not None, (len(self.raw), bytes(self.raw[-300:]))
        return head, bytes(body), trailer


async def test_a_first_download_is_read_once_and_ends_with_the_digest_of_its_bytes(
    server: FileServer, pool_runs: list[int]
) -> None:
    reader = await asyncio.to_thread(Reader, server.port_bound)
    await asyncio.to_thread(reader.read)
    reader.sock.close()
    head, body, trailer = reader.events()
    assert head.status is Status.OK and head.trailer and head.digest is None
    assert body == served_file(server).read_bytes()
    assert trailer == Trailer(digest=digest_bytes(body))
    assert pool_runs == [], "the file was read a second time to hash it"
    # Kept: the next download has it in its head.
    assert server.digests.known(os.stat(served_file(server))) == trailer.digest
    await wait_until(lambda: len(server.log) == 1, "the log line", 10)  # type: ignore[attr-defined]
    assert server.log[0].outcome == "complete" and server.log[0].sent == SIZE  # type: ignore[attr-defined]


async def test_a_file_rewritten_during_the_send_ends_in_an_error_trailer(
    server: FileServer,
) -> None:
    reader = await asyncio.to_thread(Reader, server.port_bound)
    await asyncio.to_thread(reader.read, FIRST_PART)
    with open(served_file(server), "r+b") as handle:
        handle.seek(SIZE // 2)
        handle.write(b"rewritten in place")  # same size; mtime and ctime move
    await asyncio.to_thread(reader.read)
    reader.sock.close()
    await wait_until(lambda: len(server.log) == 1, "the log line", 10)  # type: ignore[attr-defined]
    record = server.log[0]  # type: ignore[attr-defined]
    assert record.outcome == "file-changed", (record, len(reader.raw))
    _head, body, trailer = reader.events()
    assert len(body) == SIZE
    assert trailer.digest is None and "changed" in (trailer.error or "")


async def test_a_client_waiting_for_the_digest_takes_the_hash_off_a_stalled_reader(
    server: FileServer, pool_runs: list[int]
) -> None:
    whole = served_file(server).read_bytes()
    stalled = await asyncio.to_thread(Reader, server.port_bound)
    await asyncio.to_thread(stalled.read, FIRST_PART)  # then stops reading (not closed)
    # A version-1 client needs the digest in its head: the pool hashes the
    # rest now, at disk speed, instead of at the stalled reader's pace.
    raw = await asyncio.to_thread(_v1_head, server.port_bound)
    head, _ = split_response(raw)
    assert head.status is Status.OK and head.digest == digest_bytes(whole)
    assert len(pool_runs) == 1 and 0 < pool_runs[0] < SIZE, pool_runs
    await asyncio.to_thread(stalled.read)
    stalled.sock.close()
    _head, body, trailer = stalled.events()
    assert body == whole and trailer == Trailer(digest=digest_bytes(whole))


async def test_a_reader_gone_mid_send_leaves_the_digest_computed_and_kept(
    server: FileServer, pool_runs: list[int]
) -> None:
    reader = await asyncio.to_thread(Reader, server.port_bound)
    await asyncio.to_thread(reader.read, FIRST_PART)
    reader.sock.close()
    info = os.stat(served_file(server))
    await wait_until(lambda: server.digests.known(info) is not None, "the digest kept", 20)
    assert server.digests.known(info) == digest_bytes(served_file(server).read_bytes())
    assert len(pool_runs) == 1 and 0 < pool_runs[0] < SIZE, pool_runs


def _v1_head(port: int) -> bytes:
    """A version-1 GET's head (the digest in it), read up to its blank line."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(extended_get(b"big.bin"))
        raw = bytearray()
        while True:
            while b"\n\n" not in raw:
                chunk = sock.recv(4 * KIB)
                assert chunk, f"closed before the head: {bytes(raw)!r}"
                raw += chunk
            head, _, rest = bytes(raw).partition(b"\n\n")
            if protocol.parse_response_head(head).status is not Status.PROCESSING:
                return bytes(raw)
            raw = bytearray(rest)  # a heartbeat while the pool hashes: the next head


async def test_stop_with_a_first_download_stalled_ends_within_the_grace(
    server: FileServer,
) -> None:
    reader = await asyncio.to_thread(Reader, server.port_bound)
    await asyncio.to_thread(reader.read, FIRST_PART)  # then stops reading (not closed)
    info = os.stat(served_file(server))
    assert server.digests.progress(info) is not None  # the fed computation is running
    async with asyncio.timeout(15):  # grace 1 s, then the cut: never the 30 s stall allowance
        await server.stop(grace=1)
    reader.sock.close()
    # The cut reader released its hash to the pool, which stop() stopped too.
    await wait_until(lambda: server.digests.progress(info) is None, "the hash stopped", 10)
    await wait_until(lambda: len(server.log) == 1, "the log line", 10)  # type: ignore[attr-defined]
    assert server.log[0].sent < SIZE  # type: ignore[attr-defined]


async def test_a_first_download_over_tls_is_hashed_from_the_chunks_it_sends(
    tmp_path: Path, pool_runs: list[int]
) -> None:
    root = tmp_path / "served"
    root.mkdir()
    write_random(root / "big.bin", SIZE)
    certs = make_cert_set(tmp_path / "certs")
    tls = server_context(str(certs.good.cert), str(certs.good.key))
    async with running_server(root, ssl_context=tls) as srv:
        client = client_context(str(certs.trusted_ca))
        reader = await asyncio.to_thread(Reader, srv.port_bound, client)
        await asyncio.to_thread(reader.read)
        reader.sock.close()
    _head, body, trailer = reader.events()
    assert body == (root / "big.bin").read_bytes()
    assert trailer == Trailer(digest=digest_bytes(body))
    assert pool_runs == [], "the file was read a second time to hash it"
