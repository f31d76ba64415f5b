"""The access log's records: what was asked, what was answered, what really happened.

The library never prints: ``FileServer(on_access=...)`` hands each record to
the caller (the CLI prints ``format()``; the TUI shows it in its pane).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    """How a connection ended, whatever the status said at the start."""

    #: Every byte announced was handed to the kernel (with TLS: acknowledged by the client).
    COMPLETE = "complete"
    #: The client accepted no byte for ``stall_timeout`` seconds and was cut.
    STALLED = "stalled"
    #: The client closed or reset the connection before the end.
    CLIENT_GONE = "client-gone"
    #: The server was stopped and the grace ran out (or a second Ctrl-C).
    STOPPING = "stopping"
    #: The handler was cancelled for another reason.
    CANCELLED = "cancelled"
    #: A well-formed request the server would not serve (not found, forbidden, ...).
    REFUSED = "refused"
    #: A malformed request, or a request line that never finished in time.
    BAD_REQUEST = "bad-request"
    #: No transfer slot was free.
    BUSY = "busy"
    #: The file changed or shrank while it was being sent.
    FILE_CHANGED = "file-changed"
    #: The server could not do its part (a read error).
    SERVER_ERROR = "server-error"


@dataclass(frozen=True)
class AccessRecord:
    """One line of the access log."""

    when: float
    peer: str
    kind: str  # "GET", "LIST", "LEGACY" (or "?" / "-" before a request was parsed)
    path: str
    #: The status answered (a status token such as ``ok`` or ``not-found``).
    status: str
    #: Body bytes the client really accepted (for a cut connection, what its
    #: kernel acknowledged, not what was queued).
    sent: int
    seconds: float
    note: str = ""
    outcome: str = ""

    def format(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.when))
        note = f" ({self.note})" if self.note else ""
        outcome = f" {self.outcome}" if self.outcome else ""
        return (
            f"{stamp} {self.peer} {self.kind} {self.path!r} {self.status} "
            f"{self.sent} B {self.seconds:.3f} s{outcome}{note}"
        )


class AccessEntry:
    """What one connection did, filled in as it goes and turned into one record at the end."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.started = time.time()
        self.kind = "-"
        self.path = ""
        self.status = "closed"
        self.sent = 0
        self.note = ""
        self.outcome: Outcome | None = None
        #: Some connections are not worth a line (a health check's PING).
        self.quiet = False
        #: The whole answer, its trailer included, was handed over: the connection is
        #: closed (what is buffered still goes out) even when the trailer says the
        #: file changed; a reset would throw that trailer away with the buffer.
        self.answered = False

    def end(self, outcome: Outcome, note: str = "") -> None:
        """Set the outcome once: the first cause found is the true one."""
        if self.outcome is None:
            self.outcome = outcome
        if note and not self.note:
            self.note = note

    def refuse(self, status: str, reason: str, outcome: Outcome = Outcome.REFUSED) -> None:
        self.status = status
        self.end(outcome, reason)

    @property
    def worth_logging(self) -> bool:
        return not self.quiet and (self.kind != "-" or bool(self.note))

    def record(self) -> AccessRecord:
        return AccessRecord(
            when=self.started,
            peer=self.peer,
            kind=self.kind,
            path=self.path,
            status=self.status,
            sent=self.sent,
            seconds=time.time() - self.started,
            note=self.note,
            outcome=str(self.outcome or ""),
        )


class RepeatFilter:
    """One log line per cause per interval: a flood of identical failures is one line.

    ``admit(cause)`` answers ``None`` (fold this one into the next line) or
    how many were folded since the cause was last let through.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}

    def admit(self, cause: str, now: float | None = None) -> int | None:
        now = time.monotonic() if now is None else now
        last = self._last.get(cause)
        if last is not None and now - last < self.interval:
            self._folded[cause] = self._folded.get(cause, 0) + 1
            return None
        if len(self._last) > 64:  # causes are class names, but stay bounded anyway
            self._last.clear()
            self._folded.clear()
        self._last[cause] = now
        return self._folded.pop(cause, 0)
