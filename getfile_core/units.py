"""Byte counts for people, shared by the CLI's summary and the TUI's columns."""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(count: float) -> str:
    """``13 B``, ``1.21 KiB``, ``12.1 MiB``, ``121 GiB``: at most 8 characters.

    Bounded width keeps a TUI row's shape steady while a transfer runs (so it
    is redrawn cell by cell, cheap over SSH) and keeps CLI lines aligned.
    """
    if count < 1024:
        return f"{int(count)} B"
    for unit in UNITS[1:]:
        count /= 1024
        if count < 999.5 or unit == UNITS[-1]:
            if count < 9.995:
                return f"{count:.2f} {unit}"
            if count < 99.95:
                return f"{count:.1f} {unit}"
            return f"{count:.0f} {unit}"
    raise AssertionError("unreachable")
