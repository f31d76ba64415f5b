"""Where bytes may come from on the server: the served folder and nothing else.

A requested path is hostile. It becomes an open file descriptor that
provably lies under the root, checked on the descriptor itself after opening
(through ``/proc/self/fd``), so a symlink swapped in between cannot win a
race. The client's half (one plain local name from whatever a server said)
is ``getfile_core.client.names``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from getfile_core.protocol import MAX_NAME, Status

_PROC_FD = "/proc/self/fd"


class Refused(Exception):
    """A path the server will not serve, with the status and a reason for the log."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _resolve(path: str) -> str:
    """``os.path.realpath``, which raises when a symlink on the way is swapped mid-resolve."""
    try:
        return os.path.realpath(path)
    except OSError:
        raise Refused(Status.NOT_FOUND, "path changed while being resolved") from None


@dataclass(frozen=True)
class ServedRoot:
    """The one folder a server serves, resolved once at start-up."""

    path: str
    #: Serve regular files with more than one hard link. Off by default: a hard
    #: link to a file outside the root looks, by path and by descriptor, exactly
    #: like a file inside it, so only its link count gives it away.
    allow_hardlinks: bool = False

    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, allow_hardlinks: bool = False) -> ServedRoot:
        real = os.path.realpath(os.fspath(folder))
        if not os.path.isdir(real):
            raise NotADirectoryError(f"not a folder: {folder}")
        return cls(real, allow_hardlinks)

    def contains(self, real_path: str) -> bool:
        return real_path == self.path or real_path.startswith(self.path.rstrip("/") + "/")

    def lexical(self, requested: bytes) -> str:
        """Map a requested path to a path under the root, refusing what can never be served.

        Relative paths are taken relative to the root. Absolute paths are taken
        literally and served only if they lie under the root, so the book's
        habit of asking for a full path keeps working for files we do serve.
        """
        if not requested:
            raise Refused(Status.BAD_REQUEST, "empty path")
        if b"\x00" in requested:
            raise Refused(Status.BAD_REQUEST, "NUL byte in path")
        if len(requested) > 4096:
            raise Refused(Status.BAD_REQUEST, "path longer than 4096 bytes")
        text = os.fsdecode(requested)
        parts = text.split("/")
        if ".." in parts:
            raise Refused(Status.FORBIDDEN, "'..' in path")
        if any(len(os.fsencode(p)) > MAX_NAME for p in parts):
            raise Refused(Status.BAD_REQUEST, "a path component is longer than 255 bytes")
        if text.startswith("/"):
            candidate = os.path.normpath(text)
            if not self.contains(candidate) and not self.contains(_resolve(candidate)):
                raise Refused(Status.FORBIDDEN, "absolute path outside the served folder")
            return candidate
        return os.path.join(self.path, os.path.normpath(text))

    def _check_descriptor(self, fd: int) -> None:
        """Refuse an open descriptor whose real path is not under the root."""
        try:
            real = os.readlink(f"{_PROC_FD}/{fd}")
        except OSError:  # no /proc: the name was resolved before opening (racier, still bounded)
            return
        if not self.contains(real):
            raise Refused(Status.FORBIDDEN, "path resolves outside the served folder")

    def _open_checked(self, candidate: str, flags: int, missing: str, not_a_dir: Refused) -> int:
        """Open ``candidate`` (not following a last symlink) as a descriptor under the root.

        The name is resolved and checked first, then the descriptor itself
        (through ``/proc/self/fd``); an ``errno`` becomes a :class:`Refused`.
        """
        real = self._plain_path(candidate)
        if real is not None:
            try:
                fd = os.open(real, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                real = None  # the last name is a symlink (ELOOP), or a refusal: said below
            else:
                return self._checked(fd)
        real = _resolve(candidate)
        if not self.contains(real):
            raise Refused(Status.FORBIDDEN, "path resolves outside the served folder")
        try:
            fd = os.open(real, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise Refused(Status.NOT_FOUND, missing) from None
        except NotADirectoryError:
            raise not_a_dir from None
        except PermissionError:
            raise Refused(Status.FORBIDDEN, "permission denied") from None
        except OSError as error:
            raise Refused(Status.FORBIDDEN, f"cannot open: {error.strerror}") from None
        return self._checked(fd)

    def _checked(self, fd: int) -> int:
        try:
            self._check_descriptor(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _plain_path(self, candidate: str) -> str | None:
        """``candidate`` itself when every folder on its way below the root is a plain folder.

        ``realpath`` looks at every component from ``/`` (nine ``lstat``
        for ``/work/main/bench/results/data/folders/TREE/dir03/f``, in
        Python: ~15 % of the server's time for a tree of small files).
        The root is real already; only the folders below it are looked at
        here, and the last name is opened with ``O_NOFOLLOW`` (a symlink
        there fails, and goes the ``realpath`` way). ``None``: a symlink
        or something odd on the way: ``realpath`` decides. Either way the
        open descriptor is checked after (``_check_descriptor``).
        """
        top = self.path.rstrip("/") + "/"
        if candidate == self.path:
            return candidate
        if not candidate.startswith(top):
            return None
        folder = top[:-1]
        for name in candidate[len(top) :].split("/")[:-1]:
            folder = f"{folder}/{name}"
            try:
                if not stat.S_ISDIR(os.lstat(folder).st_mode):
                    return None
            except OSError:
                return None
        return candidate

    def open_file(self, requested: bytes) -> tuple[int, os.stat_result]:
        """Open a regular file under the root; the caller owns (and closes) the descriptor."""
        # O_NONBLOCK: opening a FIFO must never wait for a writer.
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
        not_a_dir = Refused(Status.NOT_FOUND, "no such file")
        fd = self._open_checked(self.lexical(requested), flags, "no such file", not_a_dir)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise Refused(Status.IS_A_DIRECTORY, "is a folder (use ls)")
            if not stat.S_ISREG(info.st_mode):
                raise Refused(Status.FORBIDDEN, "not a regular file")
            if info.st_nlink > 1 and not self.allow_hardlinks:
                raise Refused(Status.FORBIDDEN, "file has several hard links (--allow-hardlinks)")
            os.set_blocking(fd, True)
            return fd, info
        except BaseException:
            os.close(fd)
            raise

    def open_dir(self, requested: bytes) -> int:
        """Open a folder under the root for listing; the caller closes the descriptor."""
        candidate = self.path if requested in (b"", b"/", b".") else self.lexical(requested)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_DIRECTORY
        not_a_dir = Refused(Status.NOT_A_DIRECTORY, "not a folder")
        return self._open_checked(candidate, flags, "no such folder", not_a_dir)
