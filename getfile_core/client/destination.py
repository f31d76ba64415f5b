"""The destination side of a download: ``NAME.getfile-part``, a lock, and an atomic commit.

Every file operation goes through a descriptor of the destination folder
(``dir_fd``) with ``O_NOFOLLOW``, so a name can only ever land inside it, and
a planted symlink named like our file cannot redirect the write. The partial
file is created with ``O_EXCL`` (never opened if someone else made it) and
resumed only if it is ours, a plain file with one link. The final name only
appears by a rename (or a hard link, for no-clobber) of a complete, verified
partial file, after checking that its name still leads to the file we wrote
(device and inode): in a folder others can write (``/tmp``) a name proves
nothing by itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable
from types import ModuleType

from getfile_core._values import Value
from getfile_core.client.names import UnsafeName, part_name, safe_local_name
from getfile_core.errors import LocalFileError, local_error


class Destination(Value):
    """Where one download goes; ``open_part`` then ``commit`` (or ``abandon``).

    A plain class, not a dataclass (``getfile_core._values`` says why). Its
    descriptors are not shown; it is equal only to itself (they are its own).
    """

    _fields = ("folder", "name", "overwrite", "resume")
    __slots__ = (*_fields, "_dir_fd", "fd")
    folder: str
    name: str
    overwrite: bool
    resume: bool

    def __init__(
        self, folder: str, name: str, overwrite: bool = False, resume: bool = False
    ) -> None:
        self.folder = folder
        self.name = name
        self.overwrite = overwrite
        self.resume = resume
        self._dir_fd = -1
        #: The open ``.part`` (-1: none yet).
        self.fd = -1

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @classmethod
    def for_remote(
        cls, folder: str, remote_path: bytes, *, overwrite: bool = False, resume: bool = False
    ) -> Destination:
        try:
            name = safe_local_name(remote_path)
        except UnsafeName as error:
            raise LocalFileError(str(error)) from None
        return cls(folder=folder, name=name, overwrite=overwrite, resume=resume)

    @classmethod
    def in_folder_fd(
        cls, dir_fd: int, folder: str, name: str, *, overwrite: bool = False, resume: bool = False
    ) -> Destination:
        """A destination in a folder already open (a tree's: reached by descriptors only).

        ``name`` must already be safe; ``folder`` is only for messages. The
        descriptor is duplicated: the caller keeps its own.
        """
        destination = cls(folder=folder, name=name, overwrite=overwrite, resume=resume)
        destination._dir_fd = os.dup(dir_fd)
        return destination

    @property
    def part_name(self) -> str:
        return part_name(self.name)

    @property
    def final_path(self) -> str:
        return os.path.join(self.folder, self.name)

    @property
    def part_path(self) -> str:
        return os.path.join(self.folder, self.part_name)

    def check(self) -> int:
        """Refuse early what would be refused later; return the offset to resume from."""
        try:
            if self._dir_fd < 0:
                self._dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise LocalFileError(f"destination folder does not exist: {self.folder}") from None
        except NotADirectoryError:
            raise LocalFileError(f"destination is not a folder: {self.folder}") from None
        except OSError as error:
            raise LocalFileError(f"cannot open {self.folder}: {error.strerror}") from None
        if not os.access(self._dir_fd if os.access in os.supports_fd else self.folder, os.W_OK):
            raise LocalFileError(f"destination folder is not writable: {self.folder}")
        if not self.overwrite and self._exists(self.name):
            raise LocalFileError(f"{self.final_path} exists (use --overwrite to replace it)")
        if self._exists(self.part_name):
            if self.resume:
                return os.stat(self.part_name, dir_fd=self._dir_fd, follow_symlinks=False).st_size
            if not self.overwrite:
                raise LocalFileError(
                    f"{self.part_path} is left from an earlier download "
                    "(use --resume to continue it, or --overwrite to start again)"
                )
        return 0

    def _exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def open_part(self, offset: int) -> int:
        """Open (and lock) the ``.part`` for writing at ``offset``; returns the descriptor.

        A new ``.part`` is created with ``O_EXCL``: a file someone planted under
        the name (in a shared folder such as ``/tmp``) is never written into.
        Resuming opens an existing one only if it is a plain file of ours with
        one link. A retry reuses the descriptor it already holds.
        """
        if self.fd < 0:
            self.fd = self._resume_part() if offset else self._create_part()
        fd = self.fd
        size = os.fstat(fd).st_size
        if offset > size:
            raise LocalFileError(f"{self.part_path} shrank while resuming")
        if size != offset:
            # Only when needed: ext4 flushes a file truncated to zero when it is
            # closed (auto_da_alloc), which cost 0.35 s per GiB downloaded.
            os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        return fd

    @property
    def dir_fd(self) -> int:
        """The destination folder's descriptor (open between ``check`` and ``close``)."""
        return self._dir_fd

    def another_descriptor(self) -> int:
        """A second descriptor of the open ``.part``, with its own file offset.

        A segmented download writes at several offsets at once, one
        connection per descriptor. Reopened through ``/proc/self/fd`` (no
        name is looked up, so nothing swapped in under the name is opened);
        without ``/proc``, by name with ``O_NOFOLLOW``, then checked to be
        the same file (device and inode).
        """
        flags = os.O_RDWR | os.O_CLOEXEC
        try:
            fd = os.open(f"/proc/self/fd/{self.fd}", flags)
        except OSError:
            fd = os.open(self.part_name, flags | os.O_NOFOLLOW, dir_fd=self._dir_fd)
        held, got = os.fstat(self.fd), os.fstat(fd)
        if (held.st_dev, held.st_ino) != (got.st_dev, got.st_ino):
            os.close(fd)
            raise LocalFileError(f"{self.part_path} was replaced during the download")
        return fd

    def written(self) -> int:
        """Bytes in the open ``.part``: where a retry resumes."""
        return os.fstat(self.fd).st_size if self.fd >= 0 else 0

    def _create_part(self) -> int:
        if (self.overwrite or self.resume) and self._exists(self.part_name):
            # A leftover check() accepted: remove it, then create afresh (never open it).
            self._unlink_part_name()
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.part_name, flags, 0o644, dir_fd=self._dir_fd)
        except FileExistsError:
            raise LocalFileError(
                f"{self.part_path} appeared while starting (another program?); not touching it"
            ) from None
        except OSError as error:
            raise local_error(error, f"cannot create {self.part_path}") from None
        return self._locked(fd)

    def _resume_part(self) -> int:
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(self.part_name, flags, dir_fd=self._dir_fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise LocalFileError(
                    f"{self.part_path} is a symlink; refusing to follow it"
                ) from None
            raise local_error(error, f"cannot open {self.part_path}") from None
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif info.st_uid != os.geteuid():
            problem = "belongs to another user"
        elif info.st_nlink != 1:
            problem = "has other hard links"
        if problem is not None:
            os.close(fd)
            raise LocalFileError(f"{self.part_path} {problem}; refusing to resume into it")
        os.set_blocking(fd, True)
        return self._locked(fd)

    def _locked(self, fd: int) -> int:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LocalFileError(f"{self.part_path} is being written by another download") from None
        return fd

    def _is_our_part(self) -> bool:
        """Whether the ``.part`` name still leads to the file we hold open."""
        try:
            named = os.stat(self.part_name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(self.fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _unlink_part_name(self) -> None:
        try:
            os.unlink(self.part_name, dir_fd=self._dir_fd)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise LocalFileError(f"cannot remove {self.part_path}: {error.strerror}") from None

    def commit(self, mtime_ns: int | None) -> str:
        """Give the verified ``.part`` its final name; never clobber without ``overwrite``.

        The name is checked to still lead to the file written (device and inode)
        right before the link or rename, so a file swapped in under the
        ``.part`` name is never the one that gets the final name.
        """
        if mtime_ns is not None:
            os.utime(self.fd, ns=(mtime_ns, mtime_ns))
        try:
            if not self._is_our_part():
                raise LocalFileError(
                    f"{self.part_path} was replaced during the download; not committing it"
                )
            if self.overwrite:
                os.replace(
                    self.part_name, self.name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd
                )
            else:
                self._link_no_clobber()
        finally:
            self.close()
        return self.final_path

    def _link_no_clobber(self) -> None:
        try:
            rename_no_clobber(self._dir_fd, self.part_name, self.name)
        except FileExistsError:
            raise LocalFileError(
                f"{self.final_path} appeared during the download (kept {self.part_path})"
            ) from None

    def abandon(self, *, keep_part: bool) -> None:
        """End without a final file: keep the ``.part`` for ``--resume``, or remove it."""
        if not keep_part and self.fd >= 0 and self._is_our_part():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.part_name, dir_fd=self._dir_fd)
        self.close()

    def close(self) -> None:
        for attr in ("fd", "_dir_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)


def write_all(fd: int, view: memoryview) -> None:
    """``os.write`` until everything is written; a full disk becomes ``DiskFullError``."""
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as error:
        raise write_failed(error) from None


def write_failed(error: OSError) -> LocalFileError:
    """The error to raise for a failed write into a download's file."""
    return local_error(error, "cannot write")


def save_whole(
    dir_fd: int, folder: str, name: str, data: bytes, mtime_ns: int | None, *, overwrite: bool
) -> None:
    """A small file already verified in memory: ``NAME.getfile-part`` written whole, then named.

    The same guarantees as ``Destination`` in eight system calls where the
    general path takes about twenty: created with ``O_EXCL | O_NOFOLLOW``
    (a leftover ``.part``, never followed, is removed and made afresh),
    locked, written, timed on its descriptor, checked to still be the file
    the name leads to, then renamed without ever replacing ``NAME`` (unless
    ``overwrite``). ``folder`` is only for messages.
    """
    part = part_name(name)
    fd = _create_part_in(dir_fd, folder, part)
    remove_part = True  # until the name may no longer be ours, or the part is whole
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalFileError(
                f"{os.path.join(folder, part)} is being written by another download"
            ) from None
        write_all(fd, memoryview(data))
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        held = os.fstat(fd)
        try:
            named = os.stat(part, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            named = None
        if named is None or (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            remove_part = False  # the name leads to someone else's file now
            raise LocalFileError(
                f"{os.path.join(folder, part)} was replaced while saving; not committing it"
            )
        remove_part = False  # whole and verified: kept if naming it fails
        if overwrite:
            os.replace(part, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            try:
                rename_no_clobber(dir_fd, part, name, many=True)
            except FileExistsError:
                shown = os.path.join(folder, name)
                raise LocalFileError(
                    f"{shown} appeared during the download (kept {part})"
                ) from None
    except BaseException:
        if remove_part:
            with contextlib.suppress(OSError):
                os.unlink(part, dir_fd=dir_fd)  # ours (checked above, or just made): half-written
        raise
    finally:
        os.close(fd)


def keep_part(dir_fd: int, folder: str, name: str, data: bytes) -> None:
    """What arrived of a small file, as ``NAME.getfile-part``, for the next attempt to resume."""
    part = part_name(name)
    fd = _create_part_in(dir_fd, folder, part)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        write_all(fd, memoryview(data))
    finally:
        os.close(fd)


def read_part(dir_fd: int, name: str, limit: int) -> bytes | None:
    """A small file's ``NAME.getfile-part`` to resume from, if it is one we may trust.

    As ``Destination`` resumes: a plain file of ours with one link, never
    through a symlink, and here no longer than ``limit``; ``None`` otherwise
    (it is then made afresh when the file is saved).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(part_name(name), flags, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            return None
        if info.st_size > limit:
            return None
        data = os.pread(fd, info.st_size, 0)
        return data if len(data) == info.st_size else None
    finally:
        os.close(fd)


def _create_part_in(dir_fd: int, folder: str, part: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(2):
        try:
            return os.open(part, flags, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            # A leftover of an earlier run (or a planted symlink): unlink never follows it.
            try:
                os.unlink(part, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            except OSError as error:
                shown = os.path.join(folder, part)
                raise LocalFileError(f"cannot remove {shown}: {error.strerror}") from None
        except OSError as error:
            shown = os.path.join(folder, part)
            raise local_error(error, f"cannot create {shown}") from None
    shown = os.path.join(folder, part)
    raise LocalFileError(f"{shown} keeps appearing (another program?); not touching it")


def rename_no_clobber(dir_fd: int, source: str, name: str, *, many: bool = False) -> None:
    """Rename ``source`` to ``name`` in one folder, or ``FileExistsError`` if ``name`` exists.

    With ``many`` (a tree's thousands of files): ``renameat2(RENAME_NOREPLACE)``,
    one atomic step where a hard link and an unlink took two (and two changes
    to the folder). Not for one file: reaching it through ``ctypes`` costs
    ~1.7 ms of imports, 5% of a whole 1 MiB ``getfile get`` (issue 15's
    start-up target), for one system call saved. Without it, or on a file
    system without it (``EINVAL``), the hard link; on one without hard links
    either, a check and a rename (a small race, documented).
    """
    renameat2 = _renameat2() if many else None
    if renameat2 is not None:
        if renameat2(dir_fd, os.fsencode(source), dir_fd, os.fsencode(name), _NOREPLACE) == 0:
            return
        code = _ctypes().get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), name)
    try:
        os.link(source, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if _exists_in(dir_fd, name):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), name) from None
        os.rename(source, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return
    os.unlink(source, dir_fd=dir_fd)


def _exists_in(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


#: ``renameat2``'s flag: fail with EEXIST rather than replace.
_NOREPLACE = 1
#: libc's ``renameat2`` once looked up (``False``: this libc has none).
_RENAMEAT2: Callable[..., int] | bool | None = None


def _ctypes() -> ModuleType:
    import ctypes  # ~2 ms: only once a file is committed, never at start-up

    return ctypes


def _renameat2() -> Callable[..., int] | None:
    global _RENAMEAT2
    if _RENAMEAT2 is None:
        ctypes = _ctypes()
        try:
            function = ctypes.CDLL(None, use_errno=True).renameat2
        except (AttributeError, OSError):
            _RENAMEAT2 = False
        else:
            function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
            function.argtypes += [ctypes.c_uint]
            function.restype = ctypes.c_int
            _RENAMEAT2 = function
    return _RENAMEAT2 if callable(_RENAMEAT2) else None
