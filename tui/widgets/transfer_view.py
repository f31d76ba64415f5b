"""What a transfer's row says, as plain strings: no widgets, so each rule reads (and is
tested) on its own, and the row only puts the strings in its cells.

A row shows either its *words* (why it failed before any byte came, a retry's
countdown, what the client waits for) or its *numbers* (bar, bytes, rate, ETA;
on a failed or retrying row the bar stays where it stopped, with a short
word or the countdown where the rate was).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tui import format as fmt
from tui.text import retry_words
from tui.transfers import State, Transfer, measured_rate


def short_reason(reason: str) -> str:
    """A word or two for a failed row; the log has the whole reason."""
    text = reason.lower()
    for needles, word in (
        (("closed", "reset", "lost", "broken pipe", "eof"), "link lost"),
        (("timed out", "timeout", "stall", "silent"), "timed out"),
        (("digest", "checksum", "mismatch"), "bad digest"),
        (("no space", "disk full", "quota"), "disk full"),
        (("permission", "forbidden", "denied"), "forbidden"),
        (("no such file", "not found", "404"), "not found"),
        (("refused",), "refused"),
    ):
        if any(needle in text for needle in needles):
            return word
    return "error"


def state_words(transfer: Transfer) -> str:
    """The State cell: the state, or how many connections move bytes when more than one."""
    progress = transfer.progress
    connections = progress.connections if progress is not None else 0
    if transfer.state is State.DOWNLOADING and connections > 1:
        return f"dl {connections} conns"
    return str(transfer.state)


def got_bytes(transfer: Transfer) -> bool:
    progress = transfer.progress
    return progress is not None and progress.done > 0


def row_words(transfer: Transfer, now: float) -> str:
    """What the row says instead of its numbers: why it failed, when it retries (and
    why), what it waits for; "" when the numbers say it all. ``now``: ``time.monotonic``."""
    if transfer.state is State.FAILED and not got_bytes(transfer):
        return transfer.error
    notice = transfer.retry
    if transfer.state is State.RETRYING and notice is not None and not got_bytes(transfer):
        left = math.ceil(transfer.retry_left(now))
        reason = retry_words(notice.reason)
        return f"retrying in {left} s ({notice.attempt}/{notice.attempts}): {reason}"
    if transfer.state in (State.CONNECTING, State.WAITING) and transfer.note:
        return transfer.note
    return ""


@dataclass(frozen=True)
class Numbers:
    """The numeric cells: ``bar(width)`` draws the Progress cell (None: empty)."""

    bar: Callable[[int], str] | None
    bytes: str
    rate: str
    eta: str


NO_NUMBERS = Numbers(None, "", "", "")
#: The Rate of a finished row that moved too little to measure one.
NO_RATE = "—"


def retry_numbers(transfer: Transfer, now: float) -> tuple[str, str]:
    """A row that got bytes and waits to retry: ``retry 4 s`` and ``2/10`` in Rate and
    ETA, the bar where it stopped. The whole row used to turn into "retrying in 4 s
    (2/10): connection closed after 3124679 of 41943040 bytes (kept…", so through a
    link that resets every few MB the bar vanished for a second every few seconds."""
    notice = transfer.retry
    if notice is None:
        return "", ""
    left = math.ceil(transfer.retry_left(now))
    return f"retry {left} s", f"{notice.attempt}/{notice.attempts}"


def bar_drawing(transfer: Transfer, tick: Callable[[], int]) -> Callable[[int], str] | None:
    """The bar for the row's width; ``tick()`` moves a legacy server's block one step."""
    progress, state = transfer.progress, transfer.state
    if progress is None:
        return None
    fraction = 1.0 if state is State.DONE else progress.fraction
    moving = state in (State.DOWNLOADING, State.VERIFYING)
    if moving and fraction is None:  # size unknown (legacy server): a block that moves
        step = tick()
        return lambda width: fmt.bar(None, width, step) + "  ?? "
    if fraction is not None and (moving or transfer.done_or_stopped or state is State.RETRYING):
        shown = fraction
        return lambda width: fmt.bar(shown, width) + " " + fmt.percent(shown)
    return None


def numbers(transfer: Transfer, now: float, tick: Callable[[], int]) -> Numbers:
    """Bar, bytes, rate and ETA as the row shows them (``now``: ``time.monotonic``)."""
    progress, state = transfer.progress, transfer.state
    if progress is None:
        return NO_NUMBERS
    bar = bar_drawing(transfer, tick)
    moving = state in (State.DOWNLOADING, State.VERIFYING)
    started = progress.done > 0 or moving or state is State.DONE
    done = fmt.bytes_done(progress.done, progress.total) if started else ""
    if state is State.FAILED:  # the bar stays where it stopped; the log says why in full
        return Numbers(bar, done, short_reason(transfer.error), "")
    if state is State.RETRYING:  # the bar stays too; the countdown and the attempt
        return Numbers(bar, done, *retry_numbers(transfer, now))
    if state is State.DONE:
        return Numbers(bar, done, finished_rate(transfer), "")
    running = state in (State.CONNECTING, State.DOWNLOADING, State.VERIFYING)
    rate = fmt.rate(transfer.rate) if running else ""
    return Numbers(bar, done, rate, fmt.duration(transfer.eta) if running else "")


def finished_rate(transfer: Transfer) -> str:
    """A finished row's average rate, or ``NO_RATE`` when too little moved, or too
    quickly, to measure one (``measured_rate``: under 64 KiB or 0.2 s)."""
    rate = measured_rate(transfer.progress)
    return NO_RATE if rate is None else fmt.rate(rate)
