"""The pure wire format, in memory: encoders, parsers and both state machines.

As in h11, client and server connections talk to each other here without a
socket; the hypothesis tests feed hostile bytes in hostile pieces and check
that only the protocol's own error escapes and that no buffer grows without
bound.
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from getfile_core import protocol
from getfile_core.cli.exit_codes import exit_code_for
from getfile_core.errors import GetfileError, ProtocolError
from getfile_core.protocol import (
    MAX_HEAD,
    MAX_LEGACY_LINE,
    MAX_LIST_ENTRIES,
    MAX_REQUEST_LINE,
    NEED_DATA,
    AuthProof,
    ClientConnection,
    Data,
    EndOfMessage,
    Entry,
    LegacyRequest,
    LegacySilence,
    Request,
    Response,
    ServerConnection,
    ShortBody,
    Status,
    UnsupportedVersion,
    Verb,
)
from tests.support.pair import ConnectionPair, drain

DIGEST = "blake3:" + "ab" * 32


def server_receives(data: bytes) -> Request | LegacyRequest | AuthProof:
    conn = ServerConnection()
    conn.receive_data(data)
    event = conn.next_event()
    assert event is not NEED_DATA
    return event  # type: ignore[return-value]


# ---------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (Request(Verb.GET, b"hello.txt"), b"\x00getfile/1 GET hello.txt\n"),
        (Request(Verb.GET, b"a b/c%d.bin"), b"\x00getfile/1 GET a%20b/c%25d.bin\n"),
        (Request(Verb.GET, b"big.iso", offset=12345), b"\x00getfile/1 GET big.iso offset=12345\n"),
        (Request(Verb.GET, b"/abs/\xff\xfe"), b"\x00getfile/1 GET /abs/%FF%FE\n"),
        (Request(Verb.LIST, b"."), b"\x00getfile/1 LIST .\n"),
        (
            Request(Verb.LIST, b"docs", after=b"m n", limit=7),
            b"\x00getfile/1 LIST docs after=m%20n limit=7\n",
        ),
        (Request(Verb.LIST, b"docs", after=b"z"), b"\x00getfile/1 LIST docs after=z\n"),
    ],
)
def test_request_round_trips_byte_exact(request_: Request, wire: bytes) -> None:
    assert protocol.encode_request(request_) == wire
    assert server_receives(wire) == request_


def test_request_paths_of_every_byte_round_trip() -> None:
    path = bytes(b for b in range(1, 256) if b != 0)
    line = protocol.encode_request(Request(Verb.GET, path))
    assert b"\n" not in line[:-1] and b" " not in line[:-1].split(b" ", 2)[2]
    assert server_receives(line) == Request(Verb.GET, path)


def test_auth_round_trip() -> None:
    mac = bytes(range(32))
    line = protocol.encode_auth(mac)
    assert line == b"\x00getfile/1 AUTH " + mac.hex().encode() + b"\n"
    assert protocol.parse_request_line(line[:-1]) == AuthProof(mac)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"hello", ProtocolError),
        (b"\x00getfile/x GET a", ProtocolError),
        (b"\x00getfile/0 GET a", ProtocolError),
        (b"\x00getfile/3 GET a", UnsupportedVersion),
        (b"\x00getfile/1", ProtocolError),
        (b"\x00getfile/1 PUT a", ProtocolError),
        (b"\x00getfile/1 GET", ProtocolError),
        (b"\x00getfile/1 GET a%zz", ProtocolError),
        (b"\x00getfile/1 GET a%2", ProtocolError),
        (b"\x00getfile/1 GET a\x01b", ProtocolError),
        (b"\x00getfile/1 GET a offset=-1", ProtocolError),
        (b"\x00getfile/1 GET a offset=1 offset=2", ProtocolError),
        (b"\x00getfile/1 GET a offset=99999999999999999999", ProtocolError),
        (b"\x00getfile/1 GET a limit=3", ProtocolError),
        (b"\x00getfile/1 GET a offset", ProtocolError),
        (b"\x00getfile/1 LIST a limit=0", ProtocolError),
        (b"\x00getfile/1 LIST a limit=1001", ProtocolError),
        (b"\x00getfile/1 LIST a offset=3", ProtocolError),
        (b"\x00getfile/1 AUTH 00", ProtocolError),
        (b"\x00getfile/1 AUTH " + b"AB" * 32, ProtocolError),
    ],
)
def test_bad_request_lines_are_refused(line: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        protocol.parse_request_line(line)


def test_unsupported_version_carries_the_version() -> None:
    with pytest.raises(UnsupportedVersion) as caught:
        protocol.parse_request_line(b"\x00getfile/7 GET a")
    assert caught.value.version == 7
    assert isinstance(caught.value, ProtocolError)


def test_encoders_refuse_what_they_cannot_frame() -> None:
    with pytest.raises(ProtocolError):
        protocol.encode_request(Request(Verb.GET, b"\x01" * MAX_REQUEST_LINE))
    with pytest.raises(ProtocolError):
        protocol.encode_legacy_request(b"a\nb")
    with pytest.raises(ProtocolError):
        protocol.encode_legacy_request(b"a\x00b")


def test_the_protocol_error_is_a_getfile_error_with_its_exit_code() -> None:
    assert issubclass(ProtocolError, GetfileError)
    assert exit_code_for(ProtocolError("x")) == 11


# ---------------------------------------------------------------- responses


def _response_for(status: Status) -> Response:
    if status is Status.OK:
        return Response(status, size=10, mtime_ns=1_000_000_001, digest=DIGEST)
    return Response(status, message=f"{status.token} because of reasons")


@pytest.mark.parametrize("status", list(Status))
def test_every_status_round_trips(status: Status) -> None:
    response = _response_for(status)
    head = protocol.encode_response_head(response)
    assert head.startswith(f"getfile/1 {int(status)} {status.token}\n".encode())
    assert head.endswith(b"\n\n")
    assert protocol.parse_response_head(head[:-2]) == response


def test_a_response_with_every_field_round_trips() -> None:
    response = Response(
        Status.OK,
        message="fine",
        size=2000,
        mtime_ns=1_234_567_890_123_456_789,
        digest=DIGEST,
        offset=100,
        challenge=bytes(range(32)),
        entries=3,
        next_after=b"na me\xff",
        extra={"x-later": "a feature of version 1.1"},
    )
    head = protocol.encode_response_head(response)
    assert protocol.parse_response_head(head[:-2]) == response


def test_a_message_cannot_inject_headers() -> None:
    response = Response(Status.NOT_FOUND, message="gone\nsize: 5\r\n\x1b[2J")
    parsed = protocol.parse_response_head(protocol.encode_response_head(response)[:-2])
    assert parsed.size is None
    assert "\n" not in parsed.message and "\x1b" not in parsed.message


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"HTTP/1.1 200 OK",
        b"getfile/3 200 ok\nsize: 1",
        b"getfile/1 299 ok\nsize: 1",
        b"getfile/1 200 not-found\nsize: 1",
        b"getfile/1 200 ok",
        b"getfile/1 200 ok\nsize: -1",
        b"getfile/1 200 ok\nsize: 1\nsize: 2",
        b"getfile/1 200 ok\nSize: 1",
        b"getfile/1 200 ok\nsize:1",
        b"getfile/1 200 ok\nsize: 1\noffset: 2",
        b"getfile/1 200 ok\nsize: 1\ndigest: md5",
        b"getfile/1 200 ok\nsize: 1\nmtime: 12",
        b"getfile/1 200 ok\nsize: 1\nchallenge: zz",
        b"getfile/1 200 ok\nsize: 1\nentries: 1001",
        b"getfile/1 200 ok\nsize: 2000000\nentries: 1",
        b"getfile/1 200 ok\nsize: 1\nnext: a%zz",
        b"getfile/1 404 not-found\nmessage: a\x07b",
        b"getfile/1 200 ok\nsize: \xff",
        b"getfile/1 200 ok\n" + b"x-a: b\n" * 70 + b"size: 1",
    ],
)
def test_bad_response_heads_are_refused(head: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_response_head(head)


def test_body_length_depends_on_status_and_kind() -> None:
    assert Response(Status.OK, size=10, offset=4).body_length == 6
    assert Response(Status.OK, size=10, entries=2).body_length == 10
    assert Response(Status.NOT_FOUND, size=10).body_length == 0


# ---------------------------------------------------------------- conversations in memory


def test_get_conversation_in_memory() -> None:
    body = b"0123456789" * 100
    pair = ConnectionPair.asking(Request(Verb.GET, b"dir/file.bin"))
    assert pair.send_request() == Request(Verb.GET, b"dir/file.bin")
    assert pair.server.is_extended
    client, server = pair.client, pair.server
    head = server.send(Response(Status.OK, size=len(body), digest=DIGEST))
    assert server.state == "done"
    client.receive_data(head + body[:10])
    assert isinstance(client.next_event(), Response)
    assert client.state == "body" and client.body_remaining == len(body)
    assert client.next_event() == Data(body[:10])
    assert pair.to_client(body[10:]) == [Data(body[10:]), EndOfMessage()]
    assert pair.close_server_side() == [EndOfMessage()]


def test_resumed_get_conversation_in_memory() -> None:
    body = bytes(range(256))
    pair = ConnectionPair.asking(Request(Verb.GET, b"f", offset=200))
    request = pair.send_request()
    assert isinstance(request, Request) and request.offset == 200
    events = pair.respond(Response(Status.OK, size=256, offset=200), body[200:])
    assert isinstance(events[0], Response) and events[0].offset == 200
    assert events[1:] == [Data(body[200:]), EndOfMessage()]


def test_list_conversation_in_memory() -> None:
    entries = [
        Entry(b"a file", "file", 12, 1_000_000_000),
        Entry(b"sub", "dir", 0, 2),
        Entry(b"\xffodd", "other", 0, 3),
    ]
    body = protocol.encode_listing(entries)
    pair = ConnectionPair.asking(Request(Verb.LIST, b"docs", after=b"0", limit=3))
    assert pair.send_request() == Request(Verb.LIST, b"docs", after=b"0", limit=3)
    response, data, end = pair.respond(
        Response(Status.OK, size=len(body), entries=len(entries), next_after=b"\xffodd"), body
    )
    assert isinstance(response, Response) and response.next_after == b"\xffodd"
    assert isinstance(data, Data) and isinstance(end, EndOfMessage)
    assert protocol.decode_listing(data.data, response.entries or 0) == entries


def test_refusal_conversation_has_no_body() -> None:
    pair = ConnectionPair.asking(Request(Verb.GET, b"missing"))
    pair.send_request()
    response, end = pair.respond(Response(Status.NOT_FOUND, "no such file"))
    assert isinstance(response, Response) and response.status is Status.NOT_FOUND
    assert isinstance(end, EndOfMessage) and pair.client.state == "done"


def test_auth_conversation_in_memory() -> None:
    pair = ConnectionPair.asking(Request(Verb.GET, b"secret.txt"))
    pair.send_request()
    challenge = b"\x01" * 32
    [response] = pair.respond(Response(Status.UNAUTHORIZED, "token", challenge=challenge))
    assert pair.server.state == "auth"
    assert isinstance(response, Response) and response.challenge == challenge
    assert pair.client.state == "challenged"
    assert pair.to_server(pair.client.auth_bytes(b"\x02" * 32)) == AuthProof(b"\x02" * 32)
    assert pair.server.request_line == b"\x00getfile/1 GET secret.txt"
    assert [type(e) for e in pair.respond(Response(Status.OK, size=0))] == [
        Response,
        EndOfMessage,
    ]


def test_auth_out_of_turn_is_refused() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_auth(b"\x00" * 32))
    with pytest.raises(ProtocolError):
        server.next_event()
    client = ClientConnection(Request(Verb.GET, b"f"))
    with pytest.raises(ProtocolError):
        client.auth_bytes(b"\x00" * 32)
    server = ServerConnection()
    server.receive_data(b"\x00getfile/1 GET f\n")
    server.next_event()
    server.send(Response(Status.UNAUTHORIZED, challenge=b"\x01" * 32))
    server.receive_data(b"\x00getfile/1 GET g\n")
    with pytest.raises(ProtocolError):
        server.next_event()


def test_server_refuses_a_second_response_and_events_after_the_request() -> None:
    server = ServerConnection()
    server.receive_data(b"\x00getfile/1 GET f\n\x00getfile/1 GET g\n")
    server.next_event()
    with pytest.raises(ProtocolError):
        server.next_event()
    server.send(Response(Status.NOT_FOUND))
    with pytest.raises(ProtocolError):
        server.send(Response(Status.NOT_FOUND))


def test_client_refuses_an_answer_to_another_request() -> None:
    client = ClientConnection(Request(Verb.GET, b"f", offset=5))
    client.receive_data(protocol.encode_response_head(Response(Status.OK, size=10)))
    with pytest.raises(ProtocolError):
        client.next_event()
    client = ClientConnection(Request(Verb.GET, b"f"))
    client.receive_data(protocol.encode_response_head(Response(Status.OK, size=10, entries=1)))
    with pytest.raises(ProtocolError):
        client.next_event()
    client = ClientConnection(Request(Verb.LIST, b"d"))
    client.receive_data(protocol.encode_response_head(Response(Status.OK, size=10)))
    with pytest.raises(ProtocolError):
        client.next_event()


# ---------------------------------------------------------------- legacy requests


@pytest.mark.parametrize(
    ("wire", "path"),
    [
        (b"f\n", b"f"),
        (b"f\r\n", b"f"),
        (b"dir/some file.txt\n", b"dir/some file.txt"),
        (b"/etc/passwd\n", b"/etc/passwd"),
        (b"caf\xe9\n", b"caf\xe9"),
    ],
)
def test_legacy_requests_parse(wire: bytes, path: bytes) -> None:
    server = ServerConnection()
    for byte in wire:  # one byte at a time, as a slow client would send it
        assert server.next_event() is NEED_DATA
        server.receive_data(bytes([byte]))
    assert server.next_event() == LegacyRequest(path)
    assert not server.is_extended
    with pytest.raises(ProtocolError):  # the book's protocol has no head to send
        server.send(Response(Status.OK, size=1))


def test_an_empty_legacy_line_then_a_nul_stays_a_legacy_peer() -> None:
    """The first byte decides the dialect: a legacy peer is never answered in getfile/1 format.

    Found by tests/hardening/test_request_fuzz.py (payload ``b"\\n\\x00"``): once the empty
    legacy line was taken, the NUL left in the buffer made the connection look extended.
    """
    conn = ServerConnection()
    conn.receive_data(b"\n\x00")
    with pytest.raises(ProtocolError, match="empty request"):
        conn.next_event()
    assert not conn.is_extended


def test_legacy_request_line_is_bounded() -> None:
    longest = b"x" * (MAX_LEGACY_LINE - 1) + b"\n"
    assert server_receives(longest) == LegacyRequest(longest[:-1])
    server = ServerConnection()
    server.receive_data(b"x" * (MAX_LEGACY_LINE - 1))
    assert server.next_event() is NEED_DATA
    server.receive_data(b"x")
    with pytest.raises(ProtocolError):
        server.next_event()


def test_extended_request_line_is_bounded() -> None:
    server = ServerConnection()
    server.receive_data(b"\x00getfile/1 GET " + b"a" * (MAX_REQUEST_LINE - 20))
    assert server.next_event() is NEED_DATA
    server.receive_data(b"a" * 100)
    with pytest.raises(ProtocolError):
        server.next_event()


@pytest.mark.parametrize(
    "wire",
    [b"\n", b"\r\n", b"\x00http\n", b"\x00GET / HTTP/1.0\n"],
)
def test_malformed_first_lines_are_refused(wire: bytes) -> None:
    server = ServerConnection()
    server.receive_data(wire)
    with pytest.raises(ProtocolError):
        server.next_event()


@pytest.mark.parametrize("partial", [b"", b"f", b"\x00getfile/1 GET f"])
def test_close_before_a_whole_request_is_refused(partial: bytes) -> None:
    server = ServerConnection()
    if partial:
        server.receive_data(partial)
    server.receive_data(b"")
    with pytest.raises(ProtocolError):
        server.next_event()


def test_data_after_close_is_refused() -> None:
    server = ServerConnection()
    server.receive_data(b"")
    with pytest.raises(ProtocolError):
        server.receive_data(b"x")


def test_legacy_client_frames_until_close() -> None:
    client = ClientConnection(LegacyRequest(b"dir/f"))
    assert client.request_bytes() == b"dir/f\n"
    assert client.state == "body" and client.body_remaining is None
    assert client.next_event() is NEED_DATA
    client.receive_data(b"abc")
    assert client.next_event() == Data(b"abc")
    client.receive_data(b"def")
    client.receive_data(b"")
    assert drain(client) == [Data(b"def"), EndOfMessage()]


# ---------------------------------------------------------------- body framing


def _client_in_body(size: int) -> ClientConnection:
    client = ClientConnection(Request(Verb.GET, b"f"))
    client.receive_data(protocol.encode_response_head(Response(Status.OK, size=size)))
    assert isinstance(client.next_event(), Response)
    return client


def test_exact_body_ends_the_message() -> None:
    client = _client_in_body(6)
    client.receive_data(b"abc")
    client.receive_data(b"def")
    assert drain(client) == [Data(b"abcdef"), EndOfMessage()]
    assert client.state == "done" and client.body_remaining == 0


def test_zero_byte_body_ends_at_once() -> None:
    client = _client_in_body(0)
    assert client.next_event() == EndOfMessage()


def test_short_body_is_a_short_body_error() -> None:
    client = _client_in_body(10)
    client.receive_data(b"abcd")
    assert client.next_event() == Data(b"abcd")
    client.receive_data(b"")
    with pytest.raises(ShortBody) as caught:
        client.next_event()
    assert caught.value.missing == 6
    assert isinstance(caught.value, ProtocolError)


@pytest.mark.parametrize("split", [True, False])
def test_extra_bytes_are_a_protocol_error(split: bool) -> None:
    client = _client_in_body(3)
    if split:
        client.receive_data(b"abc")
        assert drain(client) == [Data(b"abc"), EndOfMessage()]
        client.receive_data(b"X")
    else:
        client.receive_data(b"abcX")
    with pytest.raises(ProtocolError):
        drain(client)


def test_zero_copy_accounting() -> None:
    body = b"0123456789"
    client = ClientConnection(Request(Verb.GET, b"f"))
    client.receive_data(protocol.encode_response_head(Response(Status.OK, size=10)) + body[:4])
    assert isinstance(client.next_event(), Response)
    assert client.take_buffered() == body[:4]
    assert client.body_remaining == 6
    client.consume_body(6)
    assert client.body_remaining == 0
    with pytest.raises(ProtocolError):
        client.consume_body(1)


def test_silence_means_a_legacy_server() -> None:
    client = ClientConnection(Request(Verb.GET, b"f"))
    client.receive_data(b"")
    with pytest.raises(LegacySilence):
        client.next_event()


def test_a_cut_head_is_not_mistaken_for_silence() -> None:
    client = ClientConnection(Request(Verb.GET, b"f"))
    client.receive_data(b"getfile/1 200 ok\nsi")
    client.receive_data(b"")
    with pytest.raises(ProtocolError) as caught:
        client.next_event()
    assert not isinstance(caught.value, LegacySilence)


def test_response_head_is_bounded() -> None:
    client = ClientConnection(Request(Verb.GET, b"f"))
    client.receive_data(b"getfile/1 200 ok\n" + b"x" * (MAX_HEAD - 100))
    assert client.next_event() is NEED_DATA
    client.receive_data(b"x" * 100)
    with pytest.raises(ProtocolError):
        client.next_event()


# ---------------------------------------------------------------- listings


def test_listing_round_trips_odd_names() -> None:
    entries = [
        Entry(b"plain.txt", "file", 0, 0),
        Entry(b"with space and %", "file", 2**40, 1_700_000_000_123_456_789),
        Entry(b"\xff\xfe not utf-8", "other", 0, 5),
        Entry(b"new\nline", "file", 1, 1),
        Entry(b"x" * 255, "dir", 0, 1),
    ]
    body = protocol.encode_listing(entries)
    assert body.count(b"\n") == len(entries)
    assert protocol.decode_listing(body, len(entries)) == entries
    assert protocol.decode_listing(b"", 0) == []


@pytest.mark.parametrize(
    "name",
    [b"../etc", b"..", b".", b"a/b", b"/abs", b"nul\x00byte", b"x" * 256],
)
def test_listing_refuses_names_that_are_not_plain(name: bytes) -> None:
    body = b"file 1 1 " + protocol.encode_path(name) + b"\n"
    with pytest.raises(ProtocolError):
        protocol.decode_listing(body, 1)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"file 1 1 a", 1),
        (b"file 1 1 a\n", 2),
        (b"file 1 1 a\nfile 1 1 b\n", 1),
        (b"link 1 1 a\n", 1),
        (b"file -1 1 a\n", 1),
        (b"file 1 1\n", 1),
        (b"file 1 1 a b\n", 1),
        (b"file 1 1 \n", 1),
        (b"file 1 1 a%2Fb\n", 1),
    ],
)
def test_listing_refuses_malformed_bodies(body: bytes, expected: int) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_listing(body, expected)


# ---------------------------------------------------------------- hypothesis: hostile bytes

_fragments = st.sampled_from(
    [
        b"\x00getfile/1 ",
        b"\x00getfile/2 ",
        b"PING",
        b"length=",
        b"getfile/2 200 ok\n",
        b"trailer: digest\n",
        b"length: 2\n",
        b"hashed: 7\n",
        b"error: gone\n",
        b"GET ",
        b"LIST ",
        b"AUTH ",
        b"offset=",
        b"after=",
        b"limit=",
        b"%",
        b"%2F",
        b"..",
        b"/",
        b"\n",
        b"\r\n",
        b"\n\n",
        b"getfile/1 200 ok\n",
        b"getfile/1 401 unauthorized\nchallenge: " + b"ab" * 32 + b"\n\n",
        b"size: 5\n",
        b"size: 99999999999\n",
        b"offset: 3\n",
        b"entries: 2\n",
        b"digest: " + DIGEST.encode() + b"\n",
        b"file 1 1 a\n",
        b"0",
        b"9",
        b"\x00",
        b"\xff",
    ]
)
_stitched = st.lists(st.one_of(_fragments, st.binary(max_size=8)), max_size=30).map(b"".join)
_valid_requests = st.builds(
    protocol.encode_request,
    st.one_of(
        st.builds(
            Request,
            verb=st.sampled_from([Verb.GET, Verb.LIST]),
            path=st.binary(min_size=1, max_size=40),
            offset=st.integers(0, 2**40),
        ),
        st.builds(
            Request,
            verb=st.just(Verb.GET),
            path=st.binary(min_size=1, max_size=40),
            offset=st.integers(0, 2**40),
            version=st.just(2),
            length=st.none() | st.integers(0, 2**40),
        ),
        st.just(Request(Verb.PING, b"", version=2)),
    ),
)
_repeated = st.builds(
    lambda chunk, n: chunk * n, st.binary(min_size=1, max_size=4), st.integers(1, 6000)
)
hostile_bytes = st.one_of(
    st.binary(max_size=300),
    _stitched,
    _valid_requests,
    st.tuples(_valid_requests, st.binary(max_size=50)).map(b"".join),
    _repeated,
)

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _pump_server(conn: ServerConnection, pieces: list[bytes]) -> None:
    """Drive the server as ``server.py`` does: feed, read events until it needs more."""
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        for _ in range(4):
            event = conn.next_event()
            if event is NEED_DATA:
                limit = MAX_LEGACY_LINE if not conn.is_extended else MAX_REQUEST_LINE
                assert len(conn._buffer) < limit, "server hoards a line past its bound"
                break
            if isinstance(event, Request) and conn.state == "respond":
                return  # a request in hand: the server stops reading and answers
            if isinstance(event, LegacyRequest | AuthProof):
                return
        if conn._eof:
            return


@HYPOTHESIS
@given(data=hostile_bytes, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_server_connection_survives_hostile_bytes(data: bytes, cuts: list[int]) -> None:
    conn = ServerConnection()
    with contextlib.suppress(ProtocolError):
        _pump_server(conn, _pieces(data, cuts))
    assert len(conn._buffer) <= len(data)


_client_requests = st.sampled_from(
    [
        Request(Verb.GET, b"f"),
        Request(Verb.GET, b"f", offset=3),
        Request(Verb.LIST, b"d"),
        Request(Verb.LIST, b"d", after=b"a", limit=2),
        LegacyRequest(b"f"),
        Request(Verb.GET, b"f", version=2),
        Request(Verb.GET, b"f", offset=3, length=2, version=2),
        Request(Verb.PING, b"", version=2),
    ]
)


def _pump_client(conn: ClientConnection, pieces: list[bytes]) -> None:
    """Drive the client as ``transfer.py`` does, answering a challenge like ``Session``."""
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        for _ in range(8):
            if conn.state == "challenged":
                conn.auth_bytes(b"\x00" * 32)
            event = conn.next_event()
            if event is NEED_DATA:
                if conn.state == "head":
                    assert len(conn._buffer) < MAX_HEAD, "client hoards a head past its bound"
                elif conn.state == "trailer":
                    assert len(conn._buffer) < protocol.MAX_TRAILER_LINE, "trailer line unbounded"
                else:
                    assert len(conn._buffer) == 0, "client keeps body bytes it could hand over"
                break
            if isinstance(event, EndOfMessage):
                return
            if isinstance(event, Response) and event.status is Status.OK:
                assert conn.body_remaining is not None
                assert conn.body_remaining >= 0


_plausible_heads = st.builds(
    protocol.encode_response_head,
    st.builds(
        Response,
        status=st.sampled_from(Status),
        size=st.none() | st.integers(0, 400),
        offset=st.sampled_from([0, 3]),
        entries=st.none() | st.integers(0, 3),
        challenge=st.none() | st.just(b"\x01" * 32),
        digest=st.none() | st.just(DIGEST),
        version=st.sampled_from([1, 2]),
        trailer=st.booleans(),
        length=st.none() | st.integers(0, 3),
    ),
)
_plausible_trailers = st.lists(
    st.sampled_from(
        [b"hashed: 5\n", b"digest: " + DIGEST.encode() + b"\n", b"error: changed\n", b"\n"]
    ),
    max_size=5,
).map(b"".join)
#: What a server may answer: noise, or one or two plausible heads followed by noise.
_answers = st.one_of(
    hostile_bytes,
    st.tuples(_plausible_heads, hostile_bytes).map(b"".join),
    st.tuples(_plausible_heads, _plausible_heads, hostile_bytes).map(b"".join),
    st.tuples(_plausible_heads, st.binary(max_size=4), _plausible_trailers, hostile_bytes).map(
        b"".join
    ),
)


@HYPOTHESIS
@given(
    request_=_client_requests,
    data=_answers,
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_client_connection_survives_hostile_bytes(
    request_: Request | LegacyRequest, data: bytes, cuts: list[int]
) -> None:
    conn = ClientConnection(request_)
    with contextlib.suppress(ProtocolError):
        _pump_client(conn, _pieces(data, cuts))


@HYPOTHESIS
@given(
    request_=st.builds(
        Request,
        verb=st.sampled_from([Verb.GET, Verb.LIST]),
        path=st.binary(min_size=1, max_size=200),
        offset=st.integers(0, 2**62),
        after=st.none() | st.binary(min_size=1, max_size=50),
        limit=st.integers(1, MAX_LIST_ENTRIES),
    ),
    cuts=st.lists(st.integers(0, 1000), max_size=6),
)
def test_any_valid_request_survives_any_split(request_: Request, cuts: list[int]) -> None:
    if request_.verb is Verb.GET:
        request_ = Request(Verb.GET, request_.path, offset=request_.offset)
    else:
        request_ = Request(Verb.LIST, request_.path, after=request_.after, limit=request_.limit)
    conn = ServerConnection()
    event: object = NEED_DATA
    for piece in _pieces(protocol.encode_request(request_), cuts):
        assert event is NEED_DATA
        conn.receive_data(piece)
        event = conn.next_event()
    assert event == request_


@HYPOTHESIS
@given(
    body=st.binary(max_size=2000),
    cuts=st.lists(st.integers(0, 3000), max_size=8),
)
def test_any_body_survives_any_split(body: bytes, cuts: list[int]) -> None:
    wire = protocol.encode_response_head(Response(Status.OK, size=len(body), digest=DIGEST)) + body
    conn = ClientConnection(Request(Verb.GET, b"f"))
    received = bytearray()
    ended = False
    for piece in [*_pieces(wire, cuts), b""]:
        conn.receive_data(piece)
        for event in drain(conn):
            if isinstance(event, Data):
                received += event.data
            ended = ended or isinstance(event, EndOfMessage)
    assert ended and bytes(received) == body


# ---------------------------------------------------------------- version 2: trailer, range, PING

V2_GET = Request(Verb.GET, b"big.iso", version=2)


def _v2_exchange(request: Request, head: Response) -> tuple[ServerConnection, ClientConnection]:
    """A server and a client that have exchanged ``request`` and the head ``head``."""
    client = ClientConnection(request)
    server = ServerConnection()
    server.receive_data(client.request_bytes())
    assert server.next_event() == request
    client.receive_data(server.send(head))
    response = client.next_event()
    assert isinstance(response, Response) and response.version == 2
    return server, client


def test_v2_get_with_a_trailer_in_memory() -> None:
    body = b"x" * 1000
    head = Response(Status.OK, size=len(body), trailer=True)
    server, client = _v2_exchange(V2_GET, head)
    assert server.state == "body" and client.state == "body"
    server.body_sent(600)
    server.body_sent(400)
    assert server.state == "trailer"
    wire = body + server.send_hash_progress(512) + server.send_trailer(protocol.Trailer(DIGEST))
    assert server.state == "done"
    assert wire.endswith(b"hashed: 512\ndigest: " + DIGEST.encode() + b"\n\n")
    client.receive_data(wire)
    events = [client.next_event() for _ in range(4)]
    assert events == [
        Data(body),
        protocol.HashProgress(512),
        protocol.Trailer(DIGEST),
        EndOfMessage(),
    ]
    client.receive_data(b"")
    assert client.next_event() == EndOfMessage()


def test_v2_head_wire_format() -> None:
    head = protocol.encode_response_head(
        Response(Status.OK, size=10, offset=2, length=5, trailer=True, version=2)
    )
    assert head == b"getfile/2 200 ok\nsize: 10\noffset: 2\nlength: 5\ntrailer: digest\n\n"
    parsed = protocol.parse_response_head(head[:-2])
    assert (parsed.version, parsed.length, parsed.trailer, parsed.body_length) == (2, 5, True, 5)


def test_v2_get_with_a_known_digest_has_no_trailer() -> None:
    server, client = _v2_exchange(V2_GET, Response(Status.OK, size=3, digest=DIGEST))
    assert server.state == "done"
    client.receive_data(b"abc")
    assert drain(client) == [Data(b"abc"), EndOfMessage()]


def test_v2_trailer_can_carry_an_error() -> None:
    server, client = _v2_exchange(V2_GET, Response(Status.OK, size=0, trailer=True))
    assert server.state == "trailer"
    client.receive_data(server.send_trailer(protocol.Trailer(error="file changed\nwhile sent")))
    assert drain(client) == [protocol.Trailer(error="file changed while sent"), EndOfMessage()]


def test_v2_byte_range_round_trips() -> None:
    request = Request(Verb.GET, b"f", offset=10, length=20, version=2)
    assert protocol.encode_request(request) == b"\x00getfile/2 GET f offset=10 length=20\n"
    head = Response(Status.OK, size=100, offset=10, length=20, trailer=True)
    server, client = _v2_exchange(request, head)
    assert client.body_remaining == 20 and server.body_remaining == 20
    client.receive_data(b"r" * 20 + b"digest: " + DIGEST.encode() + b"\n\n")
    assert drain(client) == [Data(b"r" * 20), protocol.Trailer(DIGEST), EndOfMessage()]


@pytest.mark.parametrize(
    "head",
    [
        Response(Status.OK, size=100, offset=10, trailer=True),  # no range: another answer
        Response(Status.OK, size=100, offset=10, length=19, trailer=True),
        Response(Status.OK, size=100, offset=10, length=20),  # neither digest nor trailer
        Response(Status.OK, size=100, offset=10, length=20, digest=DIGEST, trailer=True),
    ],
)
def test_client_refuses_a_v2_head_that_does_not_answer(head: Response) -> None:
    client = ClientConnection(Request(Verb.GET, b"f", offset=10, length=20, version=2))
    client.receive_data(protocol.encode_response_head(head.replace(version=2)))
    with pytest.raises(ProtocolError):
        client.next_event()


def test_a_range_beyond_the_size_is_refused() -> None:
    with pytest.raises(ProtocolError, match="range"):
        protocol.parse_response_head(b"getfile/2 200 ok\nsize: 10\noffset: 5\nlength: 6")


@pytest.mark.parametrize(
    "request_",
    [
        Request(Verb.GET, b"f", length=3),  # version 1 has no ranges
        Request(Verb.LIST, b"d", length=3, version=2),
        Request(Verb.PING, b""),  # version 1 has no PING
        Request(Verb.GET, b"f", version=3),
    ],
)
def test_encoders_refuse_what_a_version_lacks(request_: Request) -> None:
    with pytest.raises(ProtocolError):
        protocol.encode_request(request_)


@pytest.mark.parametrize(
    "line",
    [
        b"\x00getfile/1 GET f length=3",
        b"\x00getfile/1 PING",
        b"\x00getfile/2 PING x",
        b"\x00getfile/2 GET f length=-1",
        b"\x00getfile/2 GET f length=1 length=2",
        b"\x00getfile/2 LIST d length=2",
    ],
)
def test_parser_refuses_what_a_version_lacks(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_request_line(line)


def test_ping_is_a_fixed_exchange() -> None:
    ping = Request(Verb.PING, b"", version=2)
    assert protocol.encode_request(ping) == b"\x00getfile/2 PING\n"
    server = ServerConnection()
    server.receive_data(b"\x00getfile/2 PING\n")
    assert server.next_event() == ping
    with pytest.raises(ProtocolError):
        server.send(Response(Status.NOT_FOUND, "no"))
    wire = server.send(protocol.pong())
    assert wire == b"getfile/2 200 ok\nsize: 0\n\n"
    assert server.state == "done"
    client = ClientConnection(ping)
    client.receive_data(wire)
    assert drain(client) == [protocol.pong(), EndOfMessage()]


def test_v2_client_reads_a_v1_servers_505() -> None:
    """A version-1 server answers 505 in version 1: the client can then retry in version 1."""
    client = ClientConnection(V2_GET)
    client.receive_data(b"getfile/1 505 unsupported-version\nmessage: speaks 1\n\n")
    response = client.next_event()
    assert isinstance(response, Response) and response.status is Status.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    ("request_", "head"),
    [
        (V2_GET, b"getfile/1 200 ok\nsize: 1\ndigest: " + DIGEST.encode() + b"\n\n"),
        (Request(Verb.GET, b"f"), b"getfile/2 200 ok\nsize: 1\ntrailer: digest\n\n"),
        (Request(Verb.GET, b"f"), b"getfile/1 200 ok\nsize: 1\ntrailer: digest\n\n"),
    ],
)
def test_client_refuses_an_answer_in_another_version(request_: Request, head: bytes) -> None:
    client = ClientConnection(request_)
    client.receive_data(head)
    with pytest.raises(ProtocolError):
        client.next_event()


def test_v1_server_side_is_unchanged_by_version_2() -> None:
    server = ServerConnection()
    server.receive_data(b"\x00getfile/1 GET f\n")
    server.next_event()
    with pytest.raises(ProtocolError):
        server.send(Response(Status.OK, size=3, trailer=True))
    assert server.send(Response(Status.OK, size=3, digest=DIGEST)).startswith(b"getfile/1 200")


def test_server_failure_before_a_request_is_sent_in_version_1() -> None:
    server = ServerConnection()
    server.receive_data(b"\x00getfile/7 GET f\n")
    with pytest.raises(UnsupportedVersion):
        server.next_event()
    wire = server.send_failure(Status.UNSUPPORTED_VERSION, "speaks 1 and 2")
    assert wire.startswith(b"getfile/1 505 unsupported-version\n")
    assert server.state == "done"
    with pytest.raises(ProtocolError):
        server.send_failure(Status.BAD_REQUEST, "again")


def test_server_refuses_trailer_steps_out_of_turn() -> None:
    server = ServerConnection()
    server.receive_data(protocol.encode_request(V2_GET))
    server.next_event()
    with pytest.raises(ProtocolError):
        server.send_trailer(protocol.Trailer(DIGEST))
    server.send(Response(Status.OK, size=4, trailer=True))
    with pytest.raises(ProtocolError):
        server.body_sent(5)
    with pytest.raises(ProtocolError):
        server.send_hash_progress(1)
    server.body_sent(4)
    with pytest.raises(ProtocolError):
        server.send_trailer(protocol.Trailer(DIGEST, error="both"))


@pytest.mark.parametrize(
    ("after_body", "error"),
    [
        (b"", protocol.MissingTrailer),
        (b"hashed: 1\n", protocol.MissingTrailer),
        (b"\n", ProtocolError),  # ends with neither digest nor error
        (b"digest: md5\n\n", ProtocolError),
        (b"digest: " + DIGEST.encode() + b"\nerror: x\n\n", ProtocolError),
        (b"digest: " + DIGEST.encode() + b"\n\nX", ProtocolError),
        (b"hashed: -1\n", ProtocolError),
        (b"Digest: x\n", ProtocolError),
        (b"x-note: " + b"a" * 2000 + b"\n", ProtocolError),
        (b"hashed: 1\n" * (protocol.MAX_TRAILER_LINES + 1), ProtocolError),
    ],
)
def test_client_refuses_bad_trailers(after_body: bytes, error: type[Exception]) -> None:
    client = ClientConnection(V2_GET)
    client.receive_data(b"getfile/2 200 ok\nsize: 2\ntrailer: digest\n\nab" + after_body)
    client.receive_data(b"")
    with pytest.raises(error):
        for _ in range(protocol.MAX_TRAILER_LINES + 10):
            client.next_event()


def test_a_missing_trailer_is_an_interruption_to_resume() -> None:
    assert issubclass(protocol.MissingTrailer, ShortBody)
    assert protocol.MissingTrailer().missing == 0


def test_zero_copy_never_takes_the_trailer() -> None:
    client = ClientConnection(V2_GET)
    client.receive_data(b"getfile/2 200 ok\nsize: 3\ntrailer: digest\n\nabcdigest: ")
    assert isinstance(client.next_event(), Response)
    assert client.take_buffered() == b"abc"
    client.receive_data(DIGEST.encode() + b"\n\n")
    assert client.next_event() == protocol.Trailer(DIGEST)


@pytest.mark.parametrize(
    "head", ["getfile/\u0661 200 ok\nsize: 1", "getfile/1 \u0662\u0660\u0660 ok\nsize: 1"]
)
def test_status_line_takes_ascii_digits_only(head: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_response_head(head.encode())


def test_processing_head_carries_hash_progress() -> None:
    head = Response(Status.PROCESSING, "hashing the file", size=100, hashed=40)
    parsed = protocol.parse_response_head(protocol.encode_response_head(head)[:-2])
    assert (parsed.size, parsed.hashed, parsed.message) == (100, 40, "hashing the file")


@HYPOTHESIS
@given(
    body=st.binary(max_size=2000),
    progress=st.lists(st.integers(0, 2**40), max_size=5),
    offset=st.integers(0, 50),
    cuts=st.lists(st.integers(0, 3000), max_size=8),
)
def test_any_v2_body_and_trailer_survive_any_split(
    body: bytes, progress: list[int], offset: int, cuts: list[int]
) -> None:
    offset = min(offset, len(body))
    request = Request(Verb.GET, b"f", offset=offset, length=len(body) - offset, version=2)
    server = ServerConnection()
    server.receive_data(protocol.encode_request(request))
    assert server.next_event() == request
    wire = server.send(
        Response(Status.OK, size=len(body), offset=offset, length=len(body) - offset, trailer=True)
    )
    wire += body[offset:]
    if len(body) > offset:
        server.body_sent(len(body) - offset)
    wire += b"".join(server.send_hash_progress(n) for n in progress)
    wire += server.send_trailer(protocol.Trailer(DIGEST))
    conn = ClientConnection(request)
    received, seen, trailers = bytearray(), [], []
    for piece in [*_pieces(wire, cuts), b""]:
        conn.receive_data(piece)
        for event in drain(conn):
            if isinstance(event, Data):
                received += event.data
            elif isinstance(event, protocol.HashProgress):
                seen.append(event.hashed)
            elif isinstance(event, protocol.Trailer):
                trailers.append(event)
    assert bytes(received) == body[offset:]
    assert seen == progress and trailers == [protocol.Trailer(DIGEST)]
