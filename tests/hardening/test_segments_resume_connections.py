"""A plain ``--resume`` of a segmented ``.part`` goes on as fast as it started.

Found by hand: ``get --segments 4`` cut at 2 MiB, then ``get --resume``
continued every range, but over one connection (81.5 KiB/s, ETA 1:32,
where four connections would take ~0:26 on a link capping each one). The
ranges record now names the connections it was started with; without
``--segments`` a resume uses one per unfinished range, up to that count.
An explicit ``--segments N`` still decides. Connections are counted at
the relay: the most open at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from getfile_core.client import ranges
from getfile_core.client.segments import resume_count
from tests.support import MIB, digest_of, run_cli, serve_process, write_random
from tests.support.links import Link, LinkEmulator

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


def cut_segmented_part(port: int, dest: Path) -> ranges.Record:
    """``get --segments 4`` through a link that resets every connection after 1 MiB: each
    of the four slices stops early, and the ``.part`` and its record stay."""
    with LinkEmulator(port, Link(reset_every=MIB)) as cutting:
        url = f"getfile://127.0.0.1:{cutting.port}/big.bin"
        done = run_cli("get", "--segments", "4", "--retries", "0", url, "-o", str(dest))
    assert done.returncode == 12, done.stderr
    record = ranges.decode((dest / RECORD).read_bytes(), RECORD)
    assert record.connections == 4, record
    return record


def holes(record: ranges.Record) -> int:
    ends = [0] + [b for _, b in record.done]
    starts = [a for a, _ in record.done] + [record.size]
    return sum(1 for end, start in zip(ends, starts, strict=True) if start > end)


def resume_through_a_capped_link(port: int, dest: Path, *flags: str) -> int:
    """The most connections open at once during a ``--resume``. 4 MiB/s per connection, as a
    server that caps each one: a range of ~3 MiB takes ~0.75 s, so ranges fetched side by
    side overlap, and ranges fetched in turn do not (but the head's connection, or the last
    range's, may still be closing as the next one opens: one more)."""
    with LinkEmulator(port, Link(rate=4 * MIB)) as capped:
        url = f"getfile://127.0.0.1:{capped.port}/big.bin"
        done = run_cli("get", "--resume", *flags, url, "-o", str(dest), timeout=60)
        most = capped.stats().most_at_once
    assert (done.returncode, done.stderr) == (0, "")
    return most


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([], lambda unfinished: unfinished), (["--segments", "1"], lambda _: 1)],
    ids=["as-started", "explicit-one"],
)
def test_a_plain_resume_goes_on_over_as_many_connections_as_it_started_with(
    served: tuple[int, Path, str], dest: Path, flags: list[str], expected: Callable[[int], int]
) -> None:
    port, _, digest = served
    record = cut_segmented_part(port, dest)
    assert holes(record) == 4, record  # each slice stopped at its first MiB
    most = resume_through_a_capped_link(port, dest, *flags)
    assert digest_of(dest / "big.bin") == digest
    assert expected(4) <= most <= expected(4) + 1, (most, record)


def test_an_old_record_without_its_connections_still_resumes_one_per_hole(
    served: tuple[int, Path, str], dest: Path
) -> None:
    """A record written before it named its connections loads, and goes on over one
    connection per unfinished range (3 here)."""
    port, source, digest = served
    data = source.read_bytes()
    part = bytearray(SIZE)
    part[: 2 * MIB] = data[: 2 * MIB]
    part[8 * MIB : 10 * MIB] = data[8 * MIB : 10 * MIB]
    part[12 * MIB : 13 * MIB] = data[12 * MIB : 13 * MIB]
    (dest / PART).write_bytes(part)
    old = f"getfile-ranges 1\nsize {SIZE}\nmtime {os.stat(source).st_mtime_ns}\n"
    old += f"0 {2 * MIB}\n{8 * MIB} {10 * MIB}\n{12 * MIB} {13 * MIB}\n"
    (dest / RECORD).write_bytes(old.encode())
    assert ranges.decode(old.encode(), RECORD).connections is None
    assert 3 <= resume_through_a_capped_link(port, dest) <= 4
    assert digest_of(dest / "big.bin") == digest


def test_the_count_is_one_per_hole_up_to_the_count_it_started_with() -> None:
    done = ((0, 10), (20, 30), (40, 50))
    assert resume_count(ranges.Record(100, 7, done, 8), 100, 7) == 3  # 10-20, 30-40, 50-100
    assert resume_count(ranges.Record(100, 7, done, 2), 100, 7) == 2
    assert resume_count(ranges.Record(50, 7, done, 8), 50, 7) == 2  # nothing after 50
    assert resume_count(ranges.Record(100, 7, ((0, 100),), 8), 100, 7) == 1
    assert resume_count(ranges.Record(100, 7, done, 6), 100, 8) == 6  # changed: all again
    many = tuple((i * 4, i * 4 + 2) for i in range(100))
    assert resume_count(ranges.Record(400, 7, many), 400, 7) == 8  # an old record: at most 8
    assert resume_count(ranges.Record(400, 7, many, 64), 400, 7) == 32  # never past 32
