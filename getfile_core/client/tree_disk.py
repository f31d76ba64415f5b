"""The tree's disk thread: small verified files saved while the network thread goes on.

Creating a file is the dearest step of a small download, and not for our
code: on ext4 without a journal (this machine's disk) each new inode is
found by scanning past the inodes freed in the last minute, ~100-180 us a
file right after a previous copy was deleted (``perf``: ``recently_deleted``
in ``find_inode_bit``); rsync's receiver pays the same. The system call
releases the GIL, so here it runs beside the thread that reads, parses and
hashes the next answers instead of after it. One thread, not several: two
threads creating in the same folder wait on its lock, and every handover
of the GIL costs a futex round trip (8 threads: 117 per file).

Bodies wait in memory, at most ``MAX_WAITING`` bytes: the network thread
stops reading when the disk falls that far behind.
"""

from __future__ import annotations

import collections
import threading
from typing import Protocol

from getfile_core.client.destination import write_failed
from getfile_core.client.tree_local import LocalTree, Parts
from getfile_core.errors import GetfileError

#: Bytes of verified bodies waiting to be written, at most.
MAX_WAITING = 32 * 1024 * 1024


class Saved(Protocol):
    """A small file the disk thread saves, and tells how it went."""

    parts: Parts

    def saved(self, size: int) -> None: ...

    def give_up(self, error: GetfileError, *, quiet: bool = False) -> None: ...


class DiskWriter:
    """One thread saving ``(job, body, mtime)`` in order; ``close`` waits for the last one."""

    def __init__(self, local: LocalTree, overwrite: bool) -> None:
        self.local = local
        self.overwrite = overwrite
        self._items: collections.deque[tuple[Saved, bytes, int | None]] = collections.deque()
        self._waiting = 0
        self._lock = threading.Condition()
        self._closing = False
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="getfile-disk")
        self._thread.start()

    def save(self, job: Saved, body: bytes, mtime_ns: int | None) -> None:
        """Queue one file (any thread); waits while ``MAX_WAITING`` bytes are queued already."""
        with self._lock:
            while self._waiting >= MAX_WAITING and not self._cancelled:
                self._lock.wait(1.0)
            self._items.append((job, body, mtime_ns))
            self._waiting += len(body)
            if len(self._items) == 1:
                self._lock.notify_all()

    def close(self, *, cancel: bool = False) -> None:
        """Save what is queued (``cancel``: drop it) and end the thread."""
        with self._lock:
            self._closing = True
            self._cancelled = self._cancelled or cancel
            self._lock.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._items and not self._closing:
                    self._lock.wait()
                if self._cancelled or not self._items:
                    self._items.clear()
                    self._lock.notify_all()
                    return
                batch = list(self._items)
                self._items.clear()
            for job, body, mtime_ns in batch:
                self._save(job, body, mtime_ns)
            with self._lock:
                self._waiting -= sum(len(body) for _, body, _ in batch)
                self._lock.notify_all()

    def _save(self, job: Saved, body: bytes, mtime_ns: int | None) -> None:
        parts = job.parts
        try:
            self.local.save(parts[:-1], parts[-1], body, mtime_ns, overwrite=self.overwrite)
        except GetfileError as error:
            job.give_up(error)
        except OSError as error:
            job.give_up(write_failed(error))
        else:
            job.saved(len(body))


__all__ = ["MAX_WAITING", "DiskWriter", "Saved"]
