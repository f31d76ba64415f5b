"""The server cuts a client only for making no progress, and logs what really happened.

Shaped so a bug shows in seconds: a 2 s stall timeout, a reader at 64 KiB/s
for about 8 s, and socket buffers pinned small on both ends (the listener's
SO_SNDBUF is inherited by accepted sockets), so the server really waits on
the reader instead of parking the whole file in kernel buffers.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.server.access import AccessRecord
from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.server.sending import CopySlots
from getfile_core.tls import client_context, server_context
from tests.support import (
    KIB,
    digest_bytes,
    extended_get,
    make_cert_set,
    split_response,
    wait_until,
    write_random,
)

READER_RATE = 64 * KIB
#: About 8 s at the reader's pace: four times the stall timeout.
SIZE = 8 * READER_RATE
SMALL_BUFFER = 32 * KIB


class CountedSlots(CopySlots):
    """The server's copy slots, counting the bodies that went by copy."""

    def __init__(self, slots: int = 8, smallest: int = 0) -> None:
        super().__init__(slots, smallest)
        self.taken = 0

    def take(self) -> bool:
        took = super().take()
        self.taken += took
        return took


async def start_server(
    root: Path,
    records: list[AccessRecord],
    tls: ssl.SSLContext | None = None,
    copies: CopySlots | None = None,
    **limits: float,
) -> FileServer:
    server = FileServer(
        root,
        limits=ServerLimits(grace=1, **limits),  # type: ignore[arg-type]
        on_access=records.append,
        ssl_context=tls,
    )
    if copies is not None:  # this test's bodies are small: copy them too
        server.copies = copies
    await server.start()
    assert server._server is not None
    for listener in server._server.sockets:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    return server


def connect(port: int, tls: ssl.SSLContext | None = None) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    return tls.wrap_socket(sock, server_hostname="127.0.0.1") if tls is not None else sock


def read_paced(
    port: int,
    request: bytes,
    rate: float,
    stop_after: int | None = None,
    tls: ssl.SSLContext | None = None,
) -> bytes:
    """Read everything at ``rate`` bytes/s; with ``stop_after``, stop reading (not close) then."""
    received = bytearray()
    with connect(port, tls) as sock:
        sock.sendall(request)
        began = time.monotonic()
        while True:
            if stop_after is not None and len(received) >= stop_after:
                return bytes(received)
            chunk = sock.recv(4 * KIB)
            if not chunk:
                return bytes(received)
            received += chunk
            ahead = len(received) / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)  # pacing, not synchronisation


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    write_random(root / "slow.bin", SIZE)
    return root


#: A version-2 request for a file never hashed: the server hashes the bytes it sends.
FIRST_DOWNLOAD = protocol.encode_request(
    protocol.Request(protocol.Verb.GET, b"slow.bin", version=2)
)


@pytest.mark.parametrize(
    ("dialect", "by_copy"),
    [
        ("extended", False),
        ("legacy", False),
        ("first", False),
        ("extended", True),
        ("legacy", True),
    ],
)
async def test_a_slow_reader_is_served_to_the_end_on_one_connection(
    served: Path, dialect: str, by_copy: bool
) -> None:
    """``by_copy``: as a large body for a client on this machine goes (``CopySlots``)."""
    records: list[AccessRecord] = []
    copies = CountedSlots() if by_copy else None
    server = await start_server(served, records, copies=copies, stall_timeout=2)
    requests = {"extended": extended_get(b"slow.bin"), "first": FIRST_DOWNLOAD}
    request = requests.get(dialect, b"slow.bin\n")
    try:
        began = time.monotonic()
        data = await asyncio.to_thread(read_paced, server.port_bound, request, READER_RATE)
        elapsed = time.monotonic() - began
        await wait_until(lambda: len(records) == 1, "the access-log line", 10)
    finally:
        await server.stop(grace=1)
    body = split_response(data)[1] if dialect != "legacy" else data
    if dialect == "first":  # the body, then the trailer with the digest of what was sent
        body, trailer = body[:SIZE], body[SIZE:]
        assert digest_bytes(body).encode() in trailer, trailer
    assert body == (served / "slow.bin").read_bytes()
    assert elapsed > 2 * 2, "the reader was not slower than the stall timeout"
    [record] = records
    assert (record.status, record.outcome, record.sent) == ("ok", "complete", SIZE)
    if copies is not None:
        assert copies.taken == 1 and copies.free == 8  # went by copy, and gave its slot back


@pytest.mark.parametrize("by_copy", [False, True])
async def test_a_reader_that_stops_is_cut_and_logged_with_the_bytes_it_took(
    served: Path, by_copy: bool
) -> None:
    records: list[AccessRecord] = []
    copies = CountedSlots() if by_copy else None
    server = await start_server(served, records, copies=copies, stall_timeout=2)
    try:
        sock = await asyncio.to_thread(connect, server.port_bound)
        sock.sendall(extended_get(b"slow.bin"))
        read = 0
        while read < 100 * KIB:
            read += len(await asyncio.to_thread(sock.recv, 16 * KIB))
        began = time.monotonic()
        await wait_until(lambda: len(records) == 1, "the stalled reader to be cut", 20)
        waited = time.monotonic() - began
        sock.close()
    finally:
        await server.stop(grace=1)
    [record] = records
    assert record.outcome == "stalled" and record.note == "timed out"
    assert waited >= 1.5  # cut for the stall, not before (a lower bound only)
    # The truth: at least what we read, at most that plus what our kernel buffered.
    assert read <= record.sent <= read + 4 * SMALL_BUFFER + 64 * KIB, (read, record.sent)
    assert record.sent < SIZE
    if copies is not None:
        assert copies.taken == 1 and copies.free == 8  # the cut gave the slot back


async def test_the_rate_limit_holds_each_connection_back(served: Path) -> None:
    records: list[AccessRecord] = []
    rate = 256 * KIB
    server = FileServer(served, limits=ServerLimits(rate=rate), on_access=records.append)
    await server.start()
    try:
        began = time.monotonic()
        data = await asyncio.to_thread(
            read_paced, server.port_bound, extended_get(b"slow.bin"), 1e12
        )
        elapsed = time.monotonic() - began
    finally:
        await server.stop(grace=1)
    assert split_response(data)[1] == (served / "slow.bin").read_bytes()
    # A lower bound only: SIZE at ``rate`` less the burst allowance.
    assert elapsed >= 0.85 * SIZE / rate, elapsed


def test_a_non_positive_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        ServerLimits(rate=0)


async def test_a_legacy_client_waits_for_a_slot_beyond_the_request_timeout(
    served: Path,
) -> None:
    """The book's client cannot be told "busy": it waits (bounded) instead of getting nothing."""
    records: list[AccessRecord] = []
    limits = {"max_transfers": 1, "request_timeout": 1, "legacy_wait": 30}
    server = await start_server(served, records, stall_timeout=30, **limits)
    try:
        holder = await asyncio.to_thread(connect, server.port_bound)
        holder.sendall(extended_get(b"slow.bin"))  # takes the only slot, reads nothing
        await wait_until(lambda: server.active_transfers == 1, "the slot taken", 10)
        legacy = asyncio.ensure_future(
            asyncio.to_thread(read_paced, server.port_bound, b"slow.bin\n", 1e12)
        )
        await wait_until(
            lambda: len(server._handlers) == 2 and not server._idle,
            "the legacy request read and waiting for the slot",
            10,
        )
        # A connection opened after it that sends nothing is dismissed by the request
        # timeout (1 s: the log notes waits of a second or more); the legacy client is
        # still waiting then, not dismissed with nothing (which the book's client would
        # save as an empty file).
        idle = await asyncio.to_thread(connect, server.port_bound)
        with idle:
            assert await asyncio.to_thread(idle.recv, 1) == b""
        assert not legacy.done()
        holder.close()
        data = await asyncio.wait_for(legacy, 30)
        await wait_until(lambda: len(records) == 3, "the three log lines", 10)
    finally:
        await server.stop(grace=1)
    assert data == (served / "slow.bin").read_bytes()
    legacy_record = next(r for r in records if r.kind == "LEGACY")
    assert legacy_record.outcome == "complete"
    assert "waited" in legacy_record.note and "transfer slot" in legacy_record.note


async def test_a_slow_reader_over_tls_is_served_to_the_end(served: Path, tmp_path: Path) -> None:
    """TLS cannot use sendfile; its write/drain path follows the same progress rule."""
    certs = make_cert_set(tmp_path / "certs")
    records: list[AccessRecord] = []
    tls = server_context(str(certs.good.cert), str(certs.good.key))
    server = await start_server(served, records, tls, stall_timeout=2)
    client = client_context(str(certs.trusted_ca))
    try:
        began = time.monotonic()
        data = await asyncio.to_thread(
            read_paced, server.port_bound, extended_get(b"slow.bin"), READER_RATE, None, client
        )
        elapsed = time.monotonic() - began
        await wait_until(lambda: len(records) == 1, "the access-log line", 10)
    finally:
        await server.stop(grace=1)
    assert split_response(data)[1] == (served / "slow.bin").read_bytes()
    assert elapsed > 2 * 2, "the reader was not slower than the stall timeout"
    [record] = records
    assert (record.outcome, record.sent) == ("complete", SIZE)
