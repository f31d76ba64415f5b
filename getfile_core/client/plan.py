"""Which bytes of a segmented download are done, which are being fetched, and from where.

Pure bookkeeping under one lock (no I/O), shared by the connections of one
segmented download (``segments``). The file is cut into ``Piece``s; a
connection owns one piece at a time and moves its ``pos`` forward as the
bytes land in the ``.part``. Everything before a piece's ``pos`` is on disk.

Work stealing: a connection that finishes its piece and finds no free one
splits the piece with the most bytes left in two and takes the back half;
the owner of the front half stops at the new end. So faster connections
(and faster mirrors) end up fetching more, with no rate estimate to tune.
A piece is split only when at least ``MIN_SPLIT`` is left: below that the
new connection's round trips cost more than it saves, and the split point
stays more than one receive (1 MiB) ahead of the owner, so the two never
write the same bytes.
"""

from __future__ import annotations

import threading

from getfile_core._values import Value

MiB = 1024 * 1024
#: A piece with fewer bytes left is never split (see the module's docstring).
MIN_SPLIT = 4 * MiB
#: Split points are rounded to this, so pieces stay page- and block-aligned.
ALIGN = 64 * 1024


class Piece(Value):
    """Bytes ``[start, end)``: ``[start, pos)`` are written, by the source ``writer``."""

    _fields = ("start", "end", "pos", "owner", "writer")
    __slots__ = _fields
    start: int
    end: int
    pos: int
    #: The source whose connection is fetching it now (None: free).
    owner: int | None
    #: The source whose bytes are in ``[start, pos)`` (None: from an earlier run).
    writer: int | None

    def __init__(
        self, start: int, end: int, pos: int, owner: int | None = None, writer: int | None = None
    ) -> None:
        self.start = start
        self.end = end
        self.pos = pos
        self.owner = owner
        self.writer = writer

    @property
    def left(self) -> int:
        return max(0, self.end - self.pos)


class Plan:
    """The pieces of one file of ``size`` bytes; ``done`` lists ranges already on disk."""

    def __init__(
        self,
        size: int,
        done: list[tuple[int, int]],
        pieces: int,
        min_split: int = MIN_SPLIT,
    ) -> None:
        self.size = size
        self.min_split = min_split
        #: Notified whenever a piece is let go (``release``, ``revert``) or ``wake`` is called.
        self._lock = threading.Condition()
        self._pieces = [Piece(a, b, b) for a, b in merge(done)]
        missing = complement(merge(done), size)
        share = max(min_split // 2, -(-sum(b - a for a, b in missing) // max(1, pieces)))
        for a, b in missing:
            while a < b:
                cut = b if b - a <= share + share // 2 else _aligned(a + share, b)
                self._pieces.append(Piece(a, cut, a))
                a = cut
        self._pieces.sort(key=lambda piece: piece.start)

    @classmethod
    def claimed(
        cls, size: int, spans: list[tuple[int, int]], owner: int, min_split: int = MIN_SPLIT
    ) -> tuple[Plan, list[Piece | None]]:
        """A plan whose pieces are exactly ``spans`` (``(offset, length)``), each held by ``owner``.

        For a download whose connections asked for their ranges before the
        size was known (``slice=K/N``): the server cut the file, each
        connection already fetches its span. Returns the plan and, per span,
        its piece (None for an empty span). The spans must tile ``[0, size)``.
        """
        plan = cls(size, [(0, size)], 1, min_split)
        plan._pieces = []
        pieces: list[Piece | None] = []
        for offset, length in spans:
            piece = Piece(offset, offset + length, offset, owner, owner) if length else None
            if piece is not None:
                plan._pieces.append(piece)
            pieces.append(piece)
        plan._pieces.sort(key=lambda piece: piece.start)
        at = 0
        for piece in plan._pieces:
            if piece.start != at:
                raise ValueError(f"spans do not tile the file: a gap or overlap at byte {at}")
            at = piece.end
        if at != size:
            raise ValueError(f"spans do not tile the file: they end at {at}, not {size}")
        return plan, pieces

    def take(self, source: int) -> Piece | None:
        """A free piece for ``source``, or the back half of the largest one; None: nothing left."""
        with self._lock:
            for piece in self._pieces:
                if piece.owner is None and piece.left:
                    piece.owner = source
                    if piece.pos == piece.start:
                        piece.writer = source
                    elif piece.writer != source:
                        return self._split_at(piece, piece.pos, source)
                    return piece
            busy = [p for p in self._pieces if p.owner is not None and p.left >= self.min_split]
            if not busy:
                return None
            victim = max(busy, key=lambda piece: piece.left)
            middle = _aligned(victim.pos + victim.left // 2, victim.end)
            return self._split_at(victim, middle, source)

    def _split_at(self, piece: Piece, at: int, source: int) -> Piece:
        """Give ``[at, end)`` of ``piece`` to ``source`` as a new piece (lock held)."""
        back = Piece(at, piece.end, at, owner=source, writer=source)
        piece.end = at
        if piece.pos == piece.start == at:
            piece.owner = None
        elif piece.owner == source and piece.pos == at:
            piece.owner = None  # a free, partly written piece: its front is done
        self._pieces.append(back)
        self._pieces.sort(key=lambda p: p.start)
        return back

    def advance(self, piece: Piece, count: int) -> None:
        """``count`` more bytes of ``piece`` are on disk."""
        with self._lock:
            piece.pos = min(piece.pos + count, max(piece.end, piece.pos))

    def release(self, piece: Piece) -> None:
        """The owner stops (finished, or gave up): what is left becomes free for others."""
        with self._lock:
            piece.owner = None
            self._lock.notify_all()

    def wait(self, seconds: float) -> None:
        """Until a piece is let go (or ``wake``), at most ``seconds``: a connection with
        nothing to take stays ready, since the owners of the last pieces may still fail."""
        with self._lock:
            self._lock.wait(seconds)

    def wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def revert(self, source: int) -> int:
        """Forget every byte ``source`` wrote (a mirror found lying); returns how many."""
        with self._lock:
            lost = 0
            for piece in self._pieces:
                if piece.writer == source and piece.pos > piece.start:
                    lost += piece.pos - piece.start
                    piece.pos = piece.start
                    piece.writer = None
            self._lock.notify_all()
            return lost

    def done_ranges(self) -> list[tuple[int, int]]:
        """The written ranges, merged and sorted."""
        with self._lock:
            return merge([(p.start, p.pos) for p in self._pieces if p.pos > p.start])

    def done_bytes(self) -> int:
        with self._lock:
            return sum(p.pos - p.start for p in self._pieces)

    def prefix(self) -> int:
        """How many bytes from the start are written without a gap."""
        ranges = self.done_ranges()
        return ranges[0][1] if ranges and ranges[0][0] == 0 else 0

    def complete(self) -> bool:
        return self.done_bytes() == self.size

    def settled(self) -> bool:
        """Complete, and no connection holds a piece (one still might take its bytes back)."""
        with self._lock:
            done = sum(p.pos - p.start for p in self._pieces) == self.size
            return done and all(p.owner is None for p in self._pieces)


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-empty, non-touching ranges covering the same bytes."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def complement(done: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The ranges of ``[0, size)`` not in ``done`` (merged)."""
    gaps, at = [], 0
    for a, b in done:
        if a > at:
            gaps.append((at, a))
        at = max(at, b)
    if at < size:
        gaps.append((at, size))
    return gaps


def _aligned(at: int, end: int) -> int:
    return min(end, -(-at // ALIGN) * ALIGN)
