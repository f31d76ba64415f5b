"""Persistent, pipelined connections on a real server over loopback (version 2 ``keep``).

A raw client drives ``ClientConnection`` over asyncio streams: the first
request alone, then the rest pipelined without waiting, every answer read
back in order and compared with the files on disk.
"""

from __future__ import annotations

import asyncio
import os
import ssl as ssl_module
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from getfile_core import auth, protocol
from getfile_core.errors import ProtocolError
from getfile_core.protocol import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
    Status,
    Trailer,
    Verb,
)
from getfile_core.server.access import AccessRecord
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import PATIENCE, wait_until

TOKEN = b"pipelined-secret"
HUGE = 64 * 1024 * 1024


def get(path: bytes, keep: bool = True, **params: int) -> Request:
    return Request(Verb.GET, path, version=2, keep=keep, **params)


PING = Request(Verb.PING, b"", version=2, keep=True)


@dataclass
class Answer:
    head: Response
    body: bytes = b""
    trailer: Trailer | None = None


@dataclass
class KeptClient:
    """One kept connection: ``open`` sends the first request and reads its head."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: protocol.ClientConnection
    token: bytes | None = None
    pending_head: Response | None = None
    closed: bool = False
    answers: list[Answer] = field(default_factory=list)

    @classmethod
    async def open(
        cls,
        port: int,
        first: Request,
        token: bytes | None = None,
        ssl: ssl_module.SSLContext | None = None,
    ) -> KeptClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl)
        client = cls(reader, writer, protocol.ClientConnection(first), token)
        writer.write(client.conn.request_bytes())
        head = await client.next()
        assert isinstance(head, Response), head
        if client.conn.state == "challenged":
            assert token is not None
            mac = auth.compute_mac(token, client.conn.challenge, client.conn.proof_subject())
            writer.write(client.conn.auth_bytes(mac))
        else:
            client.pending_head = head
        return client

    def prove(self, challenge: bytes, subject: bytes) -> bytes:
        assert self.token is not None
        return auth.compute_mac(self.token, challenge, subject)

    def send(self, *requests: Request) -> None:
        self.writer.write(b"".join(self.conn.pipeline(r, self.prove) for r in requests))

    async def next(self) -> object:
        async with asyncio.timeout(PATIENCE):
            while (event := self.conn.next_event()) is protocol.NEED_DATA:
                self.conn.receive_data(await self.reader.read(256 * 1024))
        return event

    async def answer(self) -> Answer | None:
        """The next whole answer, or None once the server ended the connection."""
        head, self.pending_head = self.pending_head, None
        if head is None:
            event = await self.next()
            if isinstance(event, ConnectionClosed) or self.closed:
                self.closed = True
                return None
            assert isinstance(event, Response), event
            head = event
        answer = Answer(head)
        while not isinstance(event := await self.next(), EndOfMessage):
            if isinstance(event, Data):
                answer.body += event.data
            elif isinstance(event, Trailer):
                answer.trailer = event
        self.closed = self.conn.state == "done"
        self.answers.append(answer)
        return answer

    async def eof(self) -> bool:
        """Whether the server closed its side (bounded wait; the client reads nothing else)."""
        async with asyncio.timeout(PATIENCE):
            return await self.reader.read(1) == b""

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    (root / "d").mkdir(parents=True)
    for n in range(30):
        (root / "d" / f"f{n:02d}.bin").write_bytes(os.urandom(n * 997))
    (root / "big.bin").write_bytes(os.urandom(1024 * 1024))
    (root / "slow.bin").write_bytes(os.urandom(64 * 1024))
    with open(root / "huge.bin", "wb") as huge:
        huge.truncate(HUGE)  # sparse: costs no disk
    return root


@pytest.fixture
async def make_server(tree: Path) -> AsyncIterator:
    servers: list[FileServer] = []

    async def make(**limits: object) -> FileServer:
        token = limits.pop("token", None)
        records: list[AccessRecord] = []
        server = FileServer(
            tree,
            limits=ServerLimits(grace=1, **limits),  # type: ignore[arg-type]
            on_access=records.append,
            token=token,  # type: ignore[arg-type]
        )
        server.log = records  # type: ignore[attr-defined]
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop(grace=1)


# ---------------------------------------------------------------- answers, in order


async def test_pipelined_requests_are_answered_in_order(make_server, tree: Path) -> None:
    server = await make_server()
    names = [f"d/f{n:02d}.bin".encode() for n in range(30)]
    client = await KeptClient.open(server.port_bound, get(names[0]))
    assert client.pending_head is not None and client.pending_head.keep == 999
    client.send(
        *(get(name) for name in names[1:]),
        Request(Verb.LIST, b"d", version=2, keep=True),
        get(b"missing.bin"),
        PING,
        get(b"big.bin", offset=1000, length=5000),
        get(b"d", keep=True),  # a folder: 409, and the connection goes on
        get(names[7], keep=False),  # the last: the server closes after it
    )
    answers = [a for _ in range(36) if (a := await client.answer()) is not None]
    assert len(answers) == 36 and client.conn.state == "done"
    for name, answer in zip(names, answers[:30], strict=True):
        assert answer.head.status is Status.OK
        assert answer.body == (tree / os.fsdecode(name)).read_bytes()
    entries = protocol.decode_listing(answers[30].body, answers[30].head.entries or 0)
    assert [e.name for e in entries] == sorted(n.split(b"/")[1] for n in names)
    assert [a.head.status for a in answers[31:]] == [404, 200, 200, 409, 200]
    assert answers[33].body == (tree / "big.bin").read_bytes()[1000:6000]
    assert answers[35].head.keep is None
    assert [a.head.keep for a in answers[:35]] == list(range(999, 964, -1))
    assert await client.eof()
    client.close()
    await wait_until(lambda: len(server.log) == 35, "a log line per request", PATIENCE)
    outcomes = [(r.kind, r.status, r.outcome) for r in server.log]
    assert outcomes.count(("GET", "ok", "complete")) == 32
    assert ("GET", "not-found", "refused") in outcomes and ("LIST", "ok", "complete") in outcomes


async def test_a_request_without_keep_still_gets_one_answer_and_a_close(make_server) -> None:
    server = await make_server()
    client = await KeptClient.open(server.port_bound, get(b"d/f03.bin", keep=False))
    assert client.pending_head is not None and client.pending_head.keep is None
    assert (await client.answer()) is not None
    assert await client.eof()
    client.close()


# ---------------------------------------------------------------- how a connection ends


async def test_the_request_quota_ends_the_connection_and_no_answer_is_lost(make_server) -> None:
    server = await make_server(max_requests=3)
    client = await KeptClient.open(server.port_bound, get(b"d/f10.bin"))
    client.send(get(b"d/f11.bin"), get(b"huge.bin"))  # the quota: 3
    answers = [await client.answer(), await client.answer()]
    last_head = await client.next()
    assert isinstance(last_head, Response) and last_head.keep == 0
    # Many more requests the server will never answer, arriving after its last
    # read, while most of the last body is still to send: had the server
    # closed without reading them, the kernel's reset would drop the body's
    # tail from its send queue.
    client.writer.write(protocol.encode_request(get(b"d/f12.bin")) * 20_000)
    client.pending_head = last_head
    answers.append(await client.answer())
    assert [a.head.keep for a in answers if a] == [2, 1, 0]
    assert answers[2] is not None and len(answers[2].body) == HUGE
    assert await client.eof()
    client.close()


async def test_an_idle_kept_connection_is_closed_quietly(make_server) -> None:
    server = await make_server(request_timeout=0.3)
    client = await KeptClient.open(server.port_bound, get(b"d/f05.bin"))
    assert await client.answer() is not None
    assert await client.eof()  # nothing asked for request_timeout: the server ends it
    client.close()
    await wait_until(lambda: server.connections == 0, "the handler to end", PATIENCE)
    assert [(r.status, r.outcome) for r in server.log] == [("ok", "complete")]


async def test_a_half_close_ends_the_connection_after_the_last_answer(make_server) -> None:
    server = await make_server()
    client = await KeptClient.open(server.port_bound, get(b"d/f01.bin"))
    client.send(get(b"d/f02.bin"), PING, get(b"d/f04.bin"))
    client.writer.write_eof()
    answers = [await client.answer() for _ in range(4)]
    assert all(a is not None and a.head.status is Status.OK for a in answers)
    assert await client.answer() is None and client.conn.unanswered == []
    client.close()
    await wait_until(lambda: len(server.log) == 3, "three GET lines", PATIENCE)
    assert all(r.outcome == "complete" for r in server.log)


async def test_a_malformed_request_ends_a_kept_connection(make_server) -> None:
    server = await make_server()
    client = await KeptClient.open(server.port_bound, get(b"d/f01.bin"))
    client.writer.write(b"\x00getfile/2 GET %zz keep=1\n")
    client.conn.queued.append(get(b"%zz"))  # what the client believes it sent
    client.send(get(b"d/f02.bin"))
    first, second = await client.answer(), await client.answer()
    assert first is not None and first.head.status is Status.OK
    assert second is not None and second.head.status is Status.BAD_REQUEST
    assert client.conn.state == "done" and client.conn.unanswered == [get(b"d/f02.bin")]
    assert await client.eof()
    client.close()


async def test_stop_ends_idle_kept_connections_at_once(make_server) -> None:
    server = await make_server(request_timeout=60)
    client = await KeptClient.open(server.port_bound, get(b"d/f01.bin"))
    assert await client.answer() is not None
    await wait_until(lambda: len(server.log) == 1, "the first line", PATIENCE)
    # Idle kept connections are cut at once, not after the 60 s grace.
    await asyncio.wait_for(server.stop(grace=60), PATIENCE)
    assert await client.eof()
    client.close()
    assert len(server.log) == 1  # the idle end is not a line


# ---------------------------------------------------------------- slots and stalls


async def test_a_slot_is_held_per_answer_not_per_connection(make_server) -> None:
    """One slot; A queues twenty rate-limited files, B asks for one: B does not wait for A's."""
    server = await make_server(max_transfers=1, rate=256 * 1024)
    a = await KeptClient.open(server.port_bound, get(b"slow.bin"))
    a.send(*(get(b"slow.bin") for _ in range(19)))
    reading_a = asyncio.ensure_future(_read_answers(a, 20))
    await wait_until(lambda: server.active_transfers == 1, "A sending", PATIENCE)
    b = await KeptClient.open(server.port_bound, get(b"slow.bin", keep=False))
    answer_b = await b.answer()
    assert answer_b is not None and answer_b.head.status is Status.OK
    assert len(a.answers) < 19, "B waited for A's whole queue"
    answers_a = await asyncio.wait_for(reading_a, PATIENCE * 3)
    assert [x.head.status for x in answers_a] == [Status.OK] * 20
    a.close()
    b.close()


async def _read_answers(client: KeptClient, count: int) -> list[Answer]:
    return [a for _ in range(count) if (a := await client.answer()) is not None]


async def test_a_long_pipeline_does_not_hold_the_event_loop(make_server) -> None:
    """Answers from the page cache never suspend; the server must still let others in."""
    server = await make_server()
    a = await KeptClient.open(server.port_bound, get(b"d/f00.bin"))
    a.send(*(get(b"d/f00.bin") for _ in range(999)))  # tiny answers: nothing ever blocks
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
    writer.write(protocol.encode_request(Request(Verb.PING, b"", version=2)))
    async with asyncio.timeout(PATIENCE):
        pong = await reader.read()
    answered_for_a = len(server.log)
    assert pong == protocol.encode_response_head(protocol.pong())
    assert answered_for_a < 900, "the PING waited for the whole pipeline"
    assert len(await _read_answers(a, 1000)) == 1000
    writer.close()
    a.close()


async def test_a_client_that_pipelines_without_reading_is_cut(make_server) -> None:
    server = await make_server(stall_timeout=1.0)
    client = await KeptClient.open(server.port_bound, get(b"big.bin"))
    client.send(*(get(b"big.bin") for _ in range(200)))  # 200 MiB asked, never read
    await wait_until(
        lambda: any(r.outcome == "stalled" for r in server.log), "a stalled line", PATIENCE
    )
    await wait_until(lambda: server.connections == 0, "the connection cut", PATIENCE)
    assert server.active_transfers == 0
    client.writer.transport.abort()


async def test_a_flood_of_tiny_pipelined_requests_is_bounded_in_memory(
    make_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a million PINGs (12 MB) on one connection; the server never holds more than a read."""
    peak = 0
    refused: list[Exception] = []
    receive = protocol.ServerConnection.receive_data

    def measured(self: protocol.ServerConnection, data: bytes) -> None:
        nonlocal peak
        try:
            receive(self, data)
        except ProtocolError as error:  # the server read further ahead than it may
            refused.append(error)
            raise
        peak = max(peak, len(self._buffer))

    monkeypatch.setattr(protocol.ServerConnection, "receive_data", measured)
    count = 500_000
    server = await make_server(max_requests=count, stall_timeout=1.0)
    client = await KeptClient.open(server.port_bound, PING)
    flood = protocol.encode_request(PING) * (count - 1)
    client.writer.write(flood)  # the client never reads: its pongs pile up, then it is cut
    await wait_until(lambda: server.connections == 0, "the flooder cut", PATIENCE * 2)
    assert 0 < peak <= protocol.MAX_SERVER_BUFFER and not refused
    client.writer.transport.abort()


# ---------------------------------------------------------------- tokens


async def test_one_challenge_per_connection_and_a_proof_per_request(make_server, tree) -> None:
    server = await make_server(token=TOKEN)
    client = await KeptClient.open(server.port_bound, get(b"d/f01.bin"), token=TOKEN)
    client.send(get(b"d/f02.bin"), PING, get(b"d/f03.bin", keep=False))
    answers = [await client.answer() for _ in range(4)]
    assert [a.head.status for a in answers if a] == [200, 200, 200, 200]
    assert answers[3] is not None and answers[3].body == (tree / "d/f03.bin").read_bytes()
    assert await client.eof()
    client.close()


async def test_a_proof_replayed_at_another_place_is_refused(make_server) -> None:
    server = await make_server(token=TOKEN)
    client = await KeptClient.open(server.port_bound, get(b"d/f01.bin"), token=TOKEN)
    line = protocol.encode_request(get(b"d/f02.bin"))
    assert client.conn.challenge is not None
    proof_for_place_1 = auth.compute_mac(
        TOKEN, client.conn.challenge, protocol.proof_subject(1, line[:-1])
    )
    client.send(get(b"d/f02.bin"))  # place 1, proved honestly
    client.writer.write(line + protocol.encode_auth(proof_for_place_1, 2))  # place 2: a replay
    client.conn.queued.append(get(b"d/f02.bin"))
    answers = [await client.answer() for _ in range(3)]
    assert [a.head.status for a in answers if a] == [200, 200, 401]
    assert await client.eof()
    client.close()
    await wait_until(lambda: len(server.log) == 3, "three lines", PATIENCE)
    assert server.log[-1].status == "unauthorized" and "wrong token" in server.log[-1].note


async def test_a_request_whose_proof_never_comes_is_logged_not_taken_for_idle(make_server) -> None:
    server = await make_server(token=TOKEN, request_timeout=0.5)
    client = await KeptClient.open(server.port_bound, get(b"d/f01.bin"), token=TOKEN)
    assert await client.answer() is not None
    client.writer.write(protocol.encode_request(get(b"d/f02.bin")))  # and no AUTH line
    assert await client.eof()
    client.close()
    await wait_until(lambda: len(server.log) == 2, "a line for the second", PATIENCE)
    assert server.log[1].path == "d/f02.bin" and server.log[1].note == "timed out"
