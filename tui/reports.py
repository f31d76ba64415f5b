"""What the download controller says: each outcome written to its ``Transfer``, then told.

Every report is the same two steps: the ``Transfer``'s own method records
the new state (the only writer of its ``Phase``), then a message goes up
(``TransferChanged`` for the row, ``LogLine`` for the log). Kept apart from
``DownloadController`` so the controller holds the rules (conflicts,
tokens, legacy servers, retry) and this module holds the words.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from textual.message import Message

from getfile_core import PART_SUFFIX, FetchResult, Progress, RetryNotice
from tui import format as fmt
from tui.messages import LogLine, TransferChanged, TransferProgress
from tui.text import in_app_words, retry_words
from tui.transfers import State, Transfer


class TransferReports:
    """Record an outcome on a ``Transfer`` and post what the row and the log show."""

    def __init__(self, post: Callable[[Message], object], legacy_servers: set[str]) -> None:
        self.post = post
        #: The controller's: a server seen answering the book's way is remembered there.
        self.legacy_servers = legacy_servers

    def log(self, text: str, level: str = "info") -> None:
        self.post(LogLine(text, level))

    def changed(self, transfer: Transfer) -> None:
        self.post(TransferChanged(transfer))

    def progress(self, transfer: Transfer, progress: Progress) -> None:
        """Called in the event loop at most every ``PROGRESS_INTERVAL``."""
        before = transfer.observe(progress)
        if before is None:
            self.post(TransferProgress(transfer))
            return
        self.changed(transfer)
        if transfer.state is State.DOWNLOADING and before is not State.DOWNLOADING:
            self._connected(transfer, progress)

    def retrying(self, transfer: Transfer, notice: RetryNotice, now: float) -> None:
        """Called on the event loop before each backoff wait of ``fetch``."""
        transfer.retrying(notice, now)
        self.changed(transfer)
        self.log(
            f"{transfer.name}: retrying in {notice.delay:g} s "
            f"({notice.attempt}/{notice.attempts}): {retry_words(notice.reason)}",
            "warn",
        )

    def _connected(self, transfer: Transfer, progress: Progress) -> None:
        if transfer.legacy:
            self.legacy_servers.add(transfer.where)
            self.log(
                f"{transfer.name}: connected to {transfer.where}: legacy server detected "
                "(no size, no checksum, no resume)",
                "warn",
            )
        else:
            size = f", {fmt.size(progress.total)}" if progress.total is not None else ""
            self.log(f"{transfer.name}: connected to {transfer.where}{size}")

    def done(self, transfer: Transfer, result: FetchResult) -> None:
        fresh = result.size - result.resumed_from
        average = fresh / result.seconds if result.seconds > 0 else 0.0
        final = Progress("done", result.size, result.size, average, result.seconds, result.legacy)
        transfer.finish(result.path, final, legacy=result.legacy)
        self.changed(transfer)
        if result.legacy:
            self.legacy_servers.add(transfer.where)
        for text, level in saved_lines(transfer.name, result, average):
            self.log(text, level)

    def failed(self, transfer: Transfer, reason: str) -> None:
        reason = in_app_words(reason)
        transfer.fail(reason)
        self.changed(transfer)
        where = "" if transfer.where in reason else f" (from {transfer.where})"
        self.log(f"{transfer.name}: {reason}{where}", "error")

    def cancelled(self, transfer: Transfer) -> None:
        transfer.stop()
        self.changed(transfer)
        part = os.path.join(transfer.folder, transfer.name + PART_SUFFIX)
        kept = f"; kept {part}, Retry continues it" if os.path.exists(part) else ""
        self.log(f"{transfer.name}: cancelled{kept}", "warn")


def saved_lines(name: str, result: FetchResult, average: float) -> list[tuple[str, str]]:
    """The log's words for a finished download: where, how big, how fast, what was checked."""
    fresh = result.size - result.resumed_from
    resumed = f", resumed at {fmt.size(result.resumed_from)}" if result.resumed_from else ""
    if result.attempts > 1:
        resumed += f", {result.attempts} connections"
    # A rate over a few milliseconds says nothing; only big transfers get one.
    how = f" at {fmt.rate(average)}" if fresh >= 1024 * 1024 and average else ""
    lines = [
        (
            f"{name}: saved {result.path} ({fmt.size(result.size)} in "
            f"{result.seconds:.2f} s{how}{resumed})",
            "ok",
        )
    ]
    if result.legacy:
        lines.append((f"{name}: legacy server, so no size or digest to check it against", "warn"))
    elif result.digest:
        lines.append((f"{name}: digest verified ({result.digest[:24]}…)", "ok"))
    return lines


def describe(error: Exception) -> str:
    """One line for a person: ``Permission denied: /x`` rather than ``[Errno 13] ...``."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)
