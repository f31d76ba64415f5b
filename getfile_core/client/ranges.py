"""The record of a segmented download's finished ranges: ``NAME.getfile-part.ranges``.

A segmented ``.part`` has holes, so its size no longer says how much of
it is done (as a plain download's does). This small text file beside it
does; it is rewritten (temp file, then rename: never half-written) about
once a second while the download runs and when it stops, so a crash, a
``kill -9`` or a cut link loses at most a second of work. Only bytes
already written to the ``.part`` are ever recorded. It is not fsynced: a
power cut may lose the last records, and any stale or wrong byte is caught
by the whole-file digest at the end anyway.

Format (ASCII, one item a line)::

    getfile-ranges 1
    size 104857600
    mtime 1732485600123456789        (or "-": the server sent none)
    connections 4                    (how many it was started with; absent in old records)
    0 1048576                        (done: bytes [0, 1048576))
    2097152 3145728

Like the ``.part`` it sits beside, it may have been planted by someone else
in a shared folder, so it is read only if it is a plain file of ours with
one link (no symlink followed), at most ``MAX_BYTES`` long, with at most
``MAX_RANGES`` sorted, non-overlapping ranges inside the file; anything
else is refused with one line and never trusted in part.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable

from getfile_core._values import FrozenValue, init_field
from getfile_core.errors import LocalFileError

SUFFIX = ".ranges"
MAGIC = "getfile-ranges 1"
#: Far above what a download writes (a range per piece: a few hundred bytes).
MAX_BYTES = 64 * 1024
MAX_RANGES = 2048
#: The most connections a record may name (``segments.MAX_CONNECTIONS`` bounds their use).
MAX_NAMED_CONNECTIONS = 64


class Record(FrozenValue):
    """What a segmented ``.part`` holds: which bytes of which file."""

    _fields = ("size", "mtime_ns", "done", "connections")
    __slots__ = _fields
    size: int
    mtime_ns: int | None
    done: tuple[tuple[int, int], ...]
    #: Connections the download was started with, so that a plain ``--resume`` goes on
    #: as fast as it began; ``None`` in a record written before it was kept.
    connections: int | None

    def __init__(
        self,
        size: int,
        mtime_ns: int | None,
        done: tuple[tuple[int, int], ...],
        connections: int | None = None,
    ) -> None:
        init_field(self, "size", size)
        init_field(self, "mtime_ns", mtime_ns)
        init_field(self, "done", done)
        init_field(self, "connections", connections)

    def encode(self) -> bytes:
        mtime = "-" if self.mtime_ns is None else str(self.mtime_ns)
        lines = [MAGIC, f"size {self.size}", f"mtime {mtime}"]
        if self.connections is not None:
            lines.append(f"connections {self.connections}")
        lines += [f"{a} {b}" for a, b in self.done[:MAX_RANGES]]
        return ("\n".join(lines) + "\n").encode("ascii")


class BadRecord(LocalFileError):
    """The ranges file is not one we wrote (planted, corrupt, or someone else's)."""


def decode(data: bytes, shown: str) -> Record:
    """Parse a record, refusing anything not exactly as ``encode`` writes it."""

    def bad(why: str) -> BadRecord:
        return BadRecord(f"{shown} is not a valid ranges record ({why}); not using it")

    if len(data) > MAX_BYTES:
        raise bad(f"over {MAX_BYTES} bytes")
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise bad("not ASCII") from None
    if lines[-1] != "" or len(lines) < 4 or lines[0] != MAGIC:
        raise bad("not a getfile ranges file")
    lines = lines[:-1]
    size = _number(lines[1], "size", bad)
    mtime_ns = None if lines[2] == "mtime -" else _number(lines[2], "mtime", bad)
    first = 3
    connections = None
    if len(lines) > 3 and lines[3].startswith("connections "):
        connections = _number(lines[3], "connections", bad)
        if not 1 <= connections <= MAX_NAMED_CONNECTIONS:
            raise bad(f"connections not within 1-{MAX_NAMED_CONNECTIONS}")
        first = 4
    if len(lines) - first > MAX_RANGES:
        raise bad(f"more than {MAX_RANGES} ranges")
    done: list[tuple[int, int]] = []
    for number, line in enumerate(lines[first:], start=first + 1):
        parts = line.split(" ")
        if len(parts) != 2 or not all(p.isdigit() and p.isascii() and len(p) <= 19 for p in parts):
            raise bad(f"line {number}")
        a, b = int(parts[0]), int(parts[1])
        if not a < b <= size or (done and a <= done[-1][1]):
            raise bad(f"line {number}: range out of order or outside the file")
        done.append((a, b))
    return Record(size, mtime_ns, tuple(done), connections)


def _number(line: str, name: str, bad: Callable[[str], BadRecord]) -> int:
    word, _, value = line.partition(" ")
    if word != name or not (value.isdigit() and value.isascii() and len(value) <= 19):
        raise bad(f"bad {name} line")
    return int(value)


def load(dir_fd: int, name: str, shown: str) -> Record | None:
    """The record called ``name`` in the folder, or None when there is none."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BadRecord(f"{shown} is a symlink; refusing to follow it") from None
        raise LocalFileError(f"cannot open {shown}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadRecord(f"{shown} is not a regular file; not using it")
        if info.st_uid != os.geteuid():
            raise BadRecord(f"{shown} belongs to another user; not using it")
        if info.st_nlink != 1:
            raise BadRecord(f"{shown} has other hard links; not using it")
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    return decode(data, shown)


def save(dir_fd: int, name: str, record: Record) -> None:
    """Replace the record atomically: a temp file of ours, then a rename over the name.

    A leftover temp name (a crash, or planted) is removed first, never
    opened: ``unlink`` does not follow a symlink, and the new one is
    created with ``O_EXCL``.
    """
    temp = name + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp, dir_fd=dir_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, 0o644, dir_fd=dir_fd)
        try:
            os.write(fd, record.encode())
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise LocalFileError(f"cannot write {name}: {error.strerror or error}") from None


def remove(dir_fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
