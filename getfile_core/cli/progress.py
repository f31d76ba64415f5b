"""The CLI's progress bars (rich), imported only when a terminal will show them."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

from getfile_core.address import Target
from getfile_core.client import FetchResult, Progress
from getfile_core.safe_text import printable

#: Columns a file name may take in its bar's line.
NAME_WIDTH = 40


class ProgressDisplay:
    """One bar per download: size, rate and ETA; a spinner when the size is unknown."""

    def __init__(self) -> None:
        self._bars = RichProgress(
            SpinnerColumn(finished_text="[green]✓"),
            # Names come from the command line and the server: never read as markup.
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            # The bars go where the terminal check looked (stderr), never into stdout.
            console=Console(stderr=True),
            transient=False,
            refresh_per_second=8,
        )
        self._tasks: dict[Target, TaskID] = {}

    def __enter__(self) -> ProgressDisplay:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def add(self, target: Target) -> Callable[[Progress], None]:
        name = printable(target.path.rsplit(b"/", 1)[-1] or target.path, limit=NAME_WIDTH)
        task = self._bars.add_task(name, total=None)
        self._tasks[target] = task

        def update(progress: Progress) -> None:
            # What the client waits for ("server is hashing big.iso (40%)", a retry's
            # countdown) replaces the name while it lasts: never a bare spinner.
            note = printable(progress.note, limit=NAME_WIDTH) if progress.note else ""
            self._bars.update(
                task,
                completed=progress.done,
                total=progress.total,
                description=f"{name}: {note}" if note else name,
            )

        return update

    def finish(self, target: Target, result: FetchResult | None) -> None:
        task = self._tasks[target]
        if result is None:
            self._bars.update(task, description="failed", total=1, completed=0)
            self._bars.stop_task(task)
        else:
            self._bars.update(task, total=result.size, completed=result.size)
