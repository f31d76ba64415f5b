"""One exception tree for everything that can go wrong in a transfer.

Each error carries a one-line message meant for a person and a short ``kind``
for logs, so the CLI and the TUI report failures the same way and never have
to show a traceback. Process exit codes are the command line's business: they
live in ``getfile_core.cli.exit_codes``, keyed by these classes.
"""

from __future__ import annotations

import errno
import os


class GetfileError(Exception):
    """Base of every error getfile reports to a user."""

    #: Short machine-friendly name, used in logs and the TUI's state column.
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(GetfileError):
    kind = "usage"


class ConnectError(GetfileError):
    """Refused, unreachable, host not found: nothing was transferred."""

    kind = "connect"


class TimeoutError_(GetfileError):
    """The peer went silent for longer than the configured timeout."""

    kind = "timeout"


class RemoteError(GetfileError):
    """The server answered with a status other than ok."""

    kind = "remote"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(RemoteError):
    kind = "not-found"


class ForbiddenError(RemoteError):
    kind = "forbidden"


class UnauthorizedError(RemoteError):
    kind = "unauthorized"


class BusyError(RemoteError):
    kind = "busy"


class IntegrityError(GetfileError):
    """Size or digest of what arrived does not match what the server announced."""

    kind = "integrity"


class ChecksumMismatchError(IntegrityError):
    """The file is not the one a published checksum (``--checksum``) describes.

    Unlike a server's lie, the ``.part`` is kept: the published line may be
    the wrong one (another release's), and a person decides what to do.
    """

    kind = "checksum"


class LocalFileError(GetfileError):
    """The destination refuses the file: it exists, is locked, is not writable."""

    kind = "local"


class DiskFullError(LocalFileError):
    kind = "disk-full"


#: The errnos that mean "no room": a full file system or a quota. One set, so every
#: writer agrees. Not EFBIG: that is one file too big for the file system (FAT32's
#: 4 GiB, a ``ulimit -f``), which the next, smaller file may well fit.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

#: EFBIG's words: "File too large" alone reads as the server's file being refused.
TOO_LARGE = "file too large for this file system"


def is_disk_full(error: OSError) -> bool:
    """Whether an ``OSError`` from a write means the disk (or a quota) is full."""
    return error.errno in DISK_FULL_ERRNOS


def local_error(error: OSError, doing: str) -> LocalFileError:
    """The error for a local file operation (``doing``: "cannot create X") that failed.

    A full disk is ``DiskFullError`` wherever it shows (a write, but also a
    create, an open or a mkdir: the folder's own blocks fill up too), so a
    tree stops at it; a file too big for the file system fails that file only.
    """
    if is_disk_full(error):
        return DiskFullError(f"disk full: {os.strerror(error.errno)}")
    if error.errno == errno.EFBIG:
        return LocalFileError(f"{doing}: {TOO_LARGE}")
    return LocalFileError(f"{doing}: {error.strerror}")


class ProtocolError(GetfileError):
    """The peer broke the wire format: a lying or broken server (or client)."""

    kind = "protocol"


class InterruptedError_(GetfileError):
    """The connection ended early or the user cancelled; a .part file is kept."""

    kind = "interrupted"


class LegacyServerError(GetfileError):
    """The operation needs a getfile server; the peer speaks only the book's protocol."""

    kind = "legacy"


class UnreachableError(ConnectError):
    """Refused or unreachable: worth another try once the server was reached before.

    A subclass of ``ConnectError`` (same meaning to users); the client's retries
    tell it apart from a wrong host or a rejected certificate, which no retry mends.
    """

    kind = "connect"


class TooSlowError(TimeoutError_):
    """The server keeps the transfer alive with a trickle: a broken or hostile peer.

    A subclass of ``TimeoutError_`` (same meaning to users); unlike silence on
    a lost link, another attempt would only be trickled again, so it is not retried.
    """

    kind = "timeout"
