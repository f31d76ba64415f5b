"""A full disk mid-download: one clear line, exit code 9, the ``.part`` kept, no final file.

The disk is "full" by ``os.write`` wrapped in the client process: a write
past ``LIMIT`` bytes of its file fails with ENOSPC, as a full filesystem
does (the body takes the ``buffer`` path, whose writes are ``os.write``;
a tmpfs needs root and a mount). Documented behaviour: the ``.part`` stays,
``--resume`` finishes it once there is room again.

A file too big for the file system is not a full disk: RLIMIT_FSIZE makes
writes past it fail with EFBIG (as FAT32's 4 GiB does): exit 8, "file too
large for this file system". The kernel's SIGXFSZ must not kill the client
(CPython ignores it at start-up; exit code 8 there proves it still does).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from getfile_core.cli.exit_codes import exit_code_for
from getfile_core.client.names import PART_SUFFIX
from getfile_core.errors import TOO_LARGE, DiskFullError, LocalFileError
from getfile_core.server.fileserver import FileServer
from tests.support import GETFILE, MIB, PROJECT

SOURCE_SIZE = 4 * MIB
#: Not a multiple of any buffer, so the limit lands in the middle of a write.
LIMIT = 1_500_017

FSIZE_CLIENT = (
    "import resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "from getfile_core.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)

#: Writes to a regular file fail with ENOSPC past ``limit`` bytes of that file.
FULL_DISK_CLIENT = """
import errno, os, stat, sys
limit = int(sys.argv[1])
real_write = os.write

def write(fd, data):
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return real_write(fd, data)
    room = limit - os.lseek(fd, 0, os.SEEK_CUR)
    if room <= 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_write(fd, memoryview(data)[:room])

os.write = write
from getfile_core.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
async def big_server(tmp_path: Path) -> AsyncIterator[tuple[FileServer, bytes]]:
    root = tmp_path / "served"
    root.mkdir()
    source = os.urandom(SOURCE_SIZE)
    (root / "big.bin").write_bytes(source)
    server = FileServer(root, "127.0.0.1", 0, on_access=None)
    await server.start()
    try:
        yield server, source
    finally:
        await server.stop(grace=1)


async def run_client(
    *argv: str, limit: int | None = None, client: str = FULL_DISK_CLIENT
) -> tuple[int, str]:
    if limit is None:
        command = [*GETFILE, *argv]
    else:
        command = [sys.executable, "-c", client, str(limit), *argv]
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=PROJECT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        # Only the download may write; its body by os.write (the buffer path), never splice.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "GETFILE_RECEIVE": "buffer"},
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode("utf-8", "replace")


async def test_a_full_disk_keeps_the_part_and_resume_finishes(
    big_server: tuple[FileServer, bytes], tmp_path: Path
) -> None:
    server, source = big_server
    dest = tmp_path / "downloads"
    dest.mkdir()
    url = f"getfile://127.0.0.1:{server.port_bound}/big.bin"

    code, err = await run_client("get", url, "-o", str(dest), "-q", limit=LIMIT)

    assert code == exit_code_for(DiskFullError("x")) == 9, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "disk full" in lines[0] and "Traceback" not in err, err
    assert not (dest / "big.bin").exists(), "something appeared under the final name"
    part = (dest / ("big.bin" + PART_SUFFIX)).read_bytes()
    assert len(part) == LIMIT and part == source[:LIMIT], "the .part is not a clean prefix"

    # Room again (no limit): --resume continues from the .part and verifies the whole.
    code, err = await run_client("get", "--resume", url, "-o", str(dest), "-q")
    assert code == 0, err
    assert (dest / "big.bin").read_bytes() == source
    assert not (dest / ("big.bin" + PART_SUFFIX)).exists()


async def test_a_disk_full_before_the_first_byte_leaves_nothing(
    big_server: tuple[FileServer, bytes], tmp_path: Path
) -> None:
    """Not even one byte fits: still exit 9 and one line; no final file, no empty .part."""
    server, _ = big_server
    dest = tmp_path / "downloads"
    dest.mkdir()
    url = f"getfile://127.0.0.1:{server.port_bound}/big.bin"
    code, err = await run_client("get", url, "-o", str(dest), "-q", limit=0)
    assert code == 9, err
    assert len(err.strip().splitlines()) == 1 and "disk full" in err, err
    assert sorted(os.listdir(dest)) == []


async def test_a_file_too_big_for_the_file_system_is_not_a_full_disk(
    big_server: tuple[FileServer, bytes], tmp_path: Path
) -> None:
    """EFBIG (a ``ulimit -f`` here, FAT32's 4 GiB in life): its own words and exit 8."""
    server, source = big_server
    dest = tmp_path / "downloads"
    dest.mkdir()
    url = f"getfile://127.0.0.1:{server.port_bound}/big.bin"
    code, err = await run_client(
        "get", url, "-o", str(dest), "-q", limit=LIMIT, client=FSIZE_CLIENT
    )
    assert code == exit_code_for(LocalFileError("x")) == 8, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and TOO_LARGE in lines[0] and "disk full" not in err, err
    assert not (dest / "big.bin").exists(), "something appeared under the final name"
    part = (dest / ("big.bin" + PART_SUFFIX)).read_bytes()
    assert part == source[: len(part)], "the .part is not a clean prefix"
