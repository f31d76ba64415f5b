"""The tree's disk threads: small verified files saved while the network thread goes on.

Creating a file is the dearest step of a small download, and not for our
code: on ext4 without a journal (this machine's disk) each new inode is
found by scanning past the inodes freed in the last minute, ~100-180 us a
file right after a previous copy was deleted (``perf``: ``recently_deleted``
in ``find_inode_bit``); rsync's receiver pays the same. The system call
releases the GIL, so here it runs beside the thread that reads, parses and
hashes the next answers instead of after it, and on ``THREADS`` threads
taking files in turn, so both cores can pay it: 2000 x 4 KiB, median of 10
interleaved runs against rsync's daemon, 1.12 x with one thread, 1.00 x
with two (``O_TMPFILE`` saves: they allocate the inode without the folder's
lock, so two threads scan at once even in one folder).

Bodies wait in memory, at most ``MAX_WAITING`` bytes in all: the network
thread stops reading when the disk falls that far behind.
"""

from __future__ import annotations

import collections
import os
import threading

from getfile_core.client.destination import write_failed
from getfile_core.client.tree_local import LocalTree, Parts
from getfile_core.client.tree_save import WholeSaver
from getfile_core.errors import GetfileError, LocalFileError

TYPE_CHECKING = False  # typing is not imported at run time (~2 ms of start-up)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


#: Bytes of verified bodies waiting to be written, at most.
MAX_WAITING = 32 * 1024 * 1024
#: Threads saving files.
THREADS = 2
#: Folder descriptors each thread keeps open.
KEPT_FOLDERS = 32


class Saved(Protocol):
    """A small file the disk thread saves, and tells how it went."""

    parts: Parts
    #: A ``NAME.getfile-part`` of this file may be on disk (this run wrote one, or saw one).
    left_part: bool

    def saved(self, size: int) -> None: ...

    def give_up(self, error: GetfileError, *, quiet: bool = False) -> None: ...


class DiskWriter:
    """``THREADS`` threads saving ``(job, body, mtime)``; ``close`` waits for the last one."""

    def __init__(self, local: LocalTree, overwrite: bool, threads: int = THREADS) -> None:
        self.local = local
        self.overwrite = overwrite
        self._lock = threading.Lock()
        #: Told when bodies were written (room for more), and when closing.
        self._room = threading.Condition(self._lock)
        self._waiting = 0
        self._closing = False
        self._cancelled = False
        self._turn = 0
        self._savers = [_Saver(self) for _ in range(threads)]

    def save(self, job: Saved, body: bytes, mtime_ns: int | None) -> None:
        """Queue one file (any thread); waits while ``MAX_WAITING`` bytes are queued already."""
        with self._lock:
            self._turn = (self._turn + 1) % len(self._savers)
            saver = self._savers[self._turn]
            while self._waiting >= MAX_WAITING and not self._cancelled:
                self._room.wait(1.0)
            if self._cancelled and not self._closing:
                raise LocalFileError("the thread writing files stopped; not saved")
            self._waiting += len(body)
            saver.items.append((job, body, mtime_ns))
            if len(saver.items) == 1:
                saver.wake.notify()

    def close(self, *, cancel: bool = False) -> None:
        """Save what is queued (``cancel``: drop it) and end the threads."""
        with self._lock:
            self._closing = True
            self._cancelled = self._cancelled or cancel
            self._room.notify_all()
            for saver in self._savers:
                saver.wake.notify()
        for saver in self._savers:
            saver.thread.join()

    def _take(self, saver: _Saver) -> list[tuple[Saved, bytes, int | None]] | None:
        """The saver's next batch; ``None``: end."""
        with self._lock:
            while not saver.items and not self._closing:
                saver.wake.wait()
            if self._cancelled or not saver.items:
                saver.items.clear()
                return None
            batch = list(saver.items)
            saver.items.clear()
            return batch

    def _stopped(self) -> None:
        """A saver ended (closed, or a bug): nothing may wait for room any more."""
        with self._lock:
            self._cancelled = self._cancelled or not self._closing
            self._room.notify_all()

    def _done(self, size: int) -> None:
        with self._lock:
            self._waiting -= size
            self._room.notify_all()


class _Saver:
    """One disk thread, with descriptors of the folders it saves into."""

    def __init__(self, writer: DiskWriter) -> None:
        self.writer = writer
        self.items: collections.deque[tuple[Saved, bytes, int | None]] = collections.deque()
        self.wake = threading.Condition(writer._lock)
        self._whole = WholeSaver()
        self._folders: collections.OrderedDict[Parts, int] = collections.OrderedDict()
        self.thread = threading.Thread(target=self._run, daemon=True, name="getfile-disk")
        self.thread.start()

    def _run(self) -> None:
        try:
            while (batch := self.writer._take(self)) is not None:
                for job, body, mtime_ns in batch:
                    self._save(job, body, mtime_ns)
                self.writer._done(sum(len(body) for _, body, _ in batch))
        finally:
            for fd in self._folders.values():
                os.close(fd)
            self._folders.clear()
            self.writer._stopped()  # never leave the network thread waiting for room

    def _folder(self, parts: Parts) -> int:
        fd = self._folders.get(parts)
        if fd is None:
            fd = self._folders[parts] = self.writer.local.folder(parts)
            if len(self._folders) > KEPT_FOLDERS:
                os.close(self._folders.popitem(last=False)[1])
        return fd

    def _save(self, job: Saved, body: bytes, mtime_ns: int | None) -> None:
        parts = job.parts
        local, overwrite = self.writer.local, self.writer.overwrite
        try:
            folder = self._folder(parts[:-1])
            shown = local.display(parts[:-1])
            # A folder this run made holds no part it did not write itself.
            stale = job.left_part or not local.is_fresh(parts[:-1])
            self._whole.save(
                folder, shown, parts[-1], body, mtime_ns, overwrite=overwrite, stale_part=stale
            )
        except GetfileError as error:
            job.give_up(error)
        except OSError as error:
            job.give_up(write_failed(error))
        else:
            job.saved(len(body))


__all__ = ["MAX_WAITING", "THREADS", "DiskWriter", "Saved"]
