"""Rows run in interleaved rounds: each round runs every row once, in a rotated order.

Shared by the folders and parallel sections. A row is a label and a
function that runs one timed client (or a whole script of them) and
says what went wrong; a row that cannot run (a peer not installed, a
getfile option not there yet) carries the reason instead and is shown
with it, never dropped and never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.stats import median, spread


@dataclass(frozen=True)
class Run:
    """One timed run of a row: wall seconds, what went wrong ("" = verified), connections."""

    seconds: float
    problem: str = ""
    connections: int = 0


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    #: Runs once, timed; returns what happened. Never raises for a failed client.
    run: Callable[[], Run]
    #: Why this row is not measured ("" = it is).
    absent: str = ""


@dataclass
class Outcome:
    row: Row
    runs: list[Run] = field(default_factory=list)

    @property
    def good(self) -> list[float]:
        return [run.seconds for run in self.runs if not run.problem]

    @property
    def seconds(self) -> float:
        """Median seconds of the verified runs; NaN when none (or not measured)."""
        return median(self.good)

    @property
    def problems(self) -> list[str]:
        return [run.problem for run in self.runs if run.problem]

    def cell(self) -> str:
        """``median (min-max)`` seconds, or why there is no figure."""
        if self.row.absent:
            return self.row.absent
        if not self.good:
            return "failed"
        return spread(self.good, 2)

    def verified(self) -> str:
        if self.row.absent:
            return "-"
        return f"{len(self.good)}/{len(self.runs)}"


def interleave(
    rows: Sequence[Row],
    rounds: int,
    warmup: int,
    progress: Callable[[str], None],
    section: str,
) -> list[Outcome]:
    """``warmup`` uncounted rounds, then ``rounds`` counted ones, order rotating each round."""
    outcomes = {row.key: Outcome(row) for row in rows}
    live = [row for row in rows if not row.absent]
    for number in range(warmup + rounds):
        began = time.monotonic()
        turn = number % max(1, len(live))
        for row in live[turn:] + live[:turn]:
            run = row.run()
            if number >= warmup:
                outcomes[row.key].runs.append(run)
            elif run.problem:
                progress(f"{section}: warm-up of {row.key} failed: {run.problem[:200]}")
        kind = "warm-up round" if number < warmup else f"round {number - warmup + 1}/{rounds}"
        progress(f"{section}: {kind} took {time.monotonic() - began:.0f} s")
    return [outcomes[row.key] for row in rows]


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when either is missing or the denominator is 0."""
    if numerator != numerator or denominator != denominator or denominator == 0:
        return float("nan")
    return numerator / denominator


def cell(text: str) -> str:
    """Client text in a Markdown cell: one line, no pipes, no markup surprises."""
    return text.replace("|", "/").replace("`", "'").replace("\n", " ")
