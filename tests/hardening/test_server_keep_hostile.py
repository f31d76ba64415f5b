"""Kept (pipelined) connections against hostile clients, and over TLS with a token.

After one honest kept answer, each connection sends a tail drawn from a
seeded corpus of hostile pieces (garbage, half lines, AUTH out of turn, a
legacy line, lines past every bound, a flood) in random splits, then
closes, half-closes or vanishes. Whatever comes, no handler may crash, no
file may stay open, every connection must end, and the server must go on
serving.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.protocol import Request, Status, Verb
from getfile_core.server.access import AccessRecord, Outcome
from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.tls import client_context, server_context
from tests.integration.test_server_keep import KeptClient, get
from tests.support import (
    PATIENCE,
    fds_under,
    raw_exchange,
    recording_task_failures,
    wait_until,
)
from tests.support.certs import CertSet, make_cert_set

PIECES = [
    protocol.encode_request(Request(Verb.GET, b"hello.txt", version=2, keep=True)),
    protocol.encode_request(Request(Verb.LIST, b"sub", version=2, keep=True)),
    protocol.encode_request(Request(Verb.PING, b"", version=2, keep=True)),
    protocol.encode_request(Request(Verb.GET, b"sub/data.bin", version=2)),  # ends it
    protocol.encode_request(Request(Verb.GET, b"../etc/passwd", version=2, keep=True)),
    protocol.encode_request(Request(Verb.GET, b"hello.txt", version=2, keep=True, offset=99)),
    protocol.encode_auth(b"\x01" * 32, 2),
    b"hello.txt\n",  # a legacy line on a kept connection
    b"\x00getfile/9 GET a keep=1\n",
    b"\x00getfile/2 GET a keep=2\n",
    b"\x00getfile/2 FETCH a\n",
    b"\x00getfile/2 GET ",  # half a line
    b"\x00getfile/2 GET " + b"a" * 20_000 + b"\n",  # past the line bound
    b"\x00" * 10,
    b"\n\n\n",
    bytes(range(256)),
    protocol.encode_request(Request(Verb.PING, b"", version=2, keep=True)) * 3000,  # a flood
]


def hostile_tail(rng: random.Random) -> list[bytes]:
    """A random mix of pieces, cut at random points."""
    data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data), rng.randint(0, 5))))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


async def hostile_connection(port: int, rng: random.Random) -> None:
    client = await KeptClient.open(port, get(b"hello.txt"))
    for piece in hostile_tail(rng):
        client.writer.write(piece)
        await asyncio.sleep(0)
    ending = rng.choice(["close", "half-close", "reset", "read"])
    if ending == "half-close":
        client.writer.write_eof()
    if ending in ("half-close", "read"):
        async with asyncio.timeout(PATIENCE):
            while await client.reader.read(256 * 1024):
                pass
    if ending == "reset":
        client.writer.transport.abort()
    else:
        client.writer.close()


@pytest.fixture
async def server(root: Path) -> FileServer:
    records: list[AccessRecord] = []
    srv = FileServer(
        root, limits=ServerLimits(grace=1, request_timeout=2), on_access=records.append
    )
    srv.log = records  # type: ignore[attr-defined]
    await srv.start()
    yield srv  # type: ignore[misc]
    await srv.stop(grace=1)


async def test_hostile_tails_on_kept_connections_never_crash_or_leak(
    server: FileServer, root: Path
) -> None:
    rng = random.Random(12)  # seeded: a failure is reproducible
    with recording_task_failures() as failures:
        for _batch in range(6):
            await asyncio.gather(*(hostile_connection(server.port_bound, rng) for _ in range(8)))
        await wait_until(lambda: server.connections == 0, "every handler ended", PATIENCE)
    assert failures.errors == []
    assert fds_under(root) == []
    assert server.active_transfers == 0
    known = {str(o) for o in Outcome}
    assert {r.outcome for r in server.log} <= known  # type: ignore[attr-defined]
    response, body = await raw_exchange(server.port_bound, Request(Verb.GET, b"hello.txt"))
    assert response.status is Status.OK and body == b"hello, world\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(tmp_path_factory.mktemp("certs"))


async def test_a_kept_connection_over_tls_with_a_token(root: Path, certs: CertSet) -> None:
    token = b"tls-and-token"
    context = server_context(str(certs.good.cert), str(certs.good.key))
    records: list[AccessRecord] = []
    server = FileServer(
        root, limits=ServerLimits(grace=1), token=token, ssl_context=context,
        on_access=records.append,
    )  # fmt: skip
    await server.start()
    try:
        tls = client_context(str(certs.trusted_ca))
        client = await KeptClient.open(server.port_bound, get(b"hello.txt"), token, tls)
        client.send(get(b"sub/data.bin"), get(b"missing"), get(b"hello.txt", keep=False))
        answers = [await client.answer() for _ in range(4)]
        assert [a.head.status for a in answers if a] == [200, 200, 404, 200]
        assert answers[1] is not None
        assert answers[1].body == (root / "sub" / "data.bin").read_bytes()
        assert await client.eof()
        client.close()
        await wait_until(lambda: len(records) == 4, "four lines", PATIENCE)
        assert [r.outcome for r in records] == ["complete", "complete", "refused", "complete"]
    finally:
        await server.stop(grace=1)
