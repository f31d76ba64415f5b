"""A tree's small files saved as unnamed inodes, named once whole: five system calls a file.

``destination.save_whole`` takes eight: it creates ``NAME.getfile-part``
(``O_EXCL``), locks it, writes it, times it, checks that the name still
leads to the file it wrote, then renames it without replacing. The lock and
the check exist because the part has a name someone else could open, swap
or remove. A file opened with ``O_TMPFILE`` has no name: nobody can see it
until ``linkat`` gives it one, and ``linkat`` fails with ``EEXIST`` rather
than replace anything (a symlink planted under the name included). So:
``open(folder, O_TMPFILE)``, ``write``, ``futimens``, ``linkat`` through
``/proc/self/fd`` (``AT_SYMLINK_FOLLOW``: that link leads to the open
file itself, not to a path), ``close``. A crash leaves nothing behind (the
kernel frees an unnamed inode when its last descriptor closes).

Measured (2000 x 4 KiB into 20 folders, one thread, nothing else in the
loop): ext4 45 ms against 35 ms, tmpfs 22 ms against 14 ms.

Where the file system or the kernel refuses ``O_TMPFILE`` (``EOPNOTSUPP``
on a file system without it, ``EISDIR`` on kernels before 3.11, no
``/proc``), every later file goes the named way for the rest of the run;
``overwrite`` and a final name that is taken (its error keeps the bytes as
a part) go the named way too.
"""

from __future__ import annotations

import contextlib
import errno
import os

from getfile_core.client.destination import save_whole, write_all
from getfile_core.client.names import part_name

#: ``O_TMPFILE`` (Linux only; 0 where ``os`` has none).
_TMPFILE = getattr(os, "O_TMPFILE", 0)
#: Errors that mean "not here": the file system or the kernel has no unnamed files.
_REFUSED = frozenset(
    (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL, errno.ENOSYS, errno.EPERM)
)
#: ``linkat`` errors that mean ``/proc/self/fd`` cannot name the inode here.
_NO_PROC_LINK = frozenset((errno.ENOENT, errno.EPERM, errno.EACCES, errno.ENOTDIR, errno.EXDEV))


class WholeSaver:
    """``save_whole`` for a tree's many files: unnamed while this system allows it."""

    def __init__(self, unnamed: bool = True) -> None:
        #: Whether to try ``O_TMPFILE`` (turned off for the run at its first refusal).
        self.unnamed = unnamed and bool(_TMPFILE) and os.path.isdir("/proc/self/fd")

    def save(
        self,
        dir_fd: int,
        folder: str,
        name: str,
        data: bytes,
        mtime_ns: int | None,
        *,
        overwrite: bool,
        stale_part: bool = True,
    ) -> None:
        """Save ``data`` as ``name`` in ``dir_fd``, never replacing it unless ``overwrite``.

        ``stale_part``: a ``NAME.getfile-part`` may be there (a folder this
        run did not make, or a cut answer's): removed once the file is named.
        ``folder`` is only for messages.
        """
        if self.unnamed and not overwrite and self._save_unnamed(dir_fd, name, data, mtime_ns):
            if stale_part:
                # What remains of an earlier attempt; unlink never follows a symlink. A part
                # that cannot be removed is harmless (the file is whole): never an error.
                with contextlib.suppress(OSError):
                    os.unlink(part_name(name), dir_fd=dir_fd)
            return
        save_whole(dir_fd, folder, name, data, mtime_ns, overwrite=overwrite)

    def _save_unnamed(self, dir_fd: int, name: str, data: bytes, mtime_ns: int | None) -> bool:
        """True: saved. False: go the named way (refused here, or ``name`` is taken)."""
        flags = _TMPFILE | os.O_WRONLY | os.O_CLOEXEC
        try:
            fd = os.open(".", flags, 0o644, dir_fd=dir_fd)
        except OSError as error:
            # Refused: never again this run. Anything else (a folder not writable, a
            # full disk): the named way meets it too, and says so in its own words.
            self.unnamed = error.errno not in _REFUSED
            return False
        try:
            write_all(fd, memoryview(data))
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            try:
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
            except FileExistsError:
                return False  # the named way says so, and keeps the bytes as a part
            except OSError as error:
                if error.errno not in _NO_PROC_LINK:
                    raise
                self.unnamed = False
                return False
            return True
        finally:
            os.close(fd)


__all__ = ["WholeSaver"]
