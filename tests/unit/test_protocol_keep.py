"""Persistent, pipelined connections (version 2 ``keep``), in memory, both state machines.

A client and a server object talk to each other without a socket, as in
h11's tests: the server answers a script of pipelined requests, the client
parses the whole stream back, whatever way TCP splits it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from getfile_core import auth, protocol
from getfile_core.errors import ProtocolError
from getfile_core.protocol import (
    MAX_SERVER_BUFFER,
    NEED_DATA,
    AuthProof,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Entry,
    HashProgress,
    Request,
    Response,
    ServerConnection,
    Status,
    Trailer,
    Verb,
)

DIGEST = "blake3:" + "cd" * 32
TOKEN = b"s3cret"
HYPOTHESIS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def get(path: bytes, keep: bool = True, **params: int) -> Request:
    return Request(Verb.GET, path, version=2, keep=keep, **params)


def listing(path: bytes, keep: bool = True) -> Request:
    return Request(Verb.LIST, path, version=2, keep=keep)


PING = Request(Verb.PING, b"", version=2, keep=True)


def events_of(conn: ClientConnection, limit: int = 10_000) -> list[object]:
    """Every event the client has ready now (it stops at NEED_DATA or the end)."""
    events: list[object] = []
    for _ in range(limit):
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if conn.state == "done" and isinstance(event, EndOfMessage | ConnectionClosed):
            return events
    raise AssertionError("client produced events without end")


# ---------------------------------------------------------------- the server's side of a script


def answer(server: ServerConnection, request: Request, body: bytes = b"") -> bytes:
    """What our server sends for one request of the script (bodies from the path's name)."""
    if request.verb is Verb.PING:
        return server.send(protocol.pong())
    if request.verb is Verb.LIST:
        page = protocol.encode_listing([Entry(b"x", "file", 1, 2)])
        wire = server.send(Response(Status.OK, size=len(page), entries=1))
        server.body_sent(len(page)) if server.state == "body" else None
        return wire + page
    if request.path == b"missing":
        return server.send(Response(Status.NOT_FOUND, "no such file"))
    trailer = request.path.startswith(b"t")
    head = Response(
        Status.OK,
        size=len(body),
        digest=None if trailer else DIGEST,
        trailer=trailer,
        offset=request.offset,
        length=request.length,
    )
    wire = server.send(head)
    sent = len(body) - request.offset if request.length is None else request.length
    wire += body[request.offset : request.offset + sent]
    if sent and server.state == "body":
        server.body_sent(sent)
    if trailer:
        wire += server.send_hash_progress(7) + server.send_trailer(Trailer(DIGEST))
    return wire


def serve_script(wire: bytes, bodies: dict[bytes, bytes], max_requests: int = 1000) -> bytes:
    """Answer every request in ``wire`` in order, as the server does; return what it sent."""
    server = ServerConnection(max_requests)
    server.receive_data(wire)
    server.receive_data(b"")
    out = bytearray()
    while True:
        event = server.next_event()
        if isinstance(event, ConnectionClosed):
            return bytes(out)
        assert isinstance(event, Request), event
        out += answer(server, event, bodies.get(event.path, b""))
        if server.state == "done":
            return bytes(out)


def client_for(requests: list[Request]) -> tuple[ClientConnection, bytes]:
    """A client that sent ``requests`` (the first alone, the rest pipelined after its head)."""
    client = ClientConnection(requests[0])
    client._allowance = 1000  # as if the first head had arrived (checked in its own test)
    wire = client.request_bytes() + b"".join(client.pipeline(r) for r in requests[1:])
    return client, wire


# ---------------------------------------------------------------- the wire


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (get(b"a b"), b"\x00getfile/2 GET a%20b keep=1\n"),
        (get(b"a", offset=3, length=2), b"\x00getfile/2 GET a offset=3 length=2 keep=1\n"),
        (listing(b"d"), b"\x00getfile/2 LIST d keep=1\n"),
        (PING, b"\x00getfile/2 PING keep=1\n"),
    ],
)
def test_keep_round_trips_byte_exact(request_: Request, wire: bytes) -> None:
    assert protocol.encode_request(request_) == wire
    assert protocol.parse_request_line(wire[:-1]) == request_


@pytest.mark.parametrize(
    "line",
    [
        b"\x00getfile/1 GET a keep=1",  # version 1 knows no keep
        b"\x00getfile/2 GET a keep=0",
        b"\x00getfile/2 GET a keep=yes",
        b"\x00getfile/2 GET a keep=1 keep=1",
        b"\x00getfile/2 PING keep=2",
        b"\x00getfile/2 PING keep=1 keep=1",
    ],
)
def test_bad_keep_parameters_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_request_line(line)


def test_encoders_refuse_keep_in_version_1() -> None:
    with pytest.raises(ProtocolError):
        protocol.encode_request(Request(Verb.GET, b"a", keep=True))
    with pytest.raises(ProtocolError):
        protocol.encode_response_head(Response(Status.OK, size=0, keep=3))


def test_the_keep_header_round_trips() -> None:
    head = protocol.encode_response_head(Response(Status.OK, size=0, version=2, keep=41))
    assert b"\nkeep: 41\n" in head
    assert protocol.parse_response_head(head[:-2]).keep == 41


def test_proof_subjects_never_collide() -> None:
    line = b"\x00getfile/2 GET a keep=1"
    assert protocol.proof_subject(0, line) == line  # the first request: as in version 1
    subjects = {protocol.proof_subject(n, line) for n in range(50)}
    assert len(subjects) == 50
    with pytest.raises(ProtocolError):
        protocol.proof_subject(-1, line)


# ---------------------------------------------------------------- conversations


def test_a_pipelined_conversation_in_memory() -> None:
    bodies = {b"a": b"A" * 10, b"tb": b"B" * 5, b"c": b"C" * 3}
    requests = [
        get(b"a"),
        listing(b"d"),
        get(b"missing"),
        get(b"tb"),
        PING,
        get(b"a", offset=4, length=3),
        get(b"c", keep=False),
    ]
    client, wire = client_for(requests)
    client.receive_data(serve_script(wire, bodies))
    events = []
    while not (events and isinstance(events[-1], EndOfMessage) and client.state == "done"):
        step = events_of(client)
        assert step, "the client stopped before the last answer"
        events += step
    heads = [e for e in events if isinstance(e, Response)]
    assert [h.status for h in heads] == [
        Status.OK,
        Status.OK,
        Status.NOT_FOUND,
        Status.OK,
        Status.OK,
        Status.OK,
        Status.OK,
    ]
    assert [h.keep for h in heads] == [999, 998, 997, 996, 995, 994, None]
    data = b"".join(e.data for e in events if isinstance(e, Data))
    listing_body = protocol.encode_listing([Entry(b"x", "file", 1, 2)])
    assert data == b"A" * 10 + listing_body + b"B" * 5 + b"AAA" + b"CCC"
    assert sum(isinstance(e, EndOfMessage) for e in events) == len(requests)
    assert [e for e in events if isinstance(e, Trailer | HashProgress)] == [
        HashProgress(7),
        Trailer(DIGEST),
    ]
    assert client.unanswered == [] and client.can_pipeline == 0


def test_pipelining_waits_for_the_first_head_and_its_keep() -> None:
    client = ClientConnection(get(b"a"))
    with pytest.raises(ProtocolError, match="no more requests"):
        client.pipeline(get(b"b"))  # no head yet: the server may want a token, or not keep
    server = ServerConnection(max_requests=3)
    server.receive_data(client.request_bytes())
    server.next_event()
    client.receive_data(server.send(Response(Status.OK, size=0, digest=DIGEST)))
    head = client.next_event()
    assert isinstance(head, Response) and head.keep == 2 and client.can_pipeline == 2
    client.pipeline(get(b"b"))
    client.pipeline(get(b"c"))
    assert client.can_pipeline == 0
    with pytest.raises(ProtocolError, match="no more requests"):
        client.pipeline(get(b"d"))


def test_the_request_quota_counts_down_and_closes() -> None:
    requests = [get(b"a"), get(b"a"), get(b"a"), get(b"a")]
    client, wire = client_for(requests)
    sent = serve_script(wire, {b"a": b"xy"}, max_requests=3)
    client.receive_data(sent)
    client.receive_data(b"")
    events = []
    for _ in range(5):
        events += events_of(client)
    assert [e.keep for e in events if isinstance(e, Response)] == [2, 1, 0]
    assert client.state == "done" and client.unanswered == [get(b"a")]


def test_a_client_that_ends_its_side_ends_the_connection_cleanly() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_request(get(b"a")))
    server.receive_data(b"")
    assert isinstance(server.next_event(), Request)
    server.send(Response(Status.NOT_FOUND, "no"))
    assert server.keeps_going
    assert server.next_event() == ConnectionClosed()
    assert server.state == "done"


def test_a_close_before_any_request_is_still_an_error() -> None:
    server = ServerConnection()
    server.receive_data(b"")
    with pytest.raises(ProtocolError):
        server.next_event()


def test_the_server_ending_an_idle_connection_leaves_the_rest_to_resend() -> None:
    client, wire = client_for([get(b"a"), get(b"b"), get(b"c")])
    server = ServerConnection()
    server.receive_data(wire[: len(protocol.encode_request(get(b"a")))])
    server.next_event()
    client.receive_data(server.send(Response(Status.OK, size=0, digest=DIGEST)))
    client.receive_data(b"")  # the server closed (its idle timeout, a stop)
    events = events_of(client) + events_of(client)
    assert events[-1] == ConnectionClosed()
    assert client.unanswered == [get(b"b"), get(b"c")]


def test_a_bad_request_ends_a_kept_connection() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_request(get(b"a")) + b"\x00getfile/2 GET %zz keep=1\n")
    server.next_event()
    first = server.send(Response(Status.NOT_FOUND, "no"))
    with pytest.raises(ProtocolError):
        server.next_event()
    failure = server.send_failure(Status.BAD_REQUEST, "malformed")
    assert server.state == "done" and b"keep" not in failure
    client, _ = client_for([get(b"a"), get(b"%zz"), get(b"c")])
    client.receive_data(first + failure)
    events = events_of(client) + events_of(client)
    assert [e.status for e in events if isinstance(e, Response)] == [404, 400]
    assert client.state == "done" and client.unanswered == [get(b"c")]


def test_only_extended_requests_follow_on_a_kept_connection() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_request(PING) + b"hello.txt\n")
    server.next_event()
    server.send(protocol.pong())
    with pytest.raises(ProtocolError, match="only extended"):
        server.next_event()


def test_a_server_reads_ahead_a_bounded_amount() -> None:
    server = ServerConnection()
    flood = protocol.encode_request(PING) * (MAX_SERVER_BUFFER // 20)
    server.receive_data(flood[:MAX_SERVER_BUFFER])
    with pytest.raises(ProtocolError, match="reads ahead"):
        server.receive_data(b"\x00")


@HYPOTHESIS
@given(count=st.integers(1, 20_000), read=st.integers(1, 64 * 1024))
def test_a_flood_of_pipelined_requests_is_parsed_in_bounded_memory(count: int, read: int) -> None:
    """Read as the server does (only when no whole request is buffered): any flood fits."""
    flood = memoryview(protocol.encode_request(PING) * count)
    server = ServerConnection(max_requests=count)
    answered, position = 0, 0
    while answered < count:
        event = server.next_event()
        if event is NEED_DATA:
            server.receive_data(bytes(flood[position : position + read]))
            position += read
            assert len(server._buffer) <= MAX_SERVER_BUFFER
            continue
        server.send(protocol.pong())
        answered += 1
    assert server.state == "done"


def test_client_refuses_keep_nobody_asked_for_and_unsolicited_bytes() -> None:
    client = ClientConnection(get(b"a", keep=False))
    client.receive_data(
        protocol.encode_response_head(Response(Status.OK, size=0, digest=DIGEST, version=2, keep=5))
    )
    with pytest.raises(ProtocolError, match="nobody asked"):
        client.next_event()
    client = ClientConnection(get(b"a"))
    head = Response(Status.OK, size=1, digest=DIGEST, version=2, keep=5)
    client.receive_data(protocol.encode_response_head(head) + b"x" + b"surprise")
    assert isinstance(client.next_event(), Response)
    assert client.next_event() == Data(b"x")
    assert client.next_event() == EndOfMessage()
    with pytest.raises(ProtocolError, match="nobody asked"):
        client.next_event()


def test_the_server_refuses_to_be_driven_out_of_order() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_request(get(b"a")) * 2)
    server.next_event()
    server.send(Response(Status.OK, size=4, digest=DIGEST))
    with pytest.raises(ProtocolError):
        server.next_event()  # the body is not out yet: no next request
    with pytest.raises(ProtocolError):
        server.body_sent(5)
    server.body_sent(4)
    assert isinstance(server.next_event(), Request)


# ---------------------------------------------------------------- token proofs


def prove(challenge: bytes, subject: bytes) -> bytes:
    return auth.compute_mac(TOKEN, challenge, subject)


def test_one_challenge_per_connection_and_a_proof_per_request() -> None:
    challenge = b"\x07" * 32
    client = ClientConnection(get(b"a"))
    server = ServerConnection()
    server.receive_data(client.request_bytes())
    server.next_event()
    client.receive_data(server.send(Response(Status.UNAUTHORIZED, "token", challenge=challenge)))
    assert isinstance(client.next_event(), Response) and client.state == "challenged"
    first = client.auth_bytes(prove(challenge, client.proof_subject()))
    assert client.can_pipeline  # the challenge head confirmed the connection is kept
    later = [
        client.pipeline(get(b"b"), prove),
        client.pipeline(PING),
        client.pipeline(get(b"c"), prove),
    ]
    server.receive_data(first + b"".join(later))
    seen: list[Request] = []
    for step in range(4):
        if step:  # every request after the first: its line, then (but PING) its proof
            request = server.next_event()
            assert isinstance(request, Request)
            seen.append(request)
        if server.state == "auth":
            proof = server.next_event()
            assert isinstance(proof, AuthProof)
            assert auth.verify(TOKEN, challenge, server.proof_subject(), proof.mac)
        assert server.state == "respond"
        assert isinstance(server.request, Request)
        is_ping = server.request.verb is Verb.PING
        server.send(protocol.pong() if is_ping else Response(Status.NOT_FOUND, "no"))
    assert [r.path for r in seen] == [b"b", b"", b"c"]
    assert [r.verb for r in seen] == [Verb.GET, Verb.PING, Verb.GET]


def test_a_proof_is_bound_to_its_place_on_the_connection() -> None:
    challenge = b"\x09" * 32
    line = protocol.encode_request(get(b"b"))[:-1]
    at_one = prove(challenge, protocol.proof_subject(1, line))
    assert auth.verify(TOKEN, challenge, protocol.proof_subject(1, line), at_one)
    assert not auth.verify(TOKEN, challenge, protocol.proof_subject(2, line), at_one)
    assert not auth.verify(TOKEN, b"\x0a" * 32, protocol.proof_subject(1, line), at_one)


def test_a_request_without_its_proof_is_refused() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_request(get(b"a")))
    server.next_event()
    server.send(Response(Status.UNAUTHORIZED, "token", challenge=b"\x01" * 32))
    server.receive_data(protocol.encode_auth(b"\x02" * 32, 2))
    assert isinstance(server.next_event(), AuthProof)
    server.send(Response(Status.NOT_FOUND, "no"))
    server.receive_data(protocol.encode_request(get(b"b")) + protocol.encode_request(get(b"c")))
    assert isinstance(server.next_event(), Request) and server.state == "auth"
    with pytest.raises(ProtocolError, match="expected AUTH"):
        server.next_event()


def test_a_client_cannot_pipeline_without_a_prover_once_challenged() -> None:
    client = ClientConnection(get(b"a"))
    head = Response(Status.UNAUTHORIZED, "t", challenge=b"\x01" * 32, version=2, keep=9)
    client.receive_data(protocol.encode_response_head(head))
    client.next_event()
    with pytest.raises(ProtocolError, match="challenge"):
        client.pipeline(get(b"b"), prove)  # it would reach the server before the first proof
    client.auth_bytes(b"\x00" * 32)
    with pytest.raises(ProtocolError, match="proof"):
        client.pipeline(get(b"b"))
    assert client.pipeline(PING).endswith(b"PING keep=1\n")  # PING never needs one


# ---------------------------------------------------------------- any split, any script

_script_requests = st.lists(
    st.sampled_from(
        [
            get(b"a"),
            get(b"ta"),
            get(b"a", offset=3),
            get(b"ta", offset=2, length=5),
            get(b"missing"),
            get(b"empty"),
            listing(b"d"),
            PING,
        ]
    ),
    min_size=1,
    max_size=12,
)


def pump(conn: ClientConnection, pieces: list[bytes]) -> list[object]:
    """Feed the pieces and the close; every event until the connection is over."""
    events: list[object] = []
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if conn.state == "done" and isinstance(event, EndOfMessage | ConnectionClosed):
                return events
    return events


def merged(events: list[object]) -> list[object]:
    """Adjacent ``Data`` events as one (how TCP splits the body is not the protocol's)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@HYPOTHESIS
@given(
    requests=_script_requests,
    last_keeps=st.booleans(),
    body=st.binary(min_size=10, max_size=300),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
)
def test_any_pipelined_script_survives_any_split(
    requests: list[Request], last_keeps: bool, body: bytes, cuts: list[int]
) -> None:
    requests[-1] = requests[-1].replace(keep=last_keeps)
    bodies = {b"a": body, b"ta": body, b"empty": b""}
    client, wire = client_for(requests)
    sent = serve_script(wire, bodies)
    # The reference: the whole stream in one piece.
    whole, _ = client_for(requests)
    expected = pump(whole, [sent])
    got = pump(client, _pieces(sent, cuts))
    assert merged(got) == merged(expected)
    assert sum(isinstance(e, EndOfMessage) for e in got) == len(requests)
    assert client.unanswered == []
    page = protocol.encode_listing([Entry(b"x", "file", 1, 2)])
    wanted = b""
    for r in requests:
        if r.verb is Verb.LIST:
            wanted += page
        elif r.verb is Verb.GET:
            data = bodies.get(r.path, b"")[r.offset :]
            wanted += data if r.length is None else data[: r.length]
    assert b"".join(e.data for e in got if isinstance(e, Data)) == wanted
    heads = [e for e in got if isinstance(e, Response)]
    assert [h.status == Status.NOT_FOUND for h in heads] == [r.path == b"missing" for r in requests]


_kept_fragments = st.sampled_from(
    [
        protocol.encode_request(get(b"a")),
        protocol.encode_request(get(b"a", keep=False)),
        protocol.encode_request(PING),
        protocol.encode_request(listing(b"d")),
        protocol.encode_auth(b"\x01" * 32, 2),
        b"legacy.txt\n",
        b"\x00getfile/2 GET a keep=7\n",
        b"\x00getfile/2 ",
        b"\x00getfile/3 PING\n",
        b"keep=1",
        b"\n",
        b"\x00",
        b"\xff" * 5,
    ]
)
_kept_tails = st.lists(st.one_of(_kept_fragments, st.binary(max_size=8)), max_size=40).map(b"".join)


@HYPOTHESIS
@given(tail=_kept_tails, cuts=st.lists(st.integers(0, 5000), max_size=12))
def test_a_kept_server_connection_survives_hostile_bytes(tail: bytes, cuts: list[int]) -> None:
    """After a kept answer, anything: only the protocol's error escapes, memory stays bounded."""
    server = ServerConnection(max_requests=50)
    server.receive_data(protocol.encode_request(get(b"first")))
    server.next_event()
    server.send(Response(Status.NOT_FOUND, "no"))
    pieces = iter([*_pieces(tail, cuts), b""])
    try:
        for _ in range(10_000):
            event = server.next_event()
            if event is NEED_DATA:
                server.receive_data(next(pieces))
            elif isinstance(event, ConnectionClosed) or server.state == "done":
                break
            else:
                assert isinstance(event, Request), event  # no proof can come: no challenge
                refusal = Response(Status.NOT_FOUND, "no")
                server.send(protocol.pong() if event.verb is Verb.PING else refusal)
            assert server.buffered <= MAX_SERVER_BUFFER
    except ProtocolError:
        pass
    assert server.sequence <= 50
