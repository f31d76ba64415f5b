"""Short, fixed-width texts for sizes, rates, times and progress bars.

Widths are bounded so a table row never changes shape while a transfer
runs: a row that keeps its shape is redrawn cell by cell, which keeps the
bytes sent to a terminal over SSH small.
"""

from __future__ import annotations

from getfile_core import human_size as size

#: Characters that the VGA font of the Linux console has, as do all others.
FULL, EMPTY = "█", "░"


def rate(per_second: float) -> str:
    return f"{size(per_second)}/s" if per_second > 0 else ""


def duration(seconds: float | None) -> str:
    """``0:05``, ``12:34``, ``1:02:03``; empty when unknown or absurd."""
    if seconds is None or seconds < 0 or seconds >= 100 * 3600:
        return ""
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def bar(fraction: float | None, width: int, tick: int = 0) -> str:
    """A bar of ``width`` cells; with no fraction (size unknown), a block moving with ``tick``."""
    if fraction is None:
        block = min(3, width)
        span = max(width - block, 1)
        position = tick % (2 * span)
        start = position if position < span else 2 * span - position
        return EMPTY * start + FULL * block + EMPTY * (width - block - start)
    filled = int(max(0.0, min(fraction, 1.0)) * width)
    return FULL * filled + EMPTY * (width - filled)


def percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{int(fraction * 100):>3d}%"


def bytes_done(done: int, total: int | None) -> str:
    return size(done) if total is None else f"{size(done)}/{size(total)}"
