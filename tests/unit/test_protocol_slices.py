"""``slice=K/N floor=F`` (version 2 GET): the rule, the grammar, and the client's check of a head.

Pure: no sockets. The rule (``Slice.span``) is what both ends compute, so
it is checked for the property the client relies on: N slices of one size
tile ``[0, size)`` exactly, in order, and no piece is under the floor
unless the whole file is.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from getfile_core.errors import ProtocolError
from getfile_core.protocol import (
    MAX_SLICES,
    ClientConnection,
    Request,
    Response,
    Slice,
    Status,
    Verb,
    encode_request,
    encode_response_head,
    parse_request_line,
)

MIB = 1024 * 1024


@given(
    size=st.integers(min_value=0, max_value=2**40),
    count=st.integers(min_value=1, max_value=64),
    floor=st.integers(min_value=1, max_value=2**32),
)
def test_the_slices_of_any_size_tile_the_file_in_order(size: int, count: int, floor: int) -> None:
    spans = [Slice(k, count, floor).span(size) for k in range(count)]
    at = 0
    for offset, length in spans:
        assert offset == at or (length == 0 and offset == size)
        at = offset + length
    assert at == size
    pieces = [length for _, length in spans if length]
    assert len(pieces) == (Slice(0, count, floor).pieces(size) if size else 0)
    if len(pieces) > 1:  # only a file too small to cut comes in one piece under the floor
        assert min(pieces) >= floor
        assert max(pieces) - min(pieces) <= 1  # as even as integers allow


def test_a_small_file_is_one_piece_and_the_other_slices_are_empty() -> None:
    spans = [Slice(k, 8, 2 * MIB).span(1024) for k in range(8)]
    assert spans == [(0, 1024)] + [(1024, 0)] * 7
    # 5 MiB under a 2 MiB floor: two pieces of 2.5 MiB, then empty slices.
    spans = [Slice(k, 8, 2 * MIB).span(5 * MIB) for k in range(8)]
    assert spans[:3] == [(0, 5 * MIB // 2), (5 * MIB // 2, 5 * MIB // 2), (5 * MIB, 0)]
    # An empty file: every slice is empty, at 0.
    assert {Slice(k, 4).span(0) for k in range(4)} == {(0, 0)}


def test_sixteen_mib_in_eight_slices_of_two() -> None:
    spans = [Slice(k, 8, 2 * MIB).span(16 * MIB) for k in range(8)]
    assert spans == [(k * 2 * MIB, 2 * MIB) for k in range(8)]


@pytest.mark.parametrize(
    ("index", "count", "floor"),
    [(0, 0, 1), (8, 8, 1), (-1, 8, 1), (0, MAX_SLICES + 1, 1), (0, 8, 0)],
)
def test_a_slice_that_cannot_exist_is_refused(index: int, count: int, floor: int) -> None:
    with pytest.raises(ProtocolError):
        Slice(index, count, floor)


def test_a_slice_is_immutable_and_compares_by_value() -> None:
    piece = Slice(3, 8, 4096)
    assert piece == Slice(3, 8, 4096) and piece != Slice(3, 8) and piece != (3, 8, 4096)
    assert len({piece, Slice(3, 8, 4096)}) == 1
    with pytest.raises(AttributeError):
        piece.index = 4  # type: ignore[misc]


# ---------------------------------------------------------------- the request line


def test_a_slice_request_round_trips() -> None:
    request = Request(Verb.GET, b"iso/big file.iso", version=2, slice=Slice(3, 8, 2 * MIB))
    line = encode_request(request)
    assert line == b"\x00getfile/2 GET iso/big%20file.iso slice=3/8 floor=2097152\n"
    assert parse_request_line(line[:-1]) == request
    plain = Request(Verb.GET, b"a", version=2, slice=Slice(0, 2), keep=True)
    assert encode_request(plain) == b"\x00getfile/2 GET a slice=0/2 keep=1\n"
    assert parse_request_line(encode_request(plain)[:-1]) == plain


@pytest.mark.parametrize(
    "params",
    [
        b"slice=8/8",  # no such slice
        b"slice=1/0",
        b"slice=1",  # no count
        b"slice=1/2/3",
        b"slice=a/2",
        b"slice=/2",
        b"slice=1/+2",
        b"slice=00001/2",  # five digits
        b"slice=1/2 floor=0",
        b"slice=1/2 floor=-5",
        b"slice=1/2 floor=12345678901234567890",  # 20 digits
        b"floor=5",  # a floor alone
        b"slice=1/2 offset=5",  # a slice is asked instead of a range
        b"slice=1/2 length=5",
        b"slice=1/2 slice=0/2",  # repeated
    ],
)
def test_a_malformed_slice_is_a_bad_request(params: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request_line(b"\x00getfile/2 GET a.txt " + params)


def test_a_slice_exists_only_in_a_version_2_get() -> None:
    # Version 1 (and a server from before slices) knows no such parameter.
    with pytest.raises(ProtocolError, match="unknown GET parameter"):
        parse_request_line(b"\x00getfile/1 GET a.txt slice=0/2")
    with pytest.raises(ProtocolError, match="unknown LIST parameter"):
        parse_request_line(b"\x00getfile/2 LIST d slice=0/2")
    for request in (
        Request(Verb.GET, b"a", version=1, slice=Slice(0, 2)),
        Request(Verb.LIST, b"d", version=2, slice=Slice(0, 2)),
        Request(Verb.GET, b"a", version=2, offset=5, slice=Slice(0, 2)),
        Request(Verb.GET, b"a", version=2, length=5, slice=Slice(0, 2)),
    ):
        with pytest.raises(ProtocolError):
            encode_request(request)


# ---------------------------------------------------------------- the client checks the head


def _answer(request: Request, **fields: object) -> ClientConnection:
    """A client that sent ``request`` and received an ok head with ``fields``."""
    conn = ClientConnection(request)
    head = Response(Status.OK, version=2, digest="blake3:" + "0" * 64, **fields)  # type: ignore[arg-type]
    conn.receive_data(encode_response_head(head))
    return conn


def test_the_head_of_a_slice_must_be_the_rules_range() -> None:
    request = Request(Verb.GET, b"a", version=2, slice=Slice(2, 4, 1))
    size = 1000  # slice 2 of 4: [500, 750)
    honest = _answer(request, size=size, offset=500, length=250).next_event()
    assert isinstance(honest, Response) and (honest.offset, honest.length) == (500, 250)
    lies = [
        {"offset": 250, "length": 250},  # another connection's slice: overlapping
        {"offset": 500, "length": 300},  # longer: into the next slice
        {"offset": 400, "length": 350},  # shifted
        {"offset": 500},  # no length: the rest of the file
        {"offset": 0, "length": 0},  # empty, where the rule says bytes
    ]
    for lie in lies:
        with pytest.raises(ProtocolError, match="another range than the slice"):
            _answer(request, size=size, **lie).next_event()


def test_an_empty_slice_is_at_the_end_of_the_file() -> None:
    request = Request(Verb.GET, b"a", version=2, slice=Slice(5, 8, 2 * MIB))
    head = _answer(request, size=1024, offset=1024, length=0).next_event()
    assert isinstance(head, Response) and head.body_length == 0
    with pytest.raises(ProtocolError):  # the file's bytes where the rule says none
        _answer(request, size=1024, offset=0, length=1024).next_event()


def test_a_server_from_before_slices_refuses_the_line_in_version_1() -> None:
    """It cannot parse the line, so it never learns its version: a version-1 ``400``."""
    conn = ClientConnection(Request(Verb.GET, b"a", version=2, slice=Slice(0, 8)))
    conn.receive_data(b"getfile/1 400 bad-request\nmessage: unknown GET parameter\n\n")
    head = conn.next_event()
    assert isinstance(head, Response) and head.status is Status.BAD_REQUEST
    # Any other answer in an older version is still a protocol error.
    conn = ClientConnection(Request(Verb.GET, b"a", version=2, slice=Slice(0, 8)))
    conn.receive_data(b"getfile/1 404 not-found\n\n")
    with pytest.raises(ProtocolError, match="answered in 1"):
        conn.next_event()
