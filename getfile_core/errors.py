"""One exception tree for everything that can go wrong in a transfer.

Each error carries the process exit code the CLI uses and a one-line message
meant for a person, so the CLI and the TUI report failures the same way and
never have to show a traceback.
"""

from __future__ import annotations


class GetfileError(Exception):
    """Base of every error getfile reports to a user."""

    exit_code = 1
    #: Short machine-friendly name, used in logs and the TUI's state column.
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(GetfileError):
    exit_code = 2
    kind = "usage"


class ConnectError(GetfileError):
    """Refused, unreachable, host not found: nothing was transferred."""

    exit_code = 3
    kind = "connect"


class TimeoutError_(GetfileError):
    """The peer went silent for longer than the configured timeout."""

    exit_code = 4
    kind = "timeout"


class RemoteError(GetfileError):
    """The server answered with a status other than ok."""

    exit_code = 5
    kind = "remote"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(RemoteError):
    exit_code = 5
    kind = "not-found"


class ForbiddenError(RemoteError):
    exit_code = 6
    kind = "forbidden"


class UnauthorizedError(RemoteError):
    exit_code = 6
    kind = "unauthorized"


class BusyError(RemoteError):
    exit_code = 10
    kind = "busy"


class IntegrityError(GetfileError):
    """Size or digest of what arrived does not match what the server announced."""

    exit_code = 7
    kind = "integrity"


class LocalFileError(GetfileError):
    """The destination refuses the file: it exists, is locked, is not writable."""

    exit_code = 8
    kind = "local"


class DiskFullError(LocalFileError):
    exit_code = 9
    kind = "disk-full"


class ProtocolError(GetfileError):
    """The peer broke the wire format: a lying or broken server (or client)."""

    exit_code = 11
    kind = "protocol"


class InterruptedError_(GetfileError):
    """The connection ended early or the user cancelled; a .part file is kept."""

    exit_code = 12
    kind = "interrupted"


class LegacyServerError(GetfileError):
    """The operation needs a getfile server; the peer speaks only the book's protocol."""

    exit_code = 13
    kind = "legacy"


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected error",
    2: "bad command line",
    3: "cannot connect (refused, unreachable, host not found)",
    4: "timed out",
    5: "not found (or other refusal by the server)",
    6: "forbidden or unauthorized",
    7: "integrity check failed (size or digest mismatch)",
    8: "local file problem (exists, locked, not writable)",
    9: "disk full",
    10: "server busy",
    11: "protocol error (broken or lying peer)",
    12: "interrupted (connection lost or cancelled; .part kept for --resume)",
    13: "needs a getfile server (the peer is a legacy server)",
    130: "stopped with Ctrl-C",
}


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
