"""What the app knows about each download, and how it treats files already there.

Kept free of widgets so the rules (which choices the overwrite dialog
offers, which free name a rename picks, what a retry does) can be read and
tested on their own.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from getfile_core import PART_SUFFIX, Phase, Progress, RetryNotice, Target, TransferState
from tui.groups import Connections, Group
from tui.limits import RateLimit

_ids = itertools.count(1)
#: Seconds of downloading snapshots the shown rate is measured over.
RATE_WINDOW = 3.0
#: A finished transfer's average rate says something only over at least this many bytes
#: moved and this many seconds: a 109 B file that came in one read "ran at 15.5 KiB/s",
#: a number made of a system call's timing, not of the link.
MEASURED_BYTES = 64 * 1024
MEASURED_SECONDS = 0.2


#: Where a transfer is: the client's own ``Phase`` (queued, connecting, waiting,
#: downloading, verifying, retrying, done, failed, cancelled), so a progress snapshot
#: moves a row by value. Only the ``Transfer``'s own methods change a transfer's state.
State = Phase


ACTIVE_STATES = frozenset(
    {
        State.QUEUED,
        State.CONNECTING,
        State.WAITING,
        State.DOWNLOADING,
        State.VERIFYING,
        State.RETRYING,
    }
)
#: States a progress snapshot may move a running transfer into (never done/failed/cancelled:
#: only the outcome of ``fetch`` says those).
PROGRESS_STATES = ACTIVE_STATES - {State.QUEUED}
RETRYABLE_STATES = frozenset({State.FAILED, State.CANCELLED})


def measured_rate(progress: Progress | None) -> float | None:
    """A finished transfer's average rate, or None when too little moved, or too quickly,
    for it to mean anything. What moved is ``rate * elapsed``: a resume's fresh bytes, a
    tree's bytes over the network (files found identical move none)."""
    if progress is None or progress.rate <= 0 or progress.elapsed < MEASURED_SECONDS:
        return None
    return progress.rate if progress.rate * progress.elapsed >= MEASURED_BYTES else None


class Choice(StrEnum):
    """The answers to "the file is already there"."""

    OVERWRITE = "overwrite"
    RESUME = "resume"
    RENAME = "rename"
    SKIP = "skip"


@dataclass(frozen=True)
class Conflict:
    """What already sits at the destination under the name a download would use."""

    folder: str
    name: str
    final_exists: bool
    part_size: int | None  # size of NAME.part, None when there is none

    @property
    def part_exists(self) -> bool:
        return self.part_size is not None


def find_conflict(folder: str, name: str) -> Conflict | None:
    """``None`` when neither NAME nor NAME.part exists in ``folder``."""
    final_exists = os.path.lexists(os.path.join(folder, name))
    try:
        part_size: int | None = os.lstat(os.path.join(folder, name + PART_SUFFIX)).st_size
    except FileNotFoundError:
        part_size = None
    if not final_exists and part_size is None:
        return None
    return Conflict(folder, name, final_exists, part_size)


def free_name(folder: str, name: str) -> str:
    """``name (1).ext``, ``name (2).ext``...: the first with neither NAME nor NAME.part taken.

    Reads the folder once instead of probing name after name, so it always
    finds one (a folder of n entries has a free number at most n + 1) and
    costs one listing however many ``x (n).ext`` are there: probing 10,000
    taken names with a cap used to end in an exception that took the
    overwrite dialog (and the app) down.
    """
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dotfile such as ".bashrc"
        stem, dot, ext = name, "", ""
    with os.scandir(folder) as entries:
        taken = {entry.name for entry in entries}
    for number in itertools.count(1):
        candidate = f"{stem} ({number}){dot}{ext}"
        if candidate not in taken and candidate + PART_SUFFIX not in taken:
            return candidate
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Plan:
    """How to call ``fetch`` once the user (or a retry) has decided."""

    overwrite: bool = False
    resume: bool = False
    name: str | None = None  # None: the remote file's own name


def plan_for(choice: Choice, conflict: Conflict) -> Plan | None:
    """The fetch arguments for a choice in the overwrite dialog; ``None`` means skip."""
    if choice is Choice.OVERWRITE:
        return Plan(overwrite=True)
    if choice is Choice.RESUME:
        # Continuing NAME.part must be allowed to replace NAME if that exists too.
        return Plan(resume=True, overwrite=conflict.final_exists)
    if choice is Choice.RENAME:
        return Plan(name=free_name(conflict.folder, conflict.name))
    return None


def plan_for_retry(conflict: Conflict | None, *, legacy: bool) -> Plan | None:
    """A retry continues its own ``.part``; ``None`` when only the user can decide."""
    if conflict is None:
        return Plan()
    if conflict.final_exists:
        return None
    # Only the .part is there: ours to continue, or to restart on a legacy server.
    return Plan(overwrite=True) if legacy else Plan(resume=True)


@dataclass(eq=False)
class Transfer:
    """One row of the transfers list: what was asked, where it goes, how it went.

    ``state`` is read-only outside: the methods below are its only writers, so
    a widget can show a transfer but never move it.
    """

    target: Target
    folder: str
    name: str
    id: int = field(default_factory=lambda: next(_ids))
    progress: Progress | None = None
    error: str = ""
    legacy: bool = False
    saved_path: str = ""
    #: This transfer's own rate limit (none until set); the app's global one applies too.
    limit: RateLimit = field(default_factory=RateLimit)
    #: While RETRYING: which attempt, why, and when (``time.monotonic``) it starts.
    retry: RetryNotice | None = None
    retry_at: float = 0.0
    #: What the client waits for, in words ("server is hashing big.iso (40%)"), or "".
    note: str = ""
    #: The library's state of the running attempt series: ``retry_now()`` and ``cancel()``.
    client: TransferState | None = None
    #: Segments and mirrors asked for this download (``None``: the settings' default).
    connections: Connections | None = None
    #: A selection of files and folders downloaded as one tree (``None``: one file).
    group: Group | None = None
    _state: State = State.QUEUED
    _samples: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    @property
    def state(self) -> State:
        return self._state

    @property
    def active(self) -> bool:
        return self._state in ACTIVE_STATES

    @property
    def done_or_stopped(self) -> bool:
        return self._state in (State.DONE, State.FAILED, State.CANCELLED)

    @property
    def can_retry(self) -> bool:
        return self._state in RETRYABLE_STATES

    @property
    def where(self) -> str:
        return self.target.address  # format_address: [v6]:port

    # ------------------------------------------------------------ the only writers of state

    def retry_left(self, now: float) -> float:
        """Seconds until the next attempt while RETRYING (never below zero)."""
        return max(0.0, self.retry_at - now)

    def start_attempts(self) -> TransferState:
        """A fresh library state for ``fetch`` (kept so "retry now" can reach it)."""
        self.client = TransferState()
        return self.client

    @property
    def rate(self) -> float:
        """Bytes per second over the last few seconds of *downloading* snapshots only.

        The client's own rate starts from a snapshot taken before a resume's
        offset is known, so for three seconds after a resume it counted the
        bytes already on disk as arrived (2.35 GiB/s; an ETA of 12 s for 57 s).
        Done, it is the average over the fresh bytes (what the log says too).
        """
        if self._state is State.DONE and self.progress is not None:
            return self.progress.rate
        if self.group is not None:
            return self.group.rate
        samples = self._samples
        if len(samples) < 2:
            return 0.0
        (first_time, first_done), (last_time, last_done) = samples[0], samples[-1]
        span = last_time - first_time
        return (last_done - first_done) / span if span > 0 else 0.0

    @property
    def eta(self) -> float | None:
        progress, rate = self.progress, self.rate
        if progress is None or progress.total is None or rate <= 0:
            return None
        return max(progress.total - progress.done, 0) / rate

    def observe(self, progress: Progress) -> State | None:
        """Take a progress snapshot; the state before, if it moved the transfer on."""
        self.progress = progress
        if str(progress.phase) == State.DOWNLOADING:
            samples = self._samples
            if samples and progress.done < samples[-1][1]:
                samples.clear()  # started again from zero (a legacy server)
            samples.append((progress.elapsed, progress.done))
            while len(samples) > 2 and progress.elapsed - samples[0][0] > RATE_WINDOW:
                samples.popleft()
        else:
            self._samples.clear()
        self.legacy = self.legacy or progress.legacy
        self.note = progress.note
        phase = str(progress.phase)
        if phase != State.RETRYING:
            self.retry = None
        if not self.active or phase == self._state or phase not in PROGRESS_STATES:
            return None
        before, self._state = self._state, State(phase)
        return before

    def retrying(self, notice: RetryNotice, now: float) -> None:
        """The client waits ``notice.delay`` seconds before its next attempt."""
        self._state = State.RETRYING
        self.retry = notice
        self.retry_at = now + notice.delay

    def finish(self, path: str, progress: Progress, *, legacy: bool) -> None:
        self._state = State.DONE
        self.retry = None
        self.saved_path = path
        self.progress = progress
        self.legacy = legacy

    def fail(self, reason: str) -> None:
        self._state = State.FAILED
        self.error = reason
        self.retry = None

    def stop(self) -> None:
        """Cancelled (by the user, or by quitting); what arrived stays in the ``.part``."""
        self._state = State.CANCELLED
        self.retry = None

    def restore(
        self,
        state: State,
        error: str = "",
        *,
        size: int | None = None,
        received: int = 0,
        rate: float | None = None,
    ) -> None:
        """A transfer read back from the saved queue: as it ended, or stopped to be resumed
        (its bar where it stopped); a finished one with its average ``rate``."""
        self._state = state if state in (State.DONE, State.FAILED) else State.CANCELLED
        self.error = error
        if self._state is State.DONE:  # a tree's files are in its folder (as ``finish`` says)
            self.saved_path = self.folder if self.group else os.path.join(self.folder, self.name)
            received = size if size is not None else received
        if received or size is not None:
            average = rate if rate is not None and self._state is State.DONE else 0.0
            # The seconds its average was measured over, as far as the queue knows (it keeps
            # only rates that were measured: ``measured_rate`` holds again after a restart).
            elapsed = received / average if average > 0 else 0.0
            self.progress = Progress(self._state, received, size, average, elapsed, False)

    def claim(self) -> bool:
        """Take a failed or cancelled transfer for a retry; ``False`` if it is not one
        (so a second ctrl+r cannot start it twice)."""
        if not self.can_retry:
            return False
        self._state = State.QUEUED
        return True

    def reset(self, name: str) -> None:
        """Ready the row for another attempt (a retry, possibly under a new name)."""
        self.name = name
        self._state = State.QUEUED
        self.progress = None
        self.error = ""
        self.retry = None
        self.note = ""
        self._samples.clear()
