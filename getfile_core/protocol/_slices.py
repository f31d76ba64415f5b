"""``slice=K/N``: the K-th of N pieces of a file whose size the client does not know yet.

A segmented download used to spend a round trip before its ranges: the
first head gave the size, and only then could the other connections ask
for ``offset=A length=L``. With a slice every connection asks at once, and
the server, which knows the size, cuts ``[0, size)`` by one rule that both
ends compute (``Slice.span``): the head's ``offset`` and ``length`` are
the rule's answer, so a client checks them exactly, and N slices of one
size cover the file with no gap and no overlap.

``floor=F``: no piece is smaller than F bytes (except when the whole file
is); slices beyond the pieces the floor allows are empty, so a client
that asks 8 connections for a 1 KiB file gets it whole on slice 0 and 7
empty answers, not 8 answers of 128 bytes.
"""

from __future__ import annotations

from getfile_core.errors import ProtocolError

#: Most slices one file may be cut into (a client opens one connection per slice).
MAX_SLICES = 1024
#: Largest floor (and any byte count on the wire): 19 digits.
MAX_FLOOR = 2**63 - 1


class Slice:
    """``slice=index/count floor=floor`` of a version-2 GET (immutable, hashable)."""

    __slots__ = ("count", "floor", "index")

    def __init__(self, index: int, count: int, floor: int = 1) -> None:
        if not 1 <= count <= MAX_SLICES:
            raise ProtocolError(f"a file is cut into 1 to {MAX_SLICES} slices, not {count}")
        if not 0 <= index < count:
            raise ProtocolError(f"slice {index} of {count} does not exist (0 to {count - 1})")
        if not 1 <= floor <= MAX_FLOOR:
            raise ProtocolError("a slice's floor is 1 byte or more")
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "floor", floor)

    index: int
    count: int
    floor: int

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Slice cannot be changed")

    def pieces(self, size: int) -> int:
        """How many pieces a ``size``-byte file is cut into (the other slices are empty)."""
        return min(self.count, max(1, size // self.floor))

    def span(self, size: int) -> tuple[int, int]:
        """``(offset, length)`` of this slice of a ``size``-byte file: THE rule.

        With ``p = pieces(size)``, slice ``k < p`` is ``[size*k//p,
        size*(k+1)//p)``; a slice ``k >= p`` is empty, at the end
        (``offset = size, length = 0``).
        """
        pieces = self.pieces(size)
        if self.index >= pieces:
            return size, 0
        start = size * self.index // pieces
        return start, size * (self.index + 1) // pieces - start

    def words(self) -> list[bytes]:
        """The request's parameters: ``slice=K/N`` and, unless 1, ``floor=F``."""
        words = [b"slice=%d/%d" % (self.index, self.count)]
        if self.floor != 1:
            words.append(b"floor=%d" % self.floor)
        return words

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Slice):
            return NotImplemented
        return (self.index, self.count, self.floor) == (other.index, other.count, other.floor)

    def __hash__(self) -> int:
        return hash((Slice, self.index, self.count, self.floor))

    def __repr__(self) -> str:
        return f"Slice({self.index}, {self.count}, floor={self.floor})"


def parse_slice(value: bytes, floor: bytes | None) -> Slice:
    """``K/N`` (and ``F`` if the line had ``floor=``) from a request line, or ProtocolError."""
    index, sep, count = value.partition(b"/")
    if not sep or not _digits(index, 4) or not _digits(count, 4):
        raise ProtocolError("slice takes INDEX/COUNT (decimal, at most 4 digits each)")
    if floor is not None and not _digits(floor, 19):
        raise ProtocolError("floor is not a non-negative integer")
    return Slice(int(index), int(count), 1 if floor is None else int(floor))


def _digits(word: bytes, most: int) -> bool:
    # ASCII [0-9] only: bytes.isdigit() is ASCII-only, as int() must not see other digits.
    return 0 < len(word) <= most and word.isdigit()
