"""Byte counts for people, shared by the CLI's summary and the TUI's columns."""

from __future__ import annotations

import re

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


_RATE = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?(?:/s)?", re.I | re.A
)
_RATE_SCALE = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_rate(text: str) -> float:
    """Bytes per second from ``500K``, ``2M``, ``1.5G`` or ``65536``: powers of 1024, as curl's
    ``--limit-rate``. ``KiB``, ``MB`` and a trailing ``/s`` are accepted too.

    Raises ``ValueError`` with a one-line reason for anything else, and for
    zero or less (a limit of nothing would stall every transfer forever).
    """
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a rate: {text!r} (examples: 500K, 2M, 1.5G)")
    value = float(match["number"]) * _RATE_SCALE[match["unit"].lower()]
    if value < 1:
        raise ValueError(f"a rate must be at least 1 byte per second: {text!r}")
    return value


def human_rate(rate: float) -> str:
    """``500 KiB/s``: a rate as people write it back (the inverse of ``parse_rate``)."""
    return f"{human_size(rate)}/s"
