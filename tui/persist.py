"""The app's transfers kept across runs: from ``Transfer`` to ``QueuedTransfer`` and back.

``QueueKeeper`` is the only link between the live transfers and
``tui.queue_store``: the app calls ``changed`` when a transfer's *state*
moves (never per progress tick: a save is an fsync'ed rename), ``freeze``
when it goes away (a hang-up, SIGTERM, a quit), so the cancellations that
quitting causes are not saved over "it was running", and ``restore`` at
start to get the saved transfers back as rows. ``SavedQueue`` is what the app
holds: the keeper tied to the download controller and the log.

A grouped row (a folder download) is kept like a single file: its server,
the remote folder and the selected names, so an unfinished tree resumes on
the next start (identical files skipped, ``.getfile-part`` files resumed).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from getfile_core import Target, UnsafeName, UsageError, parse_url, safe_local_name
from tui.downloads import DownloadController
from tui.group_runs import group_label
from tui.groups import Connections, Group
from tui.queue_store import FINISHED, QueuedTransfer, QueueStore, SavedGroup, SavedState
from tui.transfers import ACTIVE_STATES, State, Transfer, measured_rate

SAVED_STATE = {State.DONE: SavedState.DONE, State.FAILED: SavedState.FAILED}


def saved_state(transfer: Transfer) -> SavedState:
    if transfer.state in ACTIVE_STATES:
        return SavedState.ACTIVE
    return SAVED_STATE.get(transfer.state, SavedState.CANCELLED)


def finished_rate(transfer: Transfer) -> float | None:
    """The average rate a finished row shows, kept so that it shows it after a restart
    (None when it shows none: ``measured_rate``)."""
    if transfer.state is not State.DONE:
        return None
    return measured_rate(transfer.progress)


@dataclass
class Restored:
    transfer: Transfer
    #: It was running (or queued) when the app stopped: resume it.
    unfinished: bool


class QueueKeeper:
    """Saves the transfers on state changes; hands them back on the next start."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store
        self.frozen = False
        self._ids: dict[int, str] = {}  # Transfer.id -> QueuedTransfer.id
        self._added: dict[int, float] = {}
        self._saved_states: dict[int, SavedState] = {}
        self._others: list[QueuedTransfer] = []  # saved entries we could not show

    def open(self) -> list[str]:
        """Lines for the log: read-only notice and dropped entries."""
        self.store.open()
        lines = list(self.store.problems)
        if self.store.notice:
            lines.append(self.store.notice)
        return lines

    def restore(self) -> list[Restored]:
        restored = []
        for saved in self.store.transfers:
            try:
                transfer = self._transfer(saved)
            except (UsageError, UnsafeName):
                self._others.append(saved)
                continue
            state = State(saved.state) if saved.state in FINISHED else State.CANCELLED
            transfer.restore(
                state, saved.error or "", size=saved.size, received=saved.received, rate=saved.rate
            )
            self._ids[transfer.id] = saved.id
            self._added[transfer.id] = saved.added
            self._saved_states[transfer.id] = saved.state
            restored.append(Restored(transfer, saved.state not in FINISHED))
        return restored

    @staticmethod
    def _transfer(saved: QueuedTransfer) -> Transfer:
        """The row for a saved entry; ``UsageError``/``UnsafeName`` if it cannot be one."""
        target = parse_url(saved.url)
        for mirror in saved.mirrors:
            parse_url(mirror)  # checked now: a bad one would fail the download later
        connections = None
        if saved.segments > 1 or saved.mirrors:
            connections = Connections(saved.segments, saved.mirrors)
        kept = saved.group
        if kept is None:
            name = saved.name or safe_local_name(target.path)
            transfer = Transfer(target=target, folder=saved.destination, name=name)
        else:
            if target.path:
                raise UsageError("a grouped row's URL is its server's root")
            group = Group(folder=kept.folder, names=kept.names)
            group.files_done, group.files_total = kept.files_done, kept.files_total
            server = Target(target.host, target.port, kept.folder, target.tls)
            name = group_label(kept.names)
            transfer = Transfer(server, saved.destination, name, group=group)
        transfer.connections = connections
        transfer.limit.rate = saved.rate_limit
        return transfer

    def changed(self, transfers: Iterable[Transfer]) -> str | None:
        """Save if any transfer's saved state moved; a line for the log if saving failed."""
        if self.frozen:
            return None
        transfers = list(transfers)
        states = {t.id: saved_state(t) for t in transfers}
        if states == self._saved_states:
            return None
        return self.save(transfers)

    def freeze(self, transfers: Iterable[Transfer]) -> str | None:
        """Save once more as things are (running ones as running), then never again."""
        line = self.save(list(transfers))
        self.frozen = True
        return line

    def save(self, transfers: list[Transfer]) -> str | None:
        self._saved_states = {t.id: saved_state(t) for t in transfers}
        self.store.save([*self._others, *(self._entry(t) for t in transfers)])
        return self.store.save_error

    def _entry(self, transfer: Transfer) -> QueuedTransfer:
        progress = transfer.progress
        connections = transfer.connections or Connections()
        group = transfer.group
        target = transfer.target
        kept = None
        if group is not None:
            kept = SavedGroup(group.folder, group.names, group.files_done, group.files_total)
            target = Target(target.host, target.port, b"", target.tls)  # the server's root
        entry = QueuedTransfer(
            url=target.url(),
            destination=os.path.abspath(transfer.folder),
            name=transfer.name if group is None else None,
            state=saved_state(transfer),
            rate_limit=transfer.limit.rate,
            size=progress.total if progress is not None else None,
            received=progress.done if progress is not None else 0,
            error=transfer.error[:300] or None,
            segments=connections.segments,
            mirrors=connections.mirrors,
            group=kept,
            rate=finished_rate(transfer),
        )
        saved_id = self._ids.setdefault(transfer.id, entry.id)
        added = self._added.setdefault(transfer.id, entry.added)
        return dataclasses.replace(entry, id=saved_id, added=added)

    def close(self) -> None:
        self.store.close()


class SavedQueue:
    """The saved queue as the app uses it: restored at start, saved when a transfer's state
    moves, frozen at a quit or hang-up. Reports problems through ``log``.

    ``keeper`` None: transfers are not kept (most tests); every call is then a no-op.
    """

    def __init__(
        self,
        keeper: QueueKeeper | None,
        downloads: DownloadController,
        log: Callable[[str, str], None],
    ) -> None:
        self.keeper = keeper
        self.downloads = downloads
        self.log = log

    def restore(self, *, resume: bool) -> None:
        """Show the saved transfers; resume the unfinished ones if ``resume`` (a setting)."""
        if self.keeper is None:
            return
        for line in self.keeper.open():
            self.log(line, "warn")
        restored = self.keeper.restore()
        for entry in restored:
            self.downloads.adopt(entry.transfer)
        unfinished = [r.transfer for r in restored if r.unfinished]
        if unfinished and not resume:
            self.log(
                f"{len(unfinished)} unfinished download(s) from last time: ctrl+r resumes one",
                "info",
            )
        elif unfinished:
            self.log(f"resuming {len(unfinished)} unfinished download(s) from last time", "info")
            for transfer in unfinished:
                self.downloads.retry(transfer)

    def changed(self) -> None:
        """A transfer's state moved: save if its saved state did."""
        if self.keeper is not None:
            self._tell(self.keeper.changed(self.downloads.transfers.values()))

    def save(self) -> None:
        """Save now (rows were removed: no state moved, yet the file must lose them)."""
        if self.keeper is not None:
            self._tell(self.keeper.save(list(self.downloads.transfers.values())))

    def freeze(self) -> None:
        """Save once more as things are (running ones stay "unfinished": the next start
        resumes them), then never again: the cancellations quitting causes are not saved."""
        if self.keeper is not None and not self.keeper.frozen:
            self._tell(self.keeper.freeze(self.downloads.transfers.values()))

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.close()

    def _tell(self, problem: str | None) -> None:
        if problem:
            self.log(problem, "error")
