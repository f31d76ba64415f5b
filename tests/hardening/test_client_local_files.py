"""The client's files in a folder others can write (issue 10 #4, #5): planted, swapped, shared.

Each test plays the other user (or the other download) at the worst moment:
while the server is still preparing its answer, or half-way through the body.
The rule under test: the client writes only into a ``.part`` it created
itself, resumes only a ``.part`` of its own, gives the final name only to the
file it wrote, and never mistakes a real file for its partial file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client.api import fetch
from getfile_core.client.destination import Destination
from getfile_core.client.names import PART_SUFFIX, UnsafeName, safe_local_name
from getfile_core.client.state import Options
from getfile_core.errors import IntegrityError, LocalFileError
from getfile_core.server.fileserver import FileServer
from tests.support import (
    PROJECT,
    UNPRIVILEGED_UID,
    digest_bytes,
    ok_head,
    scripted_server,
    target_for,
    wait_until,
)

PLANTED = b"the attacker's bytes\n"
BODY = os.urandom(300_000)
BOUND = 30


def local(port: int, path: str) -> Target:
    return Target("127.0.0.1", port, path.encode())


# ---------------------------------------------------------------- #4 a planted .part


async def test_a_part_planted_while_the_server_prepares_is_never_written_into(
    dest: Path,
) -> None:
    part = dest / ("f.bin" + PART_SUFFIX)

    async def plant_then_answer(_line: bytes, writer: asyncio.StreamWriter) -> None:
        part.write_bytes(PLANTED)  # the other user, during the server's hashing
        writer.write(ok_head(BODY) + BODY)

    async with scripted_server(plant_then_answer) as port:
        with pytest.raises(LocalFileError, match="appeared"):
            async with asyncio.timeout(BOUND):
                await fetch(local(port, "f.bin"), str(dest), options=Options(retries=0))
    assert part.read_bytes() == PLANTED
    assert not (dest / "f.bin").exists()


def test_a_part_planted_between_check_and_open_is_refused(dest: Path) -> None:
    destination = Destination(str(dest), "f.bin")
    assert destination.check() == 0
    planted = dest / ("f.bin" + PART_SUFFIX)
    planted.write_bytes(PLANTED)
    try:
        with pytest.raises(LocalFileError):
            destination.open_part(0)
    finally:
        destination.close()
    assert planted.read_bytes() == PLANTED


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
async def test_resume_refuses_a_part_owned_by_someone_else(
    server: FileServer, root: Path, dest: Path
) -> None:
    part = dest / ("hello.txt" + PART_SUFFIX)
    part.write_bytes(b"hel")
    os.chown(part, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    with pytest.raises(LocalFileError, match="another user"):
        await fetch(target_for(server, "hello.txt"), str(dest), resume=True)
    assert part.read_bytes() == b"hel" and not (dest / "hello.txt").exists()


async def test_resume_refuses_a_part_with_another_hard_link(
    server: FileServer, dest: Path, tmp_path: Path
) -> None:
    part = dest / ("hello.txt" + PART_SUFFIX)
    part.write_bytes(b"hel")
    os.link(part, tmp_path / "elsewhere")  # someone keeps a handle on what we would write
    with pytest.raises(LocalFileError, match="hard links"):
        await fetch(target_for(server, "hello.txt"), str(dest), resume=True)
    assert (tmp_path / "elsewhere").read_bytes() == b"hel"


def test_hashing_a_part_someone_truncates_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """Through a mapping, reading pages truncated away kills the process with SIGBUS."""
    script = textwrap.dedent(
        """
        import os, sys
        import blake3
        from getfile_core.digest import hash_written

        path = sys.argv[1]
        with open(path, "wb") as out:
            out.write(os.urandom(8 * 1024 * 1024))
        fd = os.open(path, os.O_RDONLY)

        class TruncatedMeanwhile:
            def __init__(self):
                self.real = blake3.blake3()
            def update(self, data):
                os.truncate(path, 0)  # the other user, while we hash
                self.real.update(data)

        try:
            hash_written(fd, 0, 8 * 1024 * 1024, TruncatedMeanwhile())
        except OSError as error:
            print("refused:", error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "victim.part")],
        capture_output=True,
        text=True,
        timeout=BOUND,
        cwd=PROJECT,
    )
    assert done.returncode == 0, (done.returncode, done.stderr)  # -7 is SIGBUS
    assert "refused: file shrank" in done.stdout


# ---------------------------------------------------------------- #5 names and identity


async def test_a_real_file_named_like_the_old_part_is_left_alone(
    server: FileServer, root: Path, dest: Path
) -> None:
    notes = dest / "hello.txt.part"  # a file of the user's, not ours
    notes.write_bytes(b"my own notes\n")
    await fetch(target_for(server, "hello.txt"), str(dest), overwrite=True)
    await fetch(target_for(server, "hello.txt"), str(dest), overwrite=True, resume=True)
    assert notes.read_bytes() == b"my own notes\n"
    assert (dest / "hello.txt").read_bytes() == (root / "hello.txt").read_bytes()


async def test_an_integrity_failure_on_resume_removes_only_our_part(dest: Path) -> None:
    notes = dest / "f.bin.part"
    notes.write_bytes(b"my own notes\n")
    (dest / ("f.bin" + PART_SUFFIX)).write_bytes(BODY[:1000])

    async def lie(line: bytes, writer: asyncio.StreamWriter) -> None:
        head = ok_head(BODY[1000:], digest=digest_bytes(b"other"), size=len(BODY))
        writer.write(head.replace(b"\n\n", b"\noffset: 1000\n\n", 1) + BODY[1000:])

    async with scripted_server(lie) as port:
        with pytest.raises(IntegrityError):
            await fetch(local(port, "f.bin"), str(dest), resume=True)
    assert notes.read_bytes() == b"my own notes\n"
    assert not (dest / ("f.bin" + PART_SUFFIX)).exists()


def test_no_download_is_saved_under_a_partial_files_name() -> None:
    with pytest.raises(UnsafeName, match="reserved"):
        safe_local_name(b"dir/x" + PART_SUFFIX.encode())
    assert safe_local_name(b"x.part") == "x.part"  # the old suffix is an ordinary name now


async def test_a_part_swapped_during_the_download_never_gets_the_final_name(dest: Path) -> None:
    part = dest / ("f.bin" + PART_SUFFIX)
    half = len(BODY) // 2

    async def swap_half_way(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_head(BODY) + BODY[:half])
        await writer.drain()
        await wait_until(lambda: part.exists() and part.stat().st_size >= half, "half on disk")
        part.rename(dest / "moved-away")
        part.write_bytes(PLANTED)  # another file under the name we will commit
        writer.write(BODY[half:])

    async with scripted_server(swap_half_way) as port:
        with pytest.raises(LocalFileError, match="replaced"):
            async with asyncio.timeout(BOUND):
                await fetch(local(port, "f.bin"), str(dest), options=Options(retries=0))
    assert not (dest / "f.bin").exists()
    assert part.read_bytes() == PLANTED  # not ours: not removed either
