"""Rate limits in the app: one global limit every download shares, and one per transfer.

The client takes one limit per download (``Options.rate_limit``), read as
``chunk(n)`` (how much to move next) and ``reserve(n)`` (how long to wait
after moving it). ``BothLimits`` hands it the global limit and the
transfer's own together, so the slower one wins and either can change while
the download runs (the client reads them on every chunk).
"""

from __future__ import annotations

from getfile_core import RateLimit, human_rate, parse_rate


class BothLimits:
    """Two ``RateLimit``s as one: the smaller chunk, the longer wait."""

    def __init__(self, shared: RateLimit, own: RateLimit) -> None:
        self.shared = shared
        self.own = own

    @property
    def rate(self) -> float | None:
        rates = [r for r in (self.shared.rate, self.own.rate) if r is not None]
        return min(rates) if rates else None

    def chunk(self, preferred: int) -> int:
        # Never more than asked for: RateLimit.chunk rounds a small request up to its
        # 4 KiB minimum, which reads past a body's end (into protocol v2's digest trailer:
        # "server sent more bytes than it announced").
        return min(preferred, self.shared.chunk(preferred), self.own.chunk(preferred))

    def reserve(self, count: int) -> float:
        # Both are charged for the bytes: the shared limit counts every download's.
        return max(self.shared.reserve(count), self.own.reserve(count))


def parse_limit(text: str) -> float | None:
    """``None`` (no limit) for an empty text or ``none``/``off``; else bytes per second.

    Raises ``ValueError`` with a one-line reason (``parse_rate``'s) for anything else.
    """
    if text.strip().lower() in ("", "none", "off"):
        return None
    return parse_rate(text)


def describe_limit(rate: float | None) -> str:
    return "no limit" if rate is None else human_rate(rate)


__all__ = ["BothLimits", "RateLimit", "describe_limit", "parse_limit"]
