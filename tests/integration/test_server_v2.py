"""Protocol version 2 on a real server: the first byte at once, the digest in a trailer.

The hash is made artificially slow in-process: every hasher the server's
pool creates waits on a gate the test opens. So "the body arrived before the
file could have been hashed" is an order of events, not a timing.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import blake3
import pytest

from getfile_core import protocol
from getfile_core.protocol import Request, Response, Status, Trailer, Verb
from getfile_core.server import digests as digests_module
from getfile_core.server import get as get_module
from getfile_core.server.access import AccessRecord
from getfile_core.server.fileserver import FileServer
from getfile_core.server.sending import Sender
from tests.support import MIB, digest_bytes, running_server, wait_until, write_random

SIZE = 8 * MIB  # far above the inline-hash limit


class GatedHashers:
    """Hashers that hash only once ``gate`` is set; counts how many were made."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.made = 0

    def __call__(self) -> _GatedHasher:
        self.made += 1
        return _GatedHasher(self.gate)


class _GatedHasher:
    def __init__(self, gate: threading.Event) -> None:
        self._gate = gate
        self._inner = blake3.blake3()

    def update(self, data: memoryview) -> None:
        # Bounded: a test that never opens the gate fails instead of hanging.
        if not self._gate.wait(30):
            raise OSError("test gate never opened")
        self._inner.update(data)

    def hexdigest(self) -> str:
        return self._inner.hexdigest()


@pytest.fixture
def hashers(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedHashers]:
    gated = GatedHashers()
    monkeypatch.setattr(digests_module, "new_hasher", gated)
    # The hash pool's pass, separate from the send (a body that does not start
    # the file, TLS, a hash another client took over). A first download that
    # hashes the bytes it sends: test_server_first_download.py.
    monkeypatch.setattr(Sender, "feeds", lambda _self, _count: False)
    monkeypatch.setattr(get_module, "HEARTBEAT", 0.05)
    yield gated
    gated.gate.set()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    write_random(root / "big.bin", SIZE)
    (root / "small.txt").write_bytes(b"small and quick\n")
    async with running_server(root, grace=1) as srv:
        yield srv


class Exchange:
    """One request over a real socket, read event by event through ``ClientConnection``."""

    def __init__(self, request: Request) -> None:
        self.conn = protocol.ClientConnection(request)
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self, port: int) -> Exchange:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(self.conn.request_bytes())
        return self

    async def next(self) -> object:
        async with asyncio.timeout(20):
            while (event := self.conn.next_event()) is protocol.NEED_DATA:
                self.conn.receive_data(await self.reader.read(256 * 1024))
        return event

    async def body(self) -> bytes:
        data = bytearray()
        while isinstance(event := await self.next(), protocol.Data):
            data += event.data
        self.pending = event
        return bytes(data)

    def close(self) -> None:
        self.writer.close()


def v2_get(path: bytes, **params: int) -> Request:
    return Request(Verb.GET, path, version=2, **params)


async def test_first_byte_and_whole_body_arrive_before_the_file_is_hashed(
    server: FileServer, hashers: GatedHashers
) -> None:
    whole = (server.root.path + "/big.bin").encode()
    exchange = await Exchange(v2_get(b"big.bin")).open(server.port_bound)
    head = await exchange.next()
    assert isinstance(head, Response) and head.status is Status.OK
    assert head.trailer and head.digest is None and head.version == 2
    body = await exchange.body()
    assert not hashers.gate.is_set(), "the body waited for the hash"
    assert body == Path(os.fsdecode(whole)).read_bytes()
    assert isinstance(exchange.pending, protocol.HashProgress)  # the server is still hashing
    hashers.gate.set()
    while isinstance(event := await exchange.next(), protocol.HashProgress):
        pass
    assert event == Trailer(digest=digest_bytes(body))
    assert await exchange.next() == protocol.EndOfMessage()
    exchange.close()
    await wait_until(lambda: len(server.log) == 1, "the log line", 10)  # type: ignore[attr-defined]
    assert server.log[0].outcome == "complete" and server.log[0].sent == SIZE  # type: ignore[attr-defined]


async def test_a_tampered_body_fails_against_the_trailer(
    server: FileServer, hashers: GatedHashers
) -> None:
    hashers.gate.set()
    exchange = await Exchange(v2_get(b"big.bin")).open(server.port_bound)
    await exchange.next()
    body = bytearray(await exchange.body())
    while isinstance(event := exchange.pending, protocol.HashProgress):
        exchange.pending = await exchange.next()
    exchange.close()
    assert isinstance(event, Trailer) and event.digest == digest_bytes(bytes(body))
    body[SIZE // 2] ^= 1
    assert digest_bytes(bytes(body)) != event.digest


async def test_a_file_changed_while_sent_gets_an_error_trailer(
    server: FileServer, hashers: GatedHashers
) -> None:
    exchange = await Exchange(v2_get(b"big.bin")).open(server.port_bound)
    await exchange.next()
    await exchange.body()
    with open(os.path.join(server.root.path, "big.bin"), "r+b") as handle:
        handle.write(b"rewritten in place")  # same size; mtime and ctime move
    hashers.gate.set()
    while isinstance(event := exchange.pending, protocol.HashProgress):
        exchange.pending = await exchange.next()
    exchange.close()
    assert isinstance(event, Trailer) and event.digest is None
    assert "changed" in event.error
    await wait_until(lambda: len(server.log) == 1, "the log line", 10)  # type: ignore[attr-defined]
    assert server.log[0].outcome == "file-changed"  # type: ignore[attr-defined]


async def test_a_known_digest_goes_in_the_head_with_no_trailer(
    server: FileServer, hashers: GatedHashers
) -> None:
    exchange = await Exchange(v2_get(b"small.txt")).open(server.port_bound)
    hashers.gate.set()  # a small file is hashed inline, gate or not
    head = await exchange.next()
    assert isinstance(head, Response) and not head.trailer
    assert await exchange.body() == b"small and quick\n"
    assert head.digest == digest_bytes(b"small and quick\n")
    exchange.close()


async def test_a_byte_range_is_sent_with_the_whole_files_digest(
    server: FileServer, hashers: GatedHashers
) -> None:
    hashers.gate.set()
    data = Path(server.root.path, "big.bin").read_bytes()
    exchange = await Exchange(v2_get(b"big.bin", offset=MIB, length=1000)).open(server.port_bound)
    head = await exchange.next()
    assert isinstance(head, Response) and (head.offset, head.length) == (MIB, 1000)
    assert await exchange.body() == data[MIB : MIB + 1000]
    while isinstance(event := exchange.pending, protocol.HashProgress):
        exchange.pending = await exchange.next()
    assert event == Trailer(digest=digest_bytes(data))
    exchange.close()


async def test_a_range_beyond_the_end_is_a_bad_offset(server: FileServer) -> None:
    exchange = await Exchange(v2_get(b"big.bin", offset=SIZE - 10, length=11)).open(
        server.port_bound
    )
    head = await exchange.next()
    exchange.close()
    assert isinstance(head, Response) and head.status is Status.BAD_OFFSET and head.size == SIZE


async def test_ping_is_answered_without_files_auth_or_log(tmp_path: Path) -> None:
    records: list[AccessRecord] = []
    root = tmp_path / "empty"
    root.mkdir()
    srv = FileServer(root, token=b"secret", on_access=records.append)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port_bound)
        writer.write(b"\x00getfile/2 PING\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        await srv.stop(grace=1)
    assert answer == b"getfile/2 200 ok\nsize: 0\n\n"
    assert records == []


async def test_version_1_clients_get_heartbeats_with_progress(
    server: FileServer, hashers: GatedHashers
) -> None:
    exchange = await Exchange(Request(Verb.GET, b"big.bin")).open(server.port_bound)
    interim = await exchange.next()
    assert isinstance(interim, Response) and interim.status is Status.PROCESSING
    assert (interim.version, interim.size, interim.hashed) == (1, SIZE, 0)
    hashers.gate.set()
    while (
        isinstance(event := await exchange.next(), Response) and event.status is Status.PROCESSING
    ):
        pass
    assert isinstance(event, Response) and event.digest is not None and not event.trailer
    exchange.close()


async def test_one_hash_per_file_kept_after_its_client_left(
    server: FileServer, hashers: GatedHashers
) -> None:
    first = await Exchange(Request(Verb.GET, b"big.bin")).open(server.port_bound)
    assert isinstance(await first.next(), Response)  # a heartbeat: the hash runs
    second = await Exchange(v2_get(b"big.bin")).open(server.port_bound)
    await second.next()
    first.close()
    second.close()
    await wait_until(lambda: len(server.log) == 2, "both clients gone", 10)  # type: ignore[attr-defined]
    assert {r.outcome for r in server.log} == {"client-gone"}  # type: ignore[attr-defined]
    hashers.gate.set()
    await wait_until(lambda: not server.digests._pending, "the hash to finish", 10)
    third = await Exchange(v2_get(b"big.bin")).open(server.port_bound)
    head = await third.next()
    third.close()
    assert isinstance(head, Response) and head.digest is not None and not head.trailer
    assert hashers.made == 1


async def test_stop_ends_a_running_hash_within_the_grace(
    server: FileServer, hashers: GatedHashers
) -> None:
    exchange = await Exchange(Request(Verb.GET, b"big.bin")).open(server.port_bound)
    assert isinstance(await exchange.next(), Response)
    await asyncio.wait_for(server.stop(grace=0.2), 10)
    hashers.gate.set()  # the worker wakes, sees the stop, and ends at once
    await wait_until(lambda: not _hash_threads(), "the hash thread to end", 10)
    exchange.close()
    assert hashers.made == 1


def _hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("getfile-hash")]


async def test_a_file_rewritten_with_the_same_size_and_mtime_is_hashed_again(
    server: FileServer, hashers: GatedHashers
) -> None:
    hashers.gate.set()
    path = Path(server.root.path, "big.bin")
    first = await Exchange(Request(Verb.GET, b"big.bin")).open(server.port_bound)
    while isinstance(head := await first.next(), Response) and head.status is Status.PROCESSING:
        pass
    first.close()
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(b"X" * 64)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as rsync -t --inplace
    second = await Exchange(Request(Verb.GET, b"big.bin")).open(server.port_bound)
    while isinstance(again := await second.next(), Response) and again.status is Status.PROCESSING:
        pass
    second.close()
    assert isinstance(head, Response) and isinstance(again, Response)
    assert again.digest != head.digest
    assert again.digest == digest_bytes(path.read_bytes())
