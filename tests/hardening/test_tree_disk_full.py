"""A full disk under ``get -r``: the tree stops at the first "disk full", with one line, exit 9.

Found by hand on a 5 MiB tmpfs: ``get -r`` of 3000 files printed ~2900
lines "disk full: No space left on device", one per file, and went on
asking the server for every one. What was saved stays; a rerun continues.

The full disk: the client runs with ``os.write`` wrapped so that writes to
regular files share one byte budget and then fail with ENOSPC, as a
filesystem that fills up does (every file, not one: ``RLIMIT_FSIZE`` is a
limit per file and fails with EFBIG, which a file too big for FAT32 also
gives; a tmpfs needs root and a mount, which CI may not have). The budget
counts only regular files, so sockets and the terminal are untouched.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.support import PROJECT
from tests.support.processes import run_cli, run_program, serve_process

FILES = 120
SIZE = 4096
#: Room for about a quarter of the tree.
BUDGET = 30 * SIZE + 1000

FULL_DISK_CLIENT = """
import errno, os, stat, sys, threading
left = [int(sys.argv[1])]
lock = threading.Lock()
real_write = os.write

def write(fd, data):
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return real_write(fd, data)
    with lock:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, memoryview(data)[: left[0]])
        left[0] -= written
        return written

os.write = write
from getfile_core.cli import main
sys.exit(main(sys.argv[2:]))
"""


def make_tree(root: Path) -> dict[str, bytes]:
    files = {}
    for i in range(FILES):
        rel = f"d{i % 4}/f{i:03d}.bin"
        data = os.urandom(SIZE)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = data
    return files


def saved(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and not p.name.endswith(".getfile-part")
    }


def test_a_full_disk_ends_the_tree_with_one_line_and_a_rerun_continues(tmp_path: Path) -> None:
    served, out = tmp_path / "served", tmp_path / "out"
    served.mkdir()
    out.mkdir()
    files = make_tree(served)
    with serve_process(["serve", str(served), "--port", "0"]) as server:
        url = f"getfile://127.0.0.1:{server.port}/"
        full = run_program(
            [sys.executable, "-c", FULL_DISK_CLIENT, str(BUDGET), "get", "-r", url, "-o", str(out)],
            cwd=PROJECT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        lines = full.stderr.strip().splitlines()
        assert full.returncode == 9, full.stderr
        assert len(lines) == 1 and "disk full" in lines[0], full.stderr
        assert "Traceback" not in full.stderr
        kept = saved(out)
        assert 0 < len(kept) < FILES
        assert all(files[rel] == data for rel, data in kept.items()), "a saved file is wrong"

        again = run_cli("get", "-r", url, "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["skipped"] == len(kept)
    assert summary["files"] == FILES - len(kept)
    assert saved(out) == files


#: The disk fills with folder entries, not bytes: after ``argv[1]`` files or folders are
#: created, creating one more (a ``.part``, an unnamed file, a folder) fails with ENOSPC.
FULL_FOLDERS_CLIENT = """
import errno, os, sys, threading
left = [int(sys.argv[1])]
lock = threading.Lock()
real_open, real_mkdir = os.open, os.mkdir
TMPFILE = getattr(os, "O_TMPFILE", 0)

def room():
    with lock:
        left[0] -= 1
        if left[0] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

def open_(path, flags, *args, **kwargs):
    if flags & os.O_CREAT or (TMPFILE and flags & TMPFILE == TMPFILE):
        room()
    return real_open(path, flags, *args, **kwargs)

def mkdir(path, *args, **kwargs):
    room()
    return real_mkdir(path, *args, **kwargs)

os.open, os.mkdir = open_, mkdir
from getfile_core.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_no_room_to_create_a_file_ends_the_tree_too(tmp_path: Path) -> None:
    """ENOSPC from a create (not a write) was "cannot create ...", one line per file, exit 8."""
    served, out = tmp_path / "served", tmp_path / "out"
    served.mkdir()
    out.mkdir()
    files = make_tree(served)
    with serve_process(["serve", str(served), "--port", "0"]) as server:
        url = f"getfile://127.0.0.1:{server.port}/"
        full = run_program(
            [sys.executable, "-c", FULL_FOLDERS_CLIENT, "30", "get", "-r", url, "-o", str(out)],
            cwd=PROJECT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 9, full.stderr
    assert len(lines) == 1 and "disk full" in lines[0], full.stderr
    kept = saved(out)
    assert len(kept) < FILES
    assert all(files[rel] == data for rel, data in kept.items()), "a saved file is wrong"


def test_a_file_too_big_for_the_file_system_fails_alone(tmp_path: Path) -> None:
    """EFBIG (FAT32's 4 GiB; here a ``ulimit -f``) fails that file: the tree goes on, exit 8."""
    served, out = tmp_path / "served", tmp_path / "out"
    served.mkdir()
    out.mkdir()
    files = make_tree(served)
    # One rides the loop and the disk thread, one (over SMALL_BODY) a worker thread.
    (served / "d1" / "huge.bin").write_bytes(os.urandom(16 * SIZE))
    (served / "d2" / "huger.bin").write_bytes(os.urandom(1536 * 1024))
    limited = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 4096, 8 * 4096))\n"
        "from getfile_core.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with serve_process(["serve", str(served), "--port", "0"]) as server:
        url = f"getfile://127.0.0.1:{server.port}/"
        done = run_program(
            [sys.executable, "-c", limited, "get", "-r", url, "-o", str(out), "--json"],
            cwd=PROJECT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 8, done.stderr
    assert sorted(line.split(":")[1].strip() for line in lines) == ["d1/huge.bin", "d2/huger.bin"]
    assert all("file too large for this file system" in line for line in lines), done.stderr
    assert saved(out) == files  # every other file
    summary = json.loads(done.stdout)
    assert (summary["files"], summary["failed"]) == (FILES, 2)
