"""A selection of files and folders downloaded as one tree, on one grouped row.

``download_tree`` blocks, so it runs in a thread of the loop's executor; its
callbacks come from the tree's worker threads and reach the app only through
``loop.call_soon_threadsafe`` (the row's counters) or ``post`` (a log line;
Textual's ``post_message`` is thread-safe). Cancelling the task that awaits
it calls ``Tree.cancel()`` and waits (bounded) for the thread to finish, so
partial files are closed before the row says "cancelled". A retry reruns
the tree, which continues it: identical files are skipped, ``.part`` files
resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable

from getfile_core import GetfileError, Options, Progress, Target
from getfile_core.client import Tree, TreeOptions, TreeResult, download_tree
from tui import format as fmt
from tui.groups import Group, tree_progress
from tui.messages import TransferProgress
from tui.reports import TransferReports
from tui.text import in_app_words, printable
from tui.transfers import State, Transfer

#: Seconds a cancelled tree may take to close its files before the row says so anyway.
CANCEL_WAIT = 10.0
#: Connections a tree uses (``get -r -j``'s default).
TREE_JOBS = 4

TreeRunner = Callable[..., TreeResult]


class GroupRuns:
    """Run, cancel and rerun grouped downloads; report through ``TransferReports``."""

    def __init__(self, report: TransferReports, runner: TreeRunner = download_tree) -> None:
        self.report = report
        self.runner = runner

    async def run(self, transfer: Transfer, options: Options) -> None:
        group = transfer.group
        assert group is not None
        group.reset()
        loop = asyncio.get_running_loop()
        tree_options = TreeOptions(
            jobs=TREE_JOBS, select=frozenset(os.fsdecode(n) for n in group.names)
        )
        target = Target(transfer.target.host, transfer.target.port, group.folder)
        call = functools.partial(
            self.runner,
            target,
            transfer.folder,
            options,
            tree_options,
            *self._callbacks(transfer, group, loop),
        )
        self.report.changed(transfer)
        self.report.log(f"{transfer.name}: downloading {describe_names(group.names)}")
        future = loop.run_in_executor(None, call)
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            self._cancel(group)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(future), CANCEL_WAIT)
            self.cancelled(transfer)
            raise
        except GetfileError as error:
            self.report.failed(transfer, error.message)
            return
        except OSError as error:
            self.report.failed(transfer, str(error))
            return
        finally:
            group.settle()
        tree = group.tree
        if isinstance(tree, Tree):
            group.files_total = tree.files_total
        self.finish(transfer, result)

    def _callbacks(
        self, transfer: Transfer, group: Group, loop: asyncio.AbstractEventLoop
    ) -> tuple[Callable[[str, str], None], Callable[[Tree], None], Callable[[], None]]:
        """``download_tree``'s on_line, on_start and on_tick, called from its threads."""
        began = time.monotonic()

        def on_line(subject: str, text: str) -> None:
            self.report.log(f"{transfer.name}: {subject}: {in_app_words(text)}", "warn")

        def on_start(tree: Tree) -> None:
            group.tree = tree
            tree.on_file = group.file_event
            if group.cancelled:
                tree.cancel()

        def on_tick() -> None:
            tree = group.tree
            if isinstance(tree, Tree):
                with tree.lock:
                    group.files_total = tree.files_total
                    total = tree.bytes_total
                done, elapsed = tree.bytes_done, time.monotonic() - began
                snapshot = tree_progress(done, total or None, elapsed, State.DOWNLOADING)
                moved = done - tree.bytes_resumed
                loop.call_soon_threadsafe(self._progress, transfer, snapshot, moved)

        return on_line, on_start, on_tick

    def _progress(self, transfer: Transfer, snapshot: Progress, moved: int) -> None:
        """A tick from the tree's thread, on the loop; one that arrives late changes nothing."""
        if not transfer.active or transfer.group is None:
            return
        transfer.group.sample(snapshot.elapsed, moved)
        # Not ``report.progress``: its "connected, SIZE" line would give a size the
        # listing has not finished adding up.
        if transfer.observe(snapshot) is None:
            self.report.post(TransferProgress(transfer))
        else:
            self.report.changed(transfer)

    def _cancel(self, group: Group) -> None:
        group.cancelled = True
        tree = group.tree
        if isinstance(tree, Tree):
            tree.cancel()

    def cancelled(self, transfer: Transfer) -> None:
        transfer.stop()
        self.report.changed(transfer)
        self.report.log(
            f"{transfer.name}: cancelled; partial files kept, Retry continues the tree", "warn"
        )

    def finish(self, transfer: Transfer, result: TreeResult) -> None:
        group = transfer.group
        assert group is not None
        group.files_total = max(group.files_total, result.files + result.skipped + result.failed)
        if result.cancelled:
            self.cancelled(transfer)
            return
        summary = tree_summary(result)
        if result.failed or result.kept:
            self.report.failed(transfer, summary)
            return
        total = transfer.progress.total if transfer.progress is not None else None
        done = total if total is not None else result.bytes
        average = result.bytes / result.seconds if result.seconds > 0 else 0.0
        final = tree_progress(done, done, result.seconds, State.DONE, average)
        transfer.finish(transfer.folder, final, legacy=False)
        self.report.changed(transfer)
        self.report.log(f"{transfer.name}: saved in {transfer.folder}: {summary}", "ok")


def tree_summary(result: TreeResult) -> str:
    """One line: what moved, what was already there, what went wrong."""
    words = [f"{result.files} file(s) fetched ({fmt.size(result.bytes)})"]
    if result.skipped:
        words.append(f"{result.skipped} already there")
    if result.kept:
        words.append(f"{result.kept} local file(s) differ, kept")
    if result.failed:
        words.append(f"{result.failed} failed (the log says why; Retry continues)")
    words.append(f"{result.seconds:.1f} s")
    return ", ".join(words)


def describe_names(names: tuple[bytes, ...]) -> str:
    shown = ", ".join(printable(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def group_label(names: tuple[bytes, ...]) -> str:
    """The row's name: the one item's name, else how many."""
    return printable(names[0]) if len(names) == 1 else f"{len(names)} items"


__all__: list[str] = ["GroupRuns", "group_label", "tree_summary"]
