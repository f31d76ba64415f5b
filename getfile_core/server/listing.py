"""LIST pages whose cost is proportional to the page, not to the folder.

The first version rescanned and sorted the whole folder for every page:
200,000 entries cost 280 ms per page and 50 s for the whole listing. Now the
sorted names of a folder are kept (keyed by the folder's identity and its
mtime/ctime, which change whenever an entry is added, removed or renamed),
so the next page is a binary search plus ``limit`` stats. The cache is
bounded by a total number of names, so hostile folders cannot hoard memory.
"""

from __future__ import annotations

import bisect
import os
import stat
import threading
from collections import OrderedDict

from getfile_core.protocol import Entry
from getfile_core.server.root import ServedRoot

#: Names kept across all cached folders (~60 bytes each: ~60 MB at worst).
MAX_CACHED_NAMES = 1_000_000

FolderKey = tuple[int, int, int, int]


class SortedNames:
    """The sorted names of recently listed folders; thread-safe (scans run in threads)."""

    def __init__(self, max_names: int = MAX_CACHED_NAMES) -> None:
        self._lock = threading.Lock()
        self._folders: OrderedDict[FolderKey, list[bytes]] = OrderedDict()
        self._total = 0
        self._max = max_names

    def names(self, fd: int) -> list[bytes]:
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)
        with self._lock:
            cached = self._folders.get(key)
            if cached is not None:
                self._folders.move_to_end(key)
                return cached
        names = sorted(os.fsencode(name) for name in os.listdir(fd))
        with self._lock:
            if key not in self._folders and len(names) <= self._max:
                self._folders[key] = names
                self._total += len(names)
                while self._total > self._max:
                    _, dropped = self._folders.popitem(last=False)
                    self._total -= len(dropped)
        return names


def scan(
    fd: int, root: ServedRoot, after: bytes | None, limit: int, cache: SortedNames
) -> tuple[list[Entry], bool]:
    """The ``limit`` smallest names after the cursor, and whether more follow."""
    base = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else root.path
    names = cache.names(fd)
    start = 0 if after is None else bisect.bisect_right(names, after)
    chosen = names[start : start + limit]
    more = start + limit < len(names)
    return [_entry(fd, base, root, name) for name in chosen], more


def _entry(fd: int, base: str, root: ServedRoot, name: bytes) -> Entry:
    kind, size, mtime = "other", 0, 0
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(os.path.join(os.fsencode(base), name))
            info = os.stat(target) if root.contains(os.fsdecode(target)) else info
        if stat.S_ISREG(info.st_mode):
            kind, size = "file", info.st_size
        elif stat.S_ISDIR(info.st_mode):
            kind = "dir"
        mtime = info.st_mtime_ns
    except OSError:
        pass  # vanished between the listing and the stat: shown as "other"
    return Entry(name=name, kind=kind, size=size, mtime_ns=mtime)
