"""The local side of a tree: folders under ``OUT`` reached only through folder descriptors.

Every name in every listing is hostile. A name is used only if it is
already what ``safe_local_name`` would make of it (so nothing is silently
renamed into a collision), every folder is opened from its parent's
descriptor with ``O_NOFOLLOW | O_DIRECTORY`` (a symlink planted anywhere
in ``OUT`` is refused, never followed), and files go through
``Destination`` on those descriptors. Nothing is ever written outside
``OUT``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections import OrderedDict

from getfile_core.client.names import UnsafeName, safe_local_name
from getfile_core.errors import LocalFileError

#: Folder descriptors kept open (the rest are reopened from their parent):
#: a tree of 100,000 folders must not exhaust the process's 1024 descriptors.
MAX_OPEN_FOLDERS = 128
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Parts = tuple[str, ...]


def check_name(raw: bytes) -> str:
    """The local name for one listing name, exactly as sent, or ``UnsafeName`` saying why."""
    text = os.fsdecode(raw)
    try:
        safe = safe_local_name(raw)
    except UnsafeName as error:
        raise UnsafeName(f"refused name {text!r}: {error}") from None
    if safe != text:
        raise UnsafeName(
            f"refused name {text!r}: control characters, separators or too long for a local name"
        )
    return text


class LocalTree:
    """``OUT/<DIR>`` and the folders below it, created and opened safely, shared by threads."""

    def __init__(self, out: str, top: str | None) -> None:
        self.out = out
        self.shown = os.path.join(out, top) if top else out
        self._lock = threading.Lock()
        self._open: OrderedDict[Parts, int] = OrderedDict()
        try:
            out_fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise LocalFileError(f"cannot open {out}: {error.strerror}") from None
        try:
            self.root_fd = self._make_in(out_fd, top, out) if top else os.dup(out_fd)
        finally:
            os.close(out_fd)

    def display(self, parts: Parts, name: str | None = None) -> str:
        return os.path.join(self.shown, *parts, *([name] if name else []))

    def _make_in(self, parent: int, name: str, shown: str) -> int:
        """Create (or find) folder ``name`` in ``parent``; a file or symlink there is refused."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        try:
            return os.open(name, _FOLDER_FLAGS, dir_fd=parent)
        except OSError as error:
            where = os.path.join(shown, name)
            if stat.S_ISLNK(_lmode(parent, name)):
                raise LocalFileError(f"{where} is a symlink; refusing to follow it") from None
            raise LocalFileError(f"{where}: not a folder ({error.strerror})") from None

    def folder(self, parts: Parts) -> int:
        """A descriptor of folder ``parts`` (created if missing), for the caller to close."""
        with self._lock:
            return os.dup(self._folder(parts))

    def _folder(self, parts: Parts) -> int:
        if not parts:
            return self.root_fd
        fd = self._open.get(parts)
        if fd is not None:
            self._open.move_to_end(parts)
            return fd
        parent = self._folder(parts[:-1])
        fd = self._make_in(parent, parts[-1], self.display(parts[:-1]))
        self._open[parts] = fd
        while len(self._open) > MAX_OPEN_FOLDERS:
            _, old = self._open.popitem(last=False)
            os.close(old)
        return fd

    def set_mtime(self, parts: Parts, mtime_ns: int) -> None:
        """Give a folder its server's time (after its files, which move it, are all in)."""
        fd = self.folder(parts)
        try:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        except OSError:
            pass  # a time is nice to keep, not worth failing a tree for
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            for fd in self._open.values():
                os.close(fd)
            self._open.clear()
            if self.root_fd >= 0:
                os.close(self.root_fd)
                self.root_fd = -1


def _lmode(parent: int, name: str) -> int:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except OSError:
        return 0


def local_file(parent: int, name: str) -> os.stat_result | None:
    """What is at ``name`` now (never following a symlink); ``None`` when nothing is."""
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LocalFileError(f"cannot look at {name}: {error.strerror}") from None
