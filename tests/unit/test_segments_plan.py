"""The bookkeeping of segmented downloads, without sockets: pieces, stealing, the ranges record."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from getfile_core.client import ranges, segments, slices
from getfile_core.client.plan import ALIGN, MIN_SPLIT, Plan, complement, merge

MiB = 1024 * 1024


def test_a_fresh_plan_cuts_the_file_into_equal_aligned_pieces() -> None:
    plan = Plan(64 * MiB, [], 4)
    pieces = [plan.take(0) for _ in range(4)]
    assert [(p.start, p.end) for p in pieces if p] == [
        (0, 16 * MiB),
        (16 * MiB, 32 * MiB),
        (32 * MiB, 48 * MiB),
        (48 * MiB, 64 * MiB),
    ]
    assert all(p is not None and p.start % ALIGN == 0 for p in pieces)


def test_a_small_file_gets_fewer_pieces_than_connections() -> None:
    plan = Plan(5 * MiB, [], 8)
    taken = [plan.take(i) for i in range(8)]
    assert sum(p is not None for p in taken) == 2  # pieces of at least MIN_SPLIT / 2


def test_a_claimed_plan_is_exactly_the_slices_each_held_by_its_connection() -> None:
    # What a sliced start builds: the server cut the file, every piece is being fetched.
    spans = [(0, 5 * MiB), (5 * MiB, 5 * MiB), (10 * MiB, 0), (10 * MiB, 0)]
    plan, pieces = Plan.claimed(10 * MiB, spans, 0)
    assert [(p.start, p.end) if p else None for p in pieces] == [
        (0, 5 * MiB),
        (5 * MiB, 10 * MiB),
        None,
        None,
    ]
    first, second = pieces[0], pieces[1]
    assert first is not None and second is not None
    assert plan.take(0) is not None  # the largest held piece is split: 5 MiB >= MIN_SPLIT
    plan.advance(first, first.end - first.start)
    assert plan.prefix() == first.end and not plan.complete()
    plan.release(second)  # its connection failed: another takes it whole
    taken = plan.take(0)
    assert taken is second and taken.owner == 0


def test_the_slice_floor_keeps_the_one_connection_threshold() -> None:
    # Under MIN_SEGMENTED a file is one piece: the floor is half of it.
    assert slices.FLOOR * 2 == segments.MIN_SEGMENTED


def test_claimed_spans_must_tile_the_file() -> None:
    for spans in (
        [(0, 4), (5, 5)],  # a gap
        [(0, 6), (5, 5)],  # an overlap
        [(0, 5), (5, 4)],  # short of the size
    ):
        with pytest.raises(ValueError, match="do not tile"):
            Plan.claimed(10, spans, 0)


def test_an_idle_connection_steals_the_back_half_of_the_largest_piece() -> None:
    plan = Plan(32 * MiB, [], 2)
    first, second = plan.take(0), plan.take(0)
    assert first is not None and second is not None
    plan.advance(first, 16 * MiB)  # the first piece is done
    plan.advance(second, 2 * MiB)
    plan.release(first)
    stolen = plan.take(1)
    assert stolen is not None
    # The victim keeps [18, 25) MiB, the thief gets [25, 32) MiB (aligned).
    assert second.end == stolen.start and stolen.end == 32 * MiB
    assert stolen.start - second.pos >= MIN_SPLIT // 2 - ALIGN
    assert stolen.writer == 1 and second.writer == 0


def test_nothing_is_split_below_the_minimum() -> None:
    plan = Plan(8 * MiB, [], 1)
    only = plan.take(0)
    assert only is not None
    plan.advance(only, 8 * MiB - MIN_SPLIT + 1)
    assert plan.take(1) is None


def test_a_released_half_written_piece_is_continued_by_another_source() -> None:
    plan = Plan(16 * MiB, [], 1)
    piece = plan.take(0)
    assert piece is not None
    plan.advance(piece, 3 * MiB)
    plan.release(piece)  # source 0 gave up
    rest = plan.take(1)
    assert rest is not None
    assert (rest.start, rest.end, rest.writer) == (3 * MiB, 16 * MiB, 1)
    # Bytes stay attributed to who wrote them: reverting source 1 keeps source 0's.
    plan.advance(rest, MiB)
    assert plan.revert(1) == MiB
    assert plan.done_ranges() == [(0, 3 * MiB)]


def test_a_resumed_plan_fetches_only_the_gaps() -> None:
    plan = Plan(20 * MiB, [(0, 4 * MiB), (10 * MiB, 12 * MiB)], 2)
    assert plan.done_bytes() == 6 * MiB
    assert plan.prefix() == 4 * MiB
    wanted = []
    while (piece := plan.take(0)) is not None:
        wanted.append((piece.start, piece.end))
        plan.advance(piece, piece.end - piece.start)
        plan.release(piece)
    assert merge(wanted) == [(4 * MiB, 10 * MiB), (12 * MiB, 20 * MiB)]
    assert plan.complete()


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), max_size=20))
def test_merge_and_complement_partition_the_file(raw: list[tuple[int, int]]) -> None:
    done = merge([(min(a, b), max(a, b)) for a, b in raw])
    gaps = complement(done, 1000)
    covered = sorted(done + gaps)
    assert sum(b - a for a, b in covered) == 1000
    assert all(x[1] <= y[0] for x, y in itertools.pairwise(covered))


# ---------------------------------------------------------------- the record


def test_a_record_survives_encoding() -> None:
    record = ranges.Record(10 * MiB, 1_700_000_000_123_456_789, ((0, 5), (9, 10 * MiB)))
    assert ranges.decode(record.encode(), "r") == record
    unknown = ranges.Record(7, None, ())
    assert ranges.decode(unknown.encode(), "r") == unknown


@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_valid_record_or_one_refusal(data: bytes) -> None:
    try:
        record = ranges.decode(data, "r")
    except ranges.BadRecord as error:
        assert "\n" not in str(error)
        return
    ends = [0]
    for a, b in record.done:
        assert ends[-1] <= a < b <= record.size
        ends.append(b)


@pytest.mark.parametrize(
    "line",
    ["+1 5", "1 5 7", "1", "٣ 5", "0x1 5", "1  5", " 1 5", "1 99999999999999999999"],
)
def test_range_lines_are_plain_ascii_digits_only(line: str) -> None:
    data = f"getfile-ranges 1\nsize 100\nmtime -\n{line}\n".encode()
    with pytest.raises(ranges.BadRecord):
        ranges.decode(data, "r")
