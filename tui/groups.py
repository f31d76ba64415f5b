"""A selection downloaded as one row: the tree's counters, and its files for the expanded row.

``download_tree`` runs in a thread and calls back from its worker threads;
``Group`` takes those calls under one lock and keeps only what the row
shows: files done/total, bytes, the files in flight and the last
``RECENT`` events. A tree of 100,000 files must not grow the app by
100,000 lines, so the expanded row is a window on the tree, not a list of it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from getfile_core import Phase, Progress

#: Seconds of ticks the shown rate is measured over (as a single file's).
RATE_WINDOW = 3.0
#: Events kept for the expanded row (newest first); the rest are counted only.
RECENT = 200
#: Lines the expanded row shows at most (in flight first, then the newest events).
SHOWN = 8
#: Words for ``Tree.on_file``'s events, as the expanded row shows them (fixed width).
EVENT_WORDS = {
    "started": "getting",
    "done": "done",
    "skipped": "same",
    "kept": "kept",
    "failed": "FAILED",
}


@dataclass(frozen=True)
class Connections:
    """How many connections one download may use: segments of the file and other servers."""

    segments: int = 1
    mirrors: tuple[str, ...] = ()  # getfile:// URLs, checked by the dialog

    def describe(self) -> str:
        words = []
        if self.segments > 1:
            words.append(f"{self.segments} segments")
        if self.mirrors:
            words.append(f"{len(self.mirrors)} mirror" + ("s" if len(self.mirrors) > 1 else ""))
        return " · ".join(words)


@dataclass(eq=False)
class Group:
    """What one grouped row knows of its tree (written from the tree's threads)."""

    folder: bytes  # the remote folder the selection is in
    names: tuple[bytes, ...]  # the selected entries of that folder (files and folders)
    expanded: bool = False
    cancelled: bool = False
    #: The running tree (``Tree.cancel``), set by ``download_tree``'s ``on_start``.
    tree: object | None = None
    files_done: int = 0
    files_failed: int = 0
    files_total: int = 0
    in_flight: dict[str, None] = field(default_factory=dict)
    recent: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=RECENT))
    #: (elapsed, bytes moved over the network): the row's rate. Files found identical on
    #: a rerun count as done at once, and made a retried tree show 32 MiB/s on a 7 MiB/s link.
    _moved: deque[tuple[float, int]] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sample(self, elapsed: float, moved: int) -> None:
        """A tick's count of bytes really moved (on the loop)."""
        samples = self._moved
        samples.append((elapsed, moved))
        while len(samples) > 2 and elapsed - samples[0][0] > RATE_WINDOW:
            samples.popleft()

    @property
    def rate(self) -> float:
        if len(self._moved) < 2:
            return 0.0
        (first_time, first), (last_time, last) = self._moved[0], self._moved[-1]
        span = last_time - first_time
        return (last - first) / span if span > 0 else 0.0

    def reset(self) -> None:
        """Before a rerun: the tree counts its files again."""
        with self._lock:
            self.cancelled = False
            self.tree = None
            self._moved.clear()
            self.files_done = self.files_failed = self.files_total = 0
            self.in_flight.clear()
            self.recent.clear()

    def settle(self) -> None:
        """The tree ended (done, failed or cancelled): nothing is in flight any more."""
        with self._lock:
            self.in_flight.clear()

    def file_event(self, path: str, event: str) -> None:
        """``Tree.on_file``: any thread."""
        with self._lock:
            if event == "started":
                self.in_flight[path] = None
                return
            self.in_flight.pop(path, None)
            self.recent.appendleft((path, event))
            if event == "failed":
                self.files_failed += 1
            else:
                self.files_done += 1

    def lines(self) -> list[tuple[str, str]]:
        """(word, path) for the expanded row: the files in flight, then the newest events."""
        with self._lock:
            shown = [("getting", path) for path in list(self.in_flight)[:SHOWN]]
            for path, event in self.recent:
                if len(shown) >= SHOWN:
                    break
                shown.append((EVENT_WORDS.get(event, event), path))
            return shown

    def label(self, name: str) -> str:
        return "".join(self.label_parts(name))

    def label_parts(self, name: str) -> tuple[str, str]:
        """The row's name as (``+ name``, `` done/total``): the counts are never cut."""
        mark = "-" if self.expanded else "+"
        return f"{mark} {name}", f" {self.files_done}/{self.files_total}"


def tree_progress(
    done: int, total: int | None, elapsed: float, phase: Phase, rate: float = 0.0
) -> Progress:
    """A tree's counters as the one-file ``Progress`` a row already knows how to draw."""
    return Progress(phase, done, total, rate, elapsed, False)
