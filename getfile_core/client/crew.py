"""What the connections of one segmented download share, and the rules they follow together.

A ``Crew`` holds the plan of pieces, the sources, the reference digest and
the counters; its methods are the decisions that concern more than one
connection: whether a mirror may be used (``admitted``), whether a digest
a head or trailer names is the reference (``check_digest``), and what a
connection's final failure means (``failed``: a mirror dropped with one
line, a quiet step back after ``busy``, or the end of the download). The
connections themselves run ``rangefetch.work``; ``segments`` supervises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from getfile_core._values import Value
from getfile_core.client.destination import Destination
from getfile_core.client.mirrors import Head, NoRanges, Source, differs, fetch_digest, probe
from getfile_core.client.plan import Plan
from getfile_core.client.retry import run_with_retries
from getfile_core.client.session import printable
from getfile_core.client.state import Options, Phase, RetryNotice, TransferState
from getfile_core.errors import (
    BusyError,
    GetfileError,
    IntegrityError,
    InterruptedError_,
    LocalFileError,
    ProtocolError,
    TimeoutError_,
    TooSlowError,
    UnreachableError,
)


class Crew(Value):
    """The shared state of one segmented download's connections (any thread; see ``lock``).

    A plain class, not a dataclass (``getfile_core._values`` says why); equal
    only to itself (it holds its own locks).
    """

    _fields = (
        "options",
        "destination",
        "state",
        "sources",
        "plan",
        "head",
        "digest",
        "live",
        "working",
        "connections_made",
        "fatal",
        "last_error",
        "reverted",
    )
    __slots__ = (*_fields, "lock", "changed", "subs", "_digest_lock")
    options: Options
    destination: Destination
    #: The download's own state: only its ``cancelled`` is read here.
    state: TransferState
    sources: list[Source]
    plan: Plan
    #: The first source's head: the size, mtime and (maybe) digest every source must match.
    head: Head
    #: The first source's whole-file digest, once known: the file must match it.
    digest: str | None
    #: Guards the counters and ``Source.alive``.
    lock: threading.Lock
    #: Set whenever a connection thread ends, so the supervisor looks at once.
    changed: threading.Event
    #: Each connection's own state (cancel, retry waits), in order.
    subs: list[TransferState]
    #: Connections moving body bytes now.
    live: int
    #: Connection threads not yet ended (a "busy" refusal ends one quietly if others run).
    working: int
    #: Connections opened, the first head's included.
    connections_made: int
    #: The error that ends the download (set once), and the last one any connection met.
    fatal: GetfileError | None
    last_error: GetfileError | None
    #: A mirror's bytes were taken back: the in-order hash must start again.
    reverted: bool

    def __init__(
        self,
        options: Options,
        destination: Destination,
        state: TransferState,
        sources: list[Source],
        plan: Plan,
        head: Head,
        digest: str | None = None,
        live: int = 0,
        working: int = 0,
        connections_made: int = 1,
        fatal: GetfileError | None = None,
        last_error: GetfileError | None = None,
        reverted: bool = False,
    ) -> None:
        self.options = options
        self.destination = destination
        self.state = state
        self.sources = sources
        self.plan = plan
        self.head = head
        self.digest = digest
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.subs: list[TransferState] = []
        self.live = live
        self.working = working
        self.connections_made = connections_made
        self.fatal = fatal
        self.last_error = last_error
        self.reverted = reverted
        self._digest_lock = threading.Lock()

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def remark(self, line: str) -> None:
        if self.options.on_remark is not None:
            self.options.on_remark(line)

    def count_connection(self) -> None:
        with self.lock:
            self.connections_made += 1

    def reference_digest(
        self, sub: TransferState, on_retry: Callable[[RetryNotice], None] | None = None
    ) -> str:
        """The first source's digest; asked for (a zero-length range) if nothing brought it."""
        with self._digest_lock:
            if self.digest is None:
                primary, size = self.sources[0].target, self.head.size
                digest, attempts = run_with_retries(
                    lambda: fetch_digest(primary, size, self.options, sub),
                    options=self.options,
                    state=sub,
                    retryable=retryable,
                    on_retry=on_retry,
                )
                with self.lock:
                    self.connections_made += attempts
                self.digest = digest
            return self.digest

    def admitted(self, source: Source, sub: TransferState) -> bool:
        """A mirror is used only once its size and digest match the first source's."""
        if source.primary:
            return True
        with source.checking:
            if source.head is not None or not source.alive:
                return source.alive
            try:
                self.count_connection()
                head = probe(source.target, self.options, sub)
                why = differs(self.head.size, head.size, self.digest, head.digest)
                if not why:  # same size: now the digests, asked for if the heads had none
                    theirs = head.digest or fetch_digest(
                        source.target, head.size, self.options, sub
                    )
                    why = differs(self.head.size, head.size, self.reference_digest(sub), theirs)
            except NoRanges as refusal:
                why = f"cannot send byte ranges ({refusal.why})"
            except GetfileError as error:
                if sub.cancelled:
                    return False
                why = f"{printable(str(error))}"
            if why:
                self.drop(source, f"{why}, not used")
                return False
            source.head = head
            return True

    def check_digest(self, source: Source, digest: str | None) -> None:
        """Every head and trailer must name the reference digest (the file did not change)."""
        if digest is None:
            return
        with self.lock:
            if self.digest is None and source.primary:
                self.digest = digest
        if digest != self.digest:
            if source.primary:
                raise IntegrityError(
                    "the file changed on the server during the download "
                    f"(digest now {printable(digest)[:20]}...; partial file removed)"
                )
            raise Different(f"different file (digest {printable(digest)[:20]}…)")

    def failed(self, source: Source, error: GetfileError) -> None:
        """A connection ended for good: drop its mirror, or stop the download."""
        if not source.primary and isinstance(error, IntegrityError | ProtocolError):
            # A mirror that broke its word: none of its bytes are kept.
            self.plan.revert(source.index)
            self.reverted = True
            why = error if isinstance(error, Different) else f"failed ({printable(str(error))})"
            self.drop(source, f"{why}, not used")
            return
        if self.plan.complete() and not self.state.cancelled:
            return  # stopped because every byte is in: nothing failed
        self.last_error = error
        if isinstance(error, BusyError) and self.working > 1:
            return  # the server has no slot for one more: the connections it has go on
        others = [s for s in self.sources if s.alive and s is not source]
        local = isinstance(error, LocalFileError)
        if local or self.state.cancelled or (source.primary and not retryable(error)):
            self.fatal = self.fatal or error
            return
        if others:
            what = "mirror " if not source.primary else ""
            reason = printable(str(error))
            self.drop(source, f"failed ({reason}); the others take its ranges", what)

    def drop(self, source: Source, why: str, what: str = "mirror ") -> None:
        with self.lock:
            if not source.alive:
                return
            source.alive = False
        self.remark(f"{what}{source.label}: {why}")

    def stop_all(self) -> None:
        for sub in self.subs:
            sub.cancel()
        self.plan.wake()

    def stop_idle(self) -> None:
        """Every byte is in: end the backoff waits (and mirror checks) still going on.

        Connections reading a body or a trailer are left to finish: a trailer
        brings the digest, which saves asking for it.
        """
        for sub in self.subs:
            if sub.phase not in (Phase.DOWNLOADING, Phase.VERIFYING):
                sub.cancel()
        self.plan.wake()


class Different(ProtocolError):
    """A mirror's digest differs from the first source's."""


def retryable(error: GetfileError) -> bool:
    """As ``get.Download``: lost, reset, or silent after the server answered."""
    if isinstance(error, InterruptedError_):
        return True
    if isinstance(error, TooSlowError):
        return False
    return isinstance(error, TimeoutError_ | UnreachableError)
