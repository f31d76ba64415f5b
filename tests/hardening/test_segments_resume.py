"""A segmented download killed with SIGKILL resumes every range; its ranges record is hostile input.

The ranges record (``NAME.getfile-part.ranges``) says which bytes of a
``.part`` with holes are done. It sits in the destination folder, which
may be shared (``/tmp``), so like the ``.part`` it may have been planted:
a symlink, a hard link, garbage, or a well-formed lie. The first three are
refused with one line before any byte moves; the lie is caught by the
whole-file digest and the ``.part`` removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core.client import ranges
from tests.support import (
    GETFILE,
    MIB,
    assert_one_error_line,
    digest_of,
    run_cli,
    serve_process,
    wait_until_sync,
    write_random,
)
from tests.support.links import KiB, Link, LinkEmulator

SIZE = 16 * MIB + 777
PART = "big.bin.getfile-part"
RECORD = PART + ranges.SUFFIX


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    folder = tmp_path / "served"
    folder.mkdir()
    digest = write_random(folder / "big.bin", SIZE)
    with serve_process(["serve", str(folder), "--port", "0", "-q"]) as server:
        yield server.port, folder / "big.bin", digest


def recorded(dest: Path) -> ranges.Record | None:
    try:
        return ranges.decode((dest / RECORD).read_bytes(), RECORD)
    except (FileNotFoundError, ranges.BadRecord):
        return None  # not written yet, or caught between the temp file and the rename


def done_bytes(record: ranges.Record | None) -> int:
    return 0 if record is None else sum(b - a for a, b in record.done)


def test_sigkill_then_resume_continues_every_range(
    served: tuple[int, Path, str], dest: Path
) -> None:
    port, source, digest = served
    # 1 MiB/s per connection: 4 ranges of 4 MiB take ~4 s, so the kill lands mid-way.
    with LinkEmulator(port, Link(rate=1 * MIB)) as slow:
        argv = [*GETFILE, "get", "--segments", "4", "-o", str(dest)]
        proc = subprocess.Popen(
            [*argv, f"getfile://127.0.0.1:{slow.port}/big.bin"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until_sync(
                lambda: done_bytes(recorded(dest)) >= 3 * MIB, "3 MiB recorded as done", 30
            )
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            assert proc.stderr is not None
            proc.stderr.close()
    record = recorded(dest)
    assert record is not None and record.size == SIZE
    assert len(record.done) >= 2, record  # several ranges, with holes between them
    before = done_bytes(record)
    assert before < SIZE - 4 * MIB, record  # the kill landed mid-way
    # What the record calls done is really on disk.
    data, part = source.read_bytes(), (dest / PART).read_bytes()
    for a, b in record.done:
        assert part[a:b] == data[a:b]

    with LinkEmulator(port) as fast:
        url = f"getfile://127.0.0.1:{fast.port}/big.bin"
        done = run_cli("get", "--resume", "--segments", "4", url, "-o", str(dest), timeout=60)
        fetched = fast.stats().bytes_down
    assert (done.returncode, done.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin"]
    # Only the missing ranges crossed the link again (plus heads, a few KiB).
    assert SIZE - before <= fetched < SIZE - before + 64 * KiB, (before, fetched)


def test_a_plain_resume_of_a_ranged_part_continues_the_ranges(
    served: tuple[int, Path, str], dest: Path
) -> None:
    """``--resume`` without ``--segments``: the record still decides, over one connection."""
    port, source, digest = served
    data = source.read_bytes()
    part = bytearray(SIZE)
    part[: 2 * MIB] = data[: 2 * MIB]
    part[8 * MIB : 10 * MIB] = data[8 * MIB : 10 * MIB]
    (dest / PART).write_bytes(part)
    stat = os.stat(source)
    mtime = stat.st_mtime_ns
    record = ranges.Record(SIZE, mtime, ((0, 2 * MIB), (8 * MIB, 10 * MIB)))
    (dest / RECORD).write_bytes(record.encode())
    with LinkEmulator(port) as relay:
        url = f"getfile://127.0.0.1:{relay.port}/big.bin"
        done = run_cli("get", "--resume", url, "-o", str(dest), timeout=60)
        fetched = relay.stats().bytes_down
    assert (done.returncode, done.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest
    assert SIZE - 4 * MIB <= fetched < SIZE - 4 * MIB + 64 * KiB, fetched


# ---------------------------------------------------------------- a planted or corrupt record


def plant_part(dest: Path) -> None:
    (dest / PART).write_bytes(b"\0" * 1000)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"garbage\n", "not a getfile ranges file"),
        (b"getfile-ranges 1\nsize 10\nmtime -\n5 3\n", "line 4"),
        (b"getfile-ranges 1\nsize 10\nmtime -\n0 4\n2 6\n", "out of order"),
        (b"getfile-ranges 1\nsize 10\nmtime -\n0 40\n", "outside the file"),
        (b"getfile-ranges 1\nsize -1\nmtime -\n", "bad size line"),
        (b"getfile-ranges 1\nsize 10\nmtime -\n\xff\xfe 1\n", "not ASCII"),
        (b"getfile-ranges 1\nsize 10\nmtime -\n" + b"0 1\n" * 40_000, "over 65536 bytes"),
        (b"getfile-ranges 1\nsize 10\nmtime -\nconnections 0\n0 4\n", "connections not"),
        (b"getfile-ranges 1\nsize 10\nmtime -\nconnections 9999\n", "connections not"),
        (b"getfile-ranges 1\nsize 10\nmtime -\nconnections -4\n", "bad connections"),
        (b"getfile-ranges 1\nsize 10\nmtime -\n0 4\nconnections 4\n", "line 5"),
    ],
    ids=[
        "garbage",
        "backwards",
        "overlapping",
        "outside",
        "size",
        "not-ascii",
        "huge",
        "no-connections",
        "many-connections",
        "negative-connections",
        "connections-last",
    ],
)
def test_a_corrupt_record_is_refused_with_one_line(
    served: tuple[int, Path, str], dest: Path, content: bytes, words: str
) -> None:
    port = served[0]
    plant_part(dest)
    (dest / RECORD).write_bytes(content)
    url = f"getfile://127.0.0.1:{port}/big.bin"
    done = run_cli("get", "--resume", "--segments", "4", url, "-o", str(dest))
    assert done.returncode == 8
    line = assert_one_error_line(done.stderr)
    assert "not a valid ranges record" in line and words in line, line
    # Nothing was touched: the .part and the record are as planted.
    assert (dest / PART).read_bytes() == b"\0" * 1000
    assert (dest / RECORD).read_bytes() == content


def test_a_symlinked_record_is_never_followed(
    served: tuple[int, Path, str], dest: Path, tmp_path: Path
) -> None:
    port = served[0]
    plant_part(dest)
    secret = tmp_path / "secret"
    secret.write_bytes(b"getfile-ranges 1\nsize 10\nmtime -\n")
    (dest / RECORD).symlink_to(secret)
    url = f"getfile://127.0.0.1:{port}/big.bin"
    done = run_cli("get", "--resume", "--segments", "4", url, "-o", str(dest))
    assert done.returncode == 8
    assert "is a symlink; refusing to follow it" in assert_one_error_line(done.stderr)
    assert (dest / RECORD).is_symlink()
    assert secret.read_bytes() == b"getfile-ranges 1\nsize 10\nmtime -\n"


def test_a_hard_linked_record_is_refused(
    served: tuple[int, Path, str], dest: Path, tmp_path: Path
) -> None:
    port = served[0]
    plant_part(dest)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"getfile-ranges 1\nsize 10\nmtime -\n")
    os.link(elsewhere, dest / RECORD)
    url = f"getfile://127.0.0.1:{port}/big.bin"
    done = run_cli("get", "--resume", "--segments", "4", url, "-o", str(dest))
    assert done.returncode == 8
    assert "has other hard links" in assert_one_error_line(done.stderr)


def test_a_well_formed_lie_is_caught_by_the_digest(
    served: tuple[int, Path, str], dest: Path, tmp_path: Path
) -> None:
    """A record claiming bytes that are not there: the whole-file digest refuses the file."""
    port, source, _ = served
    (dest / PART).write_bytes(b"\0" * SIZE)
    mtime = os.stat(source).st_mtime_ns
    (dest / RECORD).write_bytes(ranges.Record(SIZE, mtime, ((0, 4 * MIB),)).encode())
    url = f"getfile://127.0.0.1:{port}/big.bin"
    done = run_cli("get", "--resume", "--segments", "4", url, "-o", str(dest))
    assert done.returncode == 7
    assert "digest mismatch" in assert_one_error_line(done.stderr)
    assert sorted(p.name for p in dest.iterdir()) == []  # the untrustworthy .part is gone


def test_overwrite_starts_again_without_reading_the_record(
    served: tuple[int, Path, str], dest: Path
) -> None:
    port, _, digest = served
    plant_part(dest)
    (dest / RECORD).write_bytes(b"garbage\n")
    url = f"getfile://127.0.0.1:{port}/big.bin"
    done = run_cli("get", "--overwrite", "--segments", "4", url, "-o", str(dest))
    assert (done.returncode, done.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin"]
