"""The local side of a tree: folders under ``OUT`` reached only through folder descriptors.

Every name in every listing is hostile. A name is used exactly as sent
or refused (``check_name``), never rewritten: a rewritten name can collide
with another entry's. Every folder is opened from its parent's
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
import unicodedata
from collections import OrderedDict

from getfile_core.client.destination import keep_part, read_part
from getfile_core.client.names import PART_SUFFIX, UnsafeName, part_name
from getfile_core.errors import LocalFileError, local_error
from getfile_core.protocol import MAX_NAME

#: Folder descriptors kept open (the rest are reopened from their parent):
#: a tree of 100,000 folders must not exhaust the process's 1024 descriptors.
MAX_OPEN_FOLDERS = 128
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Parts = tuple[str, ...]


def check_name(raw: bytes) -> str:
    """The local name for one listing name, exactly as sent, or ``UnsafeName`` saying why.

    Any byte a POSIX name may hold is kept (spaces, backslashes, bytes that
    are not UTF-8) so the copy is exact; refused are names no folder can
    hold safely: empty, ``.``, ``..``, a separator or NUL, control
    characters (they drive terminals and scripts), bidirectional overrides
    (``txt.\u202eexe`` shows as ``exe.txt``), names reserved for partial
    files, and names too long to have a partial file next to them.
    """
    text = os.fsdecode(raw)
    why = None
    if raw in (b"", b".", b"..") or b"/" in raw or b"\x00" in raw:
        why = "not a plain name"
    elif any(unicodedata.category(ch) == "Cc" or ch in _BIDI for ch in text):
        why = "control characters"
    elif len(raw) + len(PART_SUFFIX) > MAX_NAME:
        why = f"too long (at most {MAX_NAME - len(PART_SUFFIX)} bytes)"
    elif text.endswith(PART_SUFFIX):
        why = f"names ending in {PART_SUFFIX} are reserved for partial downloads"
    if why is not None:
        raise UnsafeName(f"refused name {text!r}: {why}")
    return text


#: Bidirectional controls: they reorder how a name is shown.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class LocalTree:
    """``OUT/<DIR>`` and the folders below it, created and opened safely, shared by threads."""

    def __init__(self, out: str, top: str | None) -> None:
        self.out = out
        self.shown = os.path.join(out, top) if top else out
        self._lock = threading.Lock()
        self._open: OrderedDict[Parts, int] = OrderedDict()
        #: Folders this run created: empty when made, and no one else may write in
        #: them (0755), so a file there needs no look before it is fetched.
        self._fresh: set[Parts] = set()
        try:
            out_fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise LocalFileError(f"cannot open {out}: {error.strerror}") from None
        try:
            if top:
                self.root_fd = self._make_in(out_fd, top, out, ())
            else:
                self.root_fd = os.dup(out_fd)
        finally:
            os.close(out_fd)

    def display(self, parts: Parts, name: str | None = None) -> str:
        return os.path.join(self.shown, *parts, *([name] if name else []))

    def _make_in(self, parent: int, name: str, shown: str, parts: Parts) -> int:
        """Create (or find) folder ``name`` in ``parent``; a file or symlink there is refused."""
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as error:  # a full disk: DiskFullError, so a tree stops at it
            raise local_error(error, f"cannot create {os.path.join(shown, name)}") from None
        else:
            self._fresh.add(parts)
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
        fd = self._make_in(parent, parts[-1], self.display(parts[:-1]), parts)
        self._open[parts] = fd
        while len(self._open) > MAX_OPEN_FOLDERS:
            _, old = self._open.popitem(last=False)
            os.close(old)
        return fd

    def make(self, parts: Parts) -> None:
        """Create folder ``parts`` (and those above it) if missing."""
        with self._lock:
            self._folder(parts)

    def is_fresh(self, parts: Parts) -> bool:
        """Whether this run created the folder (so nothing but this run's files is in it)."""
        return parts in self._fresh

    def look(self, parts: Parts, name: str) -> os.stat_result | None:
        """What is at ``name`` in folder ``parts`` now (never following a symlink)."""
        with self._lock:
            return local_file(self._folder(parts), name)

    def read_part(self, parts: Parts, name: str, limit: int) -> bytes | None:
        """``destination.read_part`` in folder ``parts``: a small file's part to resume."""
        with self._lock:
            return read_part(self._folder(parts), name, limit)

    def keep_part(self, parts: Parts, name: str, data: bytes) -> None:
        """``destination.keep_part`` in folder ``parts``: what arrived, for the next attempt."""
        with self._lock:
            keep_part(self._folder(parts), self.display(parts), name, data)

    def drop_part(self, parts: Parts, name: str) -> None:
        """Remove a small file's part that proved wrong (a digest mismatch)."""
        with self._lock, contextlib.suppress(FileNotFoundError):
            os.unlink(part_name(name), dir_fd=self._folder(parts))

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
