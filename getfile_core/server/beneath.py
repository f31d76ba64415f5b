"""Open a path the kernel keeps under a folder: ``openat2(RESOLVE_BENEATH)``, one system call.

``ServedRoot`` confines a request by resolving its path with
``os.path.realpath`` (an ``lstat`` per component, in Python: 14 us for a
file six folders deep on this machine, ~15 % of the server's time per
small file in issue 12's tree of 2000 files) before it opens anything.
``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`` does the same
check in the kernel while it resolves, so nothing outside the folder is
ever opened and no symlink swapped in between can win: a ``..`` or a
symlink that would leave the folder, an absolute symlink, or a
``/proc``-style magic link fails with ``EXDEV``/``ELOOP`` instead.

This is only the fast path. Anything it does not open (any ``OSError``:
missing, escaping, not a folder, a kernel or seccomp without ``openat2``,
no ``ctypes``)
is handed back as ``None`` and the caller decides by the slow path, which
gives the precise status and keeps every case the slow path allows (an
absolute symlink that points back inside the folder, which
``RESOLVE_BENEATH`` refuses). ``ENOSYS``/``EPERM`` switch it off for the
process. Reached through ``ctypes`` (Python has no ``openat2``), imported
when a server opens its root (``prepare``), never by a client.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: ``openat2``'s number in the unified system call table (Linux 5.6). Alpha, ia64 and MIPS
#: number their calls differently, so the fast path runs only where 437 is known to be
#: ``openat2``: a wrong number would make another system call with our arguments.
_SYS_OPENAT2 = 437
_UNIFIED_TABLE = frozenset(
    {"x86_64", "i386", "i686", "aarch64", "armv7l", "armv8l", "riscv64", "ppc64le", "ppc64",
     "s390x", "loongarch64"}
)  # fmt: skip
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
#: libc's ``syscall`` and a ``struct open_how`` maker once looked up (``False``: none here).
_OPENAT2: Callable[[int, bytes, int], int] | bool | None = None


def open_beneath(root_fd: int, relative: str, flags: int) -> int | None:
    """A descriptor for ``relative`` under the folder ``root_fd``, or ``None`` (take the slow path).

    ``flags`` are ``os.open``'s (no ``O_CREAT``); ``O_CLOEXEC`` is added.
    """
    openat2 = _openat2()
    if openat2 is None:
        return None
    fd = openat2(root_fd, os.fsencode(relative), flags | os.O_CLOEXEC)
    if fd >= 0:
        return fd
    if _errno() in (errno.ENOSYS, errno.EPERM):  # no openat2 here, or a seccomp filter
        _disable()
    return None


def prepare() -> bool:
    """Look ``openat2`` up now (the server's start-up), not on its first request: True if usable.

    A server that drops privileges or is chrooted after start-up may no
    longer be able to import ``ctypes``; it then takes the slow path.
    """
    return _openat2() is not None


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _disable() -> None:
    global _OPENAT2
    _OPENAT2 = False


def _openat2() -> Callable[[int, bytes, int], int] | None:
    global _OPENAT2
    if _OPENAT2 is None:
        _OPENAT2 = _load() or False
    return _OPENAT2 if callable(_OPENAT2) else None


def _load() -> Callable[[int, bytes, int], int] | None:
    if not sys.platform.startswith("linux") or os.uname().machine not in _UNIFIED_TABLE:
        return None
    try:
        import ctypes
    except ImportError:  # an interpreter built without it, or one that hides it
        return None

    class OpenHow(ctypes.Structure):
        _fields_ = [
            ("flags", ctypes.c_uint64),
            ("mode", ctypes.c_uint64),
            ("resolve", ctypes.c_uint64),
        ]

    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (AttributeError, OSError):
        return None
    syscall.restype = ctypes.c_long
    size = ctypes.c_size_t(ctypes.sizeof(OpenHow))
    resolve = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS

    def openat2(dir_fd: int, path: bytes, flags: int) -> int:
        how = OpenHow(flags, 0, resolve)
        return syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(path),
            ctypes.byref(how),
            size,
        )

    return openat2
