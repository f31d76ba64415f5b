"""The client speaks protocol version 2 first: the body at once, the digest in a trailer.

Against scripted version-2 peers (the wire is what is under test): a trailer
digest verifies the whole file, a wrong or missing one does not; "still
hashing" lines become a note; a connection lost between the body and the
trailer is resumed at the end of the file, which costs no body bytes and
brings the digest. Against a version-1 peer the client asks again in
version 1, once per server for the life of the process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client import session as session_module
from getfile_core.client.api import Progress, fetch
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.state import Options
from getfile_core.errors import IntegrityError
from getfile_core.protocol import Response, Status, Trailer
from getfile_core.server.fileserver import FileServer
from tests.support import digest_bytes, ok_head, scripted_server, target_for

BODY = os.urandom(200_000)
BOUND = 30
QUICK = Options(timeout=5, retry_cap=0.05)


@pytest.fixture(autouse=True)
def fresh_version_memory() -> Iterator[None]:
    """Ports are reused between tests: no test inherits "speaks version 1 only"."""
    session_module._VERSION_1_ONLY.clear()
    yield
    session_module._VERSION_1_ONLY.clear()


def local(port: int, path: str = "f.bin") -> Target:
    return Target("127.0.0.1", port, path.encode())


def requested_offset(line: bytes) -> int:
    return int(line.rsplit(b"offset=", 1)[1]) if b"offset=" in line else 0


def v2_head(offset: int = 0, *, digest: str | None = None) -> bytes:
    return protocol.encode_response_head(
        Response(
            Status.OK,
            size=len(BODY),
            offset=offset,
            mtime_ns=1_700_000_000_000_000_000,
            digest=digest,
            trailer=digest is None,
            version=2,
        )
    )


def trailer(digest: str, *, hashed: tuple[int, ...] = ()) -> bytes:
    progress = b"".join(protocol.encode_hash_progress(n) for n in hashed)
    return progress + protocol.encode_trailer(Trailer(digest=digest))


async def test_a_trailer_digest_verifies_the_file_and_hashing_shows_as_a_note(
    dest: Path,
) -> None:
    notes: list[str] = []
    versions: list[bytes] = []

    async def first_byte_at_once(line: bytes, writer: asyncio.StreamWriter) -> None:
        versions.append(line[: len(b"\0getfile/2")])
        writer.write(v2_head() + BODY)
        await writer.drain()
        writer.write(protocol.encode_hash_progress(len(BODY) // 2))
        await writer.drain()
        writer.write(trailer(digest_bytes(BODY)))

    def on_progress(progress: Progress) -> None:
        if "hashing" in progress.note:
            notes.append(progress.note)

    async with scripted_server(first_byte_at_once, version_2=True) as port:
        async with asyncio.timeout(BOUND):
            result = await fetch(local(port), str(dest), options=QUICK, on_progress=on_progress)
    assert versions == [b"\0getfile/2"]
    assert (dest / "f.bin").read_bytes() == BODY
    assert result.digest == digest_bytes(BODY) and not result.legacy
    # The note is sampled, so it may be missed; when seen it says what the wait is for.
    assert all(note == "server is hashing f.bin (50%)" for note in notes), notes


@pytest.mark.parametrize("lie", ["wrong digest", "error line"])
async def test_a_trailer_that_does_not_vouch_for_the_file_removes_the_part(
    dest: Path, lie: str
) -> None:
    end = trailer(digest_bytes(b"other"))
    if lie == "error line":
        end = protocol.encode_trailer(Trailer(error="the file changed while it was sent"))

    async def liar(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(v2_head() + BODY + end)

    async with scripted_server(liar, version_2=True) as port:
        with pytest.raises(IntegrityError) as caught:
            async with asyncio.timeout(BOUND):
                await fetch(local(port), str(dest), options=QUICK)
    assert ("changed while" in str(caught.value)) is (lie == "error line")
    assert not (dest / "f.bin").exists()
    assert not (dest / ("f.bin" + PART_SUFFIX)).exists()


async def test_a_link_lost_before_the_trailer_resumes_at_the_end_for_the_digest(
    dest: Path,
) -> None:
    offsets: list[int] = []

    async def cut_before_trailer_once(line: bytes, writer: asyncio.StreamWriter) -> None:
        offset = requested_offset(line)
        offsets.append(offset)
        if not offsets[:-1]:
            writer.write(v2_head() + BODY)  # and the connection ends: no trailer
            return
        writer.write(v2_head(offset) + BODY[offset:] + trailer(digest_bytes(BODY)))

    async with scripted_server(cut_before_trailer_once, version_2=True) as port:
        async with asyncio.timeout(BOUND):
            result = await fetch(local(port), str(dest), options=QUICK)
    assert offsets == [0, len(BODY)]  # the second connection moved no body byte
    assert result.attempts == 2 and result.digest == digest_bytes(BODY)
    assert (dest / "f.bin").read_bytes() == BODY


async def test_a_resumed_prefix_is_verified_with_the_rest(dest: Path) -> None:
    """A .part whose prefix is not the file's fails the whole-file digest of the trailer."""
    (dest / ("f.bin" + PART_SUFFIX)).write_bytes(b"X" * 1000)

    async def honest(line: bytes, writer: asyncio.StreamWriter) -> None:
        offset = requested_offset(line)
        writer.write(v2_head(offset) + BODY[offset:] + trailer(digest_bytes(BODY)))

    async with scripted_server(honest, version_2=True) as port:
        with pytest.raises(IntegrityError):
            async with asyncio.timeout(BOUND):
                await fetch(local(port), str(dest), resume=True, options=QUICK)
    assert not (dest / "f.bin").exists()


async def test_a_version_1_server_is_asked_again_in_version_1_and_remembered(
    dest: Path,
) -> None:
    heard: list[bytes] = []

    async def version_1(line: bytes, writer: asyncio.StreamWriter) -> None:
        heard.append(line)
        writer.write(ok_head(BODY) + BODY)

    async with scripted_server(version_1) as port:
        async with asyncio.timeout(BOUND):
            first = await fetch(local(port, "a.bin"), str(dest), options=QUICK)
            second = await fetch(local(port, "b.bin"), str(dest), options=QUICK)
        assert (dest / "a.bin").read_bytes() == (dest / "b.bin").read_bytes() == BODY
        assert first.digest == second.digest == digest_bytes(BODY)
    # The scripted peer answers 505 to version 2 before the script runs: the
    # script saw version 1 only; the second download asked in version 1 at once.
    assert [line[:10] for line in heard] == [b"\0getfile/1"] * 2
    assert (("127.0.0.1", port)) in session_module._VERSION_1_ONLY


async def test_our_server_answers_in_version_2(server: FileServer, root: Path, dest: Path) -> None:
    async with asyncio.timeout(BOUND):
        result = await fetch(target_for(server, "sub/data.bin"), str(dest), options=QUICK)
    assert (dest / "data.bin").read_bytes() == (root / "sub" / "data.bin").read_bytes()
    assert result.digest is not None
    assert not session_module._VERSION_1_ONLY  # no 505: version 2 was understood
