"""``slice=K/N floor=F`` on a real server: the rule's range of the file, nothing else.

Each answer is read through ``ClientConnection``, which refuses any head
whose ``offset``/``length`` is not ``Slice.span`` of its ``size``; the
bodies are compared with the file's bytes at those offsets.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from getfile_core.protocol import (
    NEED_DATA,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
    Slice,
    Status,
    Verb,
)
from getfile_core.server.fileserver import FileServer
from tests.support import MIB, PATIENCE, digest_bytes, running_server
from tests.support.wire import raw_exchange, split_response

SIZE = 5 * MIB + 3


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(SIZE))
    (root / "tiny.txt").write_bytes(b"one small line\n")
    async with running_server(root, grace=1) as srv:
        yield srv


def sliced(path: bytes, index: int, count: int, floor: int = 1) -> Request:
    return Request(Verb.GET, path, version=2, slice=Slice(index, count, floor))


async def test_the_slices_of_a_file_are_the_rules_ranges_and_together_the_file(
    server: FileServer,
) -> None:
    data = Path(server.root.path, "big.bin").read_bytes()
    bodies = []
    for index in range(4):
        head, body = await raw_exchange(server.port_bound, sliced(b"big.bin", index, 4, MIB))
        assert head.status is Status.OK and head.size == SIZE
        offset, length = Slice(index, 4, MIB).span(SIZE)
        assert (head.offset, head.length) == (offset, length)
        assert body == data[offset : offset + length]
        assert head.digest == digest_bytes(data) or head.trailer  # the whole file's digest
        bodies.append(body)
    assert b"".join(bodies) == data


async def test_a_floor_leaves_the_extra_slices_empty(server: FileServer) -> None:
    """5 MiB in 8 slices, none under 2 MiB: two pieces; slices 2 to 7 are empty, at the end."""
    data = Path(server.root.path, "big.bin").read_bytes()
    answers = [
        await raw_exchange(server.port_bound, sliced(b"big.bin", index, 8, 2 * MIB))
        for index in range(8)
    ]
    half = SIZE // 2
    assert [(head.offset, head.length) for head, _ in answers] == [
        (0, half),
        (half, SIZE - half),
    ] + [(SIZE, 0)] * 6
    assert b"".join(body for _, body in answers) == data
    # A file under the floor comes whole in slice 0.
    head, body = await raw_exchange(server.port_bound, sliced(b"tiny.txt", 0, 8, 2 * MIB))
    assert (head.offset, head.length, body) == (0, 15, b"one small line\n")
    head, body = await raw_exchange(server.port_bound, sliced(b"tiny.txt", 7, 8, 2 * MIB))
    assert (head.status, head.offset, head.length, body) == (Status.OK, 15, 0, b"")


@pytest.mark.parametrize(
    "line",
    [
        b"\x00getfile/2 GET big.bin slice=4/4\n",
        b"\x00getfile/2 GET big.bin slice=0/4 offset=10\n",
        b"\x00getfile/2 GET big.bin slice=0/4 length=10\n",
        b"\x00getfile/2 GET big.bin floor=10\n",
        b"\x00getfile/2 GET big.bin slice=0/4 floor=0\n",
        b"\x00getfile/1 GET big.bin slice=0/4\n",  # version 1 has no slices
    ],
)
async def test_a_slice_the_rules_do_not_allow_is_a_bad_request(
    server: FileServer, line: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
    try:
        writer.write(line)
        async with asyncio.timeout(PATIENCE):
            answer = await reader.read()  # to the server's close
    finally:
        writer.close()
    head, body = split_response(answer)
    assert head.status is Status.BAD_REQUEST and body == b""


async def test_a_missing_file_is_refused_as_for_any_get(server: FileServer) -> None:
    head, body = await raw_exchange(server.port_bound, sliced(b"gone.bin", 0, 4))
    assert head.status is Status.NOT_FOUND and body == b""


async def test_slices_on_one_kept_connection_are_framed_by_their_length(
    server: FileServer,
) -> None:
    """``keep=1`` and ``slice`` together: each answer ends exactly at its slice's length."""
    data = Path(server.root.path, "big.bin").read_bytes()
    first = Request(Verb.GET, b"big.bin", version=2, keep=True, slice=Slice(0, 2))
    second = Request(Verb.GET, b"big.bin", version=2, slice=Slice(1, 2))
    conn = ClientConnection(first)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
    heads: list[Response] = []
    bodies = [bytearray(), bytearray()]
    try:
        writer.write(conn.request_bytes())
        ended = 0  # answers complete (an EndOfMessage each)
        async with asyncio.timeout(PATIENCE):
            while ended < 2:
                event = conn.next_event()
                if isinstance(event, EndOfMessage | ConnectionClosed):
                    ended += 1
                elif event is NEED_DATA:
                    conn.receive_data(await reader.read(256 * 1024))
                elif isinstance(event, Response):
                    heads.append(event)
                    if len(heads) == 1:  # the first head confirmed the kept connection
                        writer.write(conn.pipeline(second))
                elif isinstance(event, Data):
                    bodies[len(heads) - 1] += event.data
    finally:
        writer.close()
    assert [(h.offset, h.length) for h in heads] == [Slice(k, 2).span(SIZE) for k in range(2)]
    assert heads[0].keep is not None and heads[1].keep is None
    assert bytes(bodies[0]) + bytes(bodies[1]) == data
