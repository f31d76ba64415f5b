"""Hostile mirrors: one that passes the check and then breaks the protocol, one that lies in bytes.

A mirror is another server the user named, not one they vouch for. One
that sends more than the range it was asked for loses every byte it sent
(they are fetched again from the first server) and is dropped with one
line; one that sends other bytes under the right digest cannot be singled
out without per-range digests, so the whole-file digest refuses the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from getfile_core.address import Target
from getfile_core.client import Options, fetch
from getfile_core.errors import IntegrityError
from getfile_core.protocol import Request, Response, Status, encode_response_head
from getfile_core.protocol import parse_request_line as parse
from tests.support import MIB, digest_bytes, scripted_server
from tests.support.links import Link, LinkEmulator

SIZE = 12 * MIB + 99
MTIME = 1_700_000_000_000_000_000
#: The first server's link: slow enough that the mirror surely gets pieces of its own.
SLOW = Link(rate=2 * MIB)


def ranged_mirror(data: bytes, *, extra: bytes = b"", flip: bool = False):  # type: ignore[no-untyped-def]
    """A version-2 mirror of ``data``: honest heads; its bodies get ``extra`` or flipped bytes."""
    digest = digest_bytes(data)

    async def script(line: bytes, writer) -> None:  # type: ignore[no-untyped-def]
        request = parse(line)
        assert isinstance(request, Request)
        length = request.length if request.length is not None else SIZE - request.offset
        head = Response(
            Status.OK,
            size=SIZE,
            mtime_ns=MTIME,
            digest=digest,
            offset=request.offset,
            length=request.length,
            version=2,
        )
        body = data[request.offset : request.offset + length]
        if flip and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        writer.write(encode_response_head(head) + body + (extra if body else b""))

    return script


async def test_a_mirror_that_sends_past_its_range_loses_its_bytes_and_is_dropped(
    server, dest: Path, root: Path
) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(SIZE)
    (root / "big.bin").write_bytes(data)
    remarks: list[str] = []
    async with (
        scripted_server(ranged_mirror(data, extra=b"more"), version_2=True) as port,
        LinkEmulator(server.port_bound, SLOW) as slow,
    ):
        primary = Target("127.0.0.1", slow.port, b"big.bin")
        options = Options(
            segments=4,
            mirrors=(Target("127.0.0.1", port, b"big.bin"),),
            on_remark=remarks.append,
        )
        result = await fetch(primary, str(dest), options=options)
    assert (dest / "big.bin").read_bytes() == data
    assert result.digest == digest_bytes(data)
    assert len(remarks) == 1, remarks
    assert f"mirror 127.0.0.1:{port}: failed (" in remarks[0] and "not used" in remarks[0]


async def test_a_mirror_that_lies_in_bytes_is_caught_by_the_whole_file_digest(
    server, dest: Path, root: Path
) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(SIZE)
    (root / "big.bin").write_bytes(data)
    async with (
        scripted_server(ranged_mirror(data, flip=True), version_2=True) as port,
        LinkEmulator(server.port_bound, SLOW) as slow,
    ):
        primary = Target("127.0.0.1", slow.port, b"big.bin")
        options = Options(segments=4, mirrors=(Target("127.0.0.1", port, b"big.bin"),))
        try:
            await fetch(primary, str(dest), options=options)
        except IntegrityError as error:
            assert "digest mismatch" in str(error)
        else:
            raise AssertionError("a file with flipped bytes was accepted")
    assert list(dest.iterdir()) == []  # no file, no .part, no record
