"""The CLI's progress bars (rich), imported only when a terminal will show them.

The rate and the ETA are the library's (``Progress.rate``: bytes over the
last 3 s, sampled every 0.1 s whether bytes came or not), not rich's own
estimate, which is updated only when the count moves: through a 10 s
stall on a 100 KiB/s link rich's column went on saying "96.2 kB/s" and
an ETA frozen at 1:49, then averaged the stall into the next minute. Here
the rate falls to 0 within 3 s of the last byte and the ETA says
``-:--:--``. Sizes are in powers of 1024 (``units``), as ``--limit-rate``
and the summary line are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.progress import (
    Progress as RichProgress,
)
from rich.table import Column, Table
from rich.text import Text

from getfile_core.address import Target
from getfile_core.client.state import RateMeter
from getfile_core.safe_text import printable
from getfile_core.units import human_rate, human_size

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    # Only names for annotations: ``getfile_core.client``'s public API imports asyncio
    # (~30 ms), which neither ``get`` nor ``get -r`` runs.
    from getfile_core.client import FetchResult, Progress
    from getfile_core.client.tree import Tree

#: Columns a file name may take in its bar's line (fewer on a narrow terminal: ``name_width``).
NAME_WIDTH = 40
#: The columns around the name and the bar: mark, amount (two 8-column sizes), rate, ETA
#: and the gaps between the six columns. A narrow terminal takes from the name, then the bar.
FIXED_WIDTH = 1 + 17 + 10 + 8 + 5
#: Columns left free at the end of a bar's line: room for the terminal's ``^C`` echo.
ECHO_ROOM = 2
#: The bar never gets fewer columns than this from a long name.
MIN_BAR = 10


def name_width(columns: int) -> int:
    """The name's share of a line of ``columns``: at 80, 24 (the bar keeps 10+)."""
    return max(8, min(NAME_WIDTH, columns - FIXED_WIDTH - MIN_BAR - 5))


def _fixed(width: int) -> Column:
    return Column(no_wrap=True, width=width, justify="right")


class _Mark(ProgressColumn):
    """A spinner while the download runs, ✓ when it is saved, ✗ when it failed."""

    def __init__(self) -> None:
        super().__init__(table_column=_fixed(1))
        self._spinner = SpinnerColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("failed"):
            return Text("✗", style="red")
        # A tree's bytes are all in while its last file is still verified: ✓ at the end.
        if task.finished and task.fields.get("ended", True):
            return Text("✓", style="green")
        rendered = self._spinner.render(task)
        return rendered if isinstance(rendered, Text) else Text("-")


class _Amount(ProgressColumn):
    """``5.00 MiB/12.0 MiB`` (just the count while the size is unknown: a legacy server)."""

    def __init__(self) -> None:
        super().__init__(table_column=_fixed(17))

    def render(self, task: Task) -> Text:
        if task.fields.get("failed") and not task.completed:
            return Text("")
        done = human_size(task.completed)
        if task.total is None:
            return Text(done, style="progress.download")
        return Text(f"{done}/{human_size(task.total)}", style="progress.download")


class _Rate(ProgressColumn):
    """The library's rate: 0 B/s within 3 s of a stall, not the last rate seen."""

    def __init__(self) -> None:
        super().__init__(table_column=_fixed(10))

    def render(self, task: Task) -> Text:
        if task.finished or task.fields.get("failed"):
            return Text("")
        return Text(human_rate(task.fields.get("rate", 0.0)), style="progress.data.speed")


class _Eta(ProgressColumn):
    """Time left at the current rate; ``-:--:--`` while nothing moves or the size is unknown."""

    def __init__(self) -> None:
        super().__init__(table_column=_fixed(8))

    def render(self, task: Task) -> Text:
        if task.finished or task.fields.get("failed"):
            return Text("")
        eta = task.fields.get("eta")
        if eta is None:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(eta + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class _Bar(BarColumn):
    """rich's bar, but none for a failed download (a stopped bar of unknown size is drawn full)."""

    def render(self, task: Task) -> Text:  # type: ignore[override]
        if task.fields.get("failed"):
            return Text("")
        return super().render(task)  # type: ignore[return-value]


class _Bars(RichProgress):
    """rich's Progress, two columns short of the terminal's width.

    The ``^C`` a terminal echoes lands after the last bar: when it does not
    fit on that line it starts a new one, rich's redraw (up one line per
    bar) lands one line too low, and a copy of the first bar stays above
    (seen at 80 columns in tmux, where the bars filled 79 or 80). Two free
    columns keep the echo on the line.
    """

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        table = super().make_tasks_table(tasks)
        if hasattr(self, "live"):  # not yet while rich's own __init__ draws a first table
            table.width = max(1, self.console.width - ECHO_ROOM)
        return table


class ProgressDisplay:
    """One bar per download: size, rate and ETA; a spinner when the size is unknown."""

    def __init__(self, console: Console | None = None) -> None:
        # The bars go where the terminal check looked (stderr), never into stdout.
        console = console or Console(stderr=True)
        self._width = name_width(console.width)
        # One line per download at any width: the name is cut (…), never wrapped,
        # the numbers keep their columns, and the bar takes what is left.
        name = Column(no_wrap=True, overflow="ellipsis", width=self._width)
        self._bars = _Bars(
            _Mark(),
            # Names come from the command line and the server: never read as markup.
            TextColumn("{task.description}", style="bold", markup=False, table_column=name),
            _Bar(bar_width=None, table_column=Column(ratio=1, no_wrap=True)),
            _Amount(),
            _Rate(),
            _Eta(),
            console=console,
            transient=False,
            refresh_per_second=8,
            expand=True,
        )
        self._tasks: dict[Target, TaskID] = {}
        self._names: dict[Target, str] = {}

    def __enter__(self) -> ProgressDisplay:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def add(self, target: Target) -> Callable[[Progress], None]:
        name = printable(target.path.rsplit(b"/", 1)[-1] or target.path, limit=self._width)
        task = self._bars.add_task(name, total=None, rate=0.0, eta=None)
        self._tasks[target] = task
        self._names[target] = name

        # With a note, the name gives way to it (a third of the column is enough to tell
        # which file it is): "big.iso: retrying in 4 s (2/10): connection reset…".
        short = printable(name, limit=max(8, self._width // 3))

        def update(progress: Progress) -> None:
            # What the client waits for ("server is hashing big.iso (40%)", a retry's
            # countdown) follows the name while it lasts: never a bare spinner.
            note = printable(progress.note, limit=NAME_WIDTH * 2) if progress.note else ""
            self._bars.update(
                task,
                completed=progress.done,
                total=progress.total,
                description=f"{short}: {note}" if note else name,
                rate=progress.rate,
                eta=progress.eta,
            )

        return update

    def finish(self, target: Target, result: FetchResult | None) -> None:
        """The bar's last state: saved (its size), or failed (its name, what it had; the
        reason is the error line above it)."""
        task, name = self._tasks[target], self._names[target]
        if result is None:
            self._bars.update(task, description=f"{name}: failed", failed=True)
            self._bars.stop_task(task)
        else:
            self._bars.update(task, total=result.size, completed=result.size)


#: Characters of one name in ``get -r``'s files in flight, and of the whole list.
FLIGHT_NAME = 30
FLIGHT_CHARS = 400


def tree_bar_width(columns: int) -> int:
    """``get -r``'s bar: 10 columns at 80 (the numbers and a few names come first), 28 at 200."""
    return max(MIN_BAR, min(30, columns // 7))


class TreeDisplay:
    """``get -r``: one line for the whole tree, files done/total, bar, bytes, rate, ETA,
    then as many of the files in flight as the width leaves.

    The columns are ``get``'s: the rate over the last 3 s, sampled every
    tick whether bytes came or not, sizes in powers of 1024, two columns
    free for a ``^C`` echo. The names come last, cut with "…", never
    wrapped: at 80 columns they took the whole line (no bar, no bytes, no
    rate, no ETA), rich's rate froze through a stall, sizes were in MB.
    """

    def __init__(self, console: Console | None = None) -> None:
        console = console or Console(stderr=True)
        numbers = Column(no_wrap=True)
        self._bars = _Bars(
            _Mark(),
            TextColumn("{task.description}", style="bold", markup=False, table_column=numbers),
            _Bar(bar_width=tree_bar_width(console.width), table_column=Column(no_wrap=True)),
            _Amount(),
            _Rate(),
            _Eta(),
            # Names come from the server: never read as markup.
            TextColumn(
                "{task.fields[flight]}",
                markup=False,
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=console,
            transient=False,
            refresh_per_second=4,
            expand=True,
        )
        self._task = self._bars.add_task(
            "listing", total=None, flight="", rate=0.0, eta=None, ended=False
        )
        self._tree: Tree | None = None
        self._meter = RateMeter()

    def __enter__(self) -> TreeDisplay:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.tick()
        tree = self._tree
        if tree is not None:
            result = tree.result
            self._bars.update(self._task, flight="", ended=True)
            if result.failed or result.cancelled or exc[0] is not None:
                self._bars.update(self._task, failed=True)  # ✗: why is a line above
            else:
                self._bars.update(self._task, total=tree.bytes_done, completed=tree.bytes_done)
        self._bars.stop()

    def attach(self, tree: Tree) -> None:
        self._tree = tree

    def tick(self, now: float | None = None) -> None:
        tree = self._tree
        if tree is None:
            return
        done, total = tree.bytes_done, tree.bytes_total
        # Bytes moved in this run: a resumed .part found on disk is not a burst of speed.
        moved = done - tree.bytes_resumed
        rate = self._meter.sample(time.monotonic() if now is None else now, moved)
        eta = max(total - done, 0) / rate if total and rate > 0 else None
        names = ", ".join(printable(name, limit=FLIGHT_NAME) for name in tree.in_flight())
        self._bars.update(
            self._task,
            description=f"files {tree.result.files + tree.result.skipped}/{tree.files_total}",
            completed=done,
            total=total or None,
            rate=rate,
            eta=eta,
            flight=names[:FLIGHT_CHARS],
        )
