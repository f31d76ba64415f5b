"""A server whose answers to ``slice=K/N`` lie: a clear error, nothing kept, nothing outside.

Every connection of a fresh segmented download asks for its slice before
anyone knows the size, so a head is the server's word about which bytes
follow. One that names another range than the rule's (an overlap with a
neighbour, a range past the end, a size that differs between connections)
or sends more than it announced must end the download with one clear
error: no file, no ``.part``, no ranges record, no byte written anywhere
else, and no connection thread left behind.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client import Options, fetch
from getfile_core.errors import ProtocolError
from getfile_core.protocol import Request, Response, Slice, Status, encode_response_head
from getfile_core.protocol import parse_request_line as parse
from tests.support import MIB, digest_bytes, scripted_server, wait_until_sync

SIZE = 8 * MIB + 5
MTIME = 1_700_000_000_000_000_000
#: A lie: (the slice asked for, the true size) -> (size, offset, length) to announce, and
#: how many bytes more than that to send.
Lie = Callable[[Slice, int], tuple[int, int, int]]


def overlapping(piece: Slice, size: int) -> tuple[int, int, int]:
    """Slice K answered with slice K-1's range: two connections write the same bytes."""
    offset, length = Slice(max(0, piece.index - 1), piece.count, piece.floor).span(size)
    return size, offset, length


def longer(piece: Slice, size: int) -> tuple[int, int, int]:
    """The range runs on into the next slice."""
    offset, length = piece.span(size)
    return size, offset, min(size - offset, length + 4096)


def two_sizes(piece: Slice, size: int) -> tuple[int, int, int]:
    """Each connection told another size (each head true to its own): which file is it?"""
    told = size + piece.index
    return told, *piece.span(told)


def honest(piece: Slice, size: int) -> tuple[int, int, int]:
    return size, *piece.span(size)


def slice_liar(data: bytes, lie: Lie, extra: bytes = b""):  # type: ignore[no-untyped-def]
    """A version-2 server of ``data`` that answers every slice request as ``lie`` says."""
    digest = digest_bytes(data)

    async def script(line: bytes, writer) -> None:  # type: ignore[no-untyped-def]
        request = parse(line)
        assert isinstance(request, Request) and request.slice is not None
        size, offset, length = lie(request.slice, len(data))
        head = Response(
            Status.OK,
            size=size,
            mtime_ns=MTIME,
            digest=digest,
            offset=offset,
            length=length,
            version=2,
        )
        body = data[offset : offset + length]
        writer.write(encode_response_head(head) + body + (extra if body else b""))

    return script


def segment_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("getfile-segment-")]


@pytest.mark.parametrize(
    ("lie", "extra", "said"),
    [
        (overlapping, b"", "another range than the slice asked for"),
        (longer, b"", "another range than the slice asked for"),
        (two_sizes, b"", "two sizes for one file"),
        (honest, b"and more", "more bytes than it announced"),
    ],
)
async def test_a_lying_slice_head_ends_the_download_and_keeps_nothing(
    tmp_path: Path, lie: Lie, extra: bytes, said: str
) -> None:
    data = os.urandom(SIZE)
    dest = tmp_path / "downloads"
    dest.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    async with scripted_server(slice_liar(data, lie, extra), version_2=True) as port:
        target = Target("127.0.0.1", port, b"big.bin")
        with pytest.raises(ProtocolError) as caught:
            await fetch(target, str(dest), options=Options(segments=4, retries=1))
    message = str(caught.value)
    assert said in message and "\n" not in message
    assert list(dest.iterdir()) == []  # no file, no .part, no ranges record
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written elsewhere
    wait_until_sync(lambda: not segment_threads(), "every connection thread to end", 10)


async def test_a_range_past_the_end_is_refused_before_any_byte(tmp_path: Path) -> None:
    """A head whose range ends beyond the size it announces is not a head at all."""
    data = os.urandom(SIZE)

    def past_the_end(piece: Slice, size: int) -> tuple[int, int, int]:
        offset, length = piece.span(size)
        return size, offset, length + (size if piece.index == 3 else 0)

    async with scripted_server(slice_liar(data, past_the_end), version_2=True) as port:
        target = Target("127.0.0.1", port, b"big.bin")
        with pytest.raises(ProtocolError, match="range beyond the announced size"):
            await fetch(target, str(tmp_path), options=Options(segments=4))
    assert list(tmp_path.iterdir()) == []
    wait_until_sync(lambda: not segment_threads(), "every connection thread to end", 10)
