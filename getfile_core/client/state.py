"""What a download is told (``Options``), what it says while running (``TransferState``), and
what it ends with (``FetchResult``).

A transfer runs in its own thread (see ``download``); everyone else reads its
state. The transfer's own code is the only writer of ``phase``, ``retry`` and
``note``; other threads only ask: ``cancel()`` and ``retry_now()``, both safe
from any thread, both ending a backoff or rate-limit wait at once.
"""

from __future__ import annotations

import _thread
import collections
import contextlib
import enum
import socket
import time

from getfile_core._values import FrozenValue, Value, init_field
from getfile_core.errors import InterruptedError_

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    import ssl
    import threading
    from collections.abc import Callable

    from getfile_core.address import Target
    from getfile_core.checksums import ExpectedDigest
    from getfile_core.ratelimit import RateLimit


class Phase(enum.StrEnum):
    """Where a transfer is; a StrEnum, so ``phase == "done"`` still reads naturally."""

    QUEUED = "queued"
    CONNECTING = "connecting"
    #: Connected, waiting for the server to be ready (``note`` says for what).
    WAITING = "waiting"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    #: Between attempts: ``TransferState.retry`` says when and why.
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Phase.DONE, Phase.FAILED, Phase.CANCELLED)


# Plain classes (``getfile_core._values``), not dataclasses: importing
# ``dataclasses`` and building these cost ~6 ms of a one-file ``getfile get``.


class RetryNotice(FrozenValue):
    """One retry about to happen: the ``attempt``-th of ``attempts``, after ``delay`` seconds."""

    _fields = ("attempt", "attempts", "delay", "reason")
    __slots__ = _fields
    attempt: int
    attempts: int
    delay: float
    reason: str

    def __init__(self, attempt: int, attempts: int, delay: float, reason: str) -> None:
        init_field(self, "attempt", attempt)
        init_field(self, "attempts", attempts)
        init_field(self, "delay", delay)
        init_field(self, "reason", reason)


class Options(Value):
    """How to reach a server and how patient to be with it.

    ``options.replace(expected=...)`` is a copy with some fields changed.
    """

    _fields = (
        "connect_timeout",
        "timeout",
        "legacy",
        "token",
        "ssl_context",
        "pin_sha256",
        "retries",
        "retry_cap",
        "rate_limit",
        "expected",
        "segments",
        "resume_connections",
        "mirrors",
        "on_remark",
        "known_servers",
    )
    __slots__ = _fields
    connect_timeout: float
    #: Seconds without a byte from the server before giving up.
    timeout: float
    #: ``None``: try extended, fall back to legacy; ``True``: legacy only; ``False``: never.
    legacy: bool | None
    token: bytes | None
    ssl_context: ssl.SSLContext | None
    #: TLS: accept exactly the certificate with this SHA-256 (hex), CA or not.
    pin_sha256: str | None
    #: Attempts after a lost, reset or timed-out connection (0: fail at once). The
    #: count starts again whenever an attempt brought new bytes, so a link that
    #: resets every few MB still finishes a big file.
    retries: int
    #: Backoff between attempts: 1, 2, 4 ... seconds, never more than this.
    retry_cap: float
    #: Shared by every download given the same object; its ``rate`` may change at any time.
    rate_limit: RateLimit | None
    #: A published checksum the file must match (``--checksum``), checked in the
    #: same pass as the BLAKE3 digest. One file's: give each download its own
    #: (``options.replace(expected=...)``).
    expected: ExpectedDigest | None
    #: Connections for one file, each fetching byte ranges (``segments``); 1: one
    #: connection. Files under ``segments.MIN_SEGMENTED`` always use one.
    segments: int
    #: Continuing a ranges record with ``segments`` 1: as many connections as it has
    #: unfinished ranges, up to the count it was started with (a ``--resume`` of a
    #: ``--segments 4`` part went on over one connection, 4x slower on a capped link).
    #: False: ``segments`` as given (the CLI's explicit ``--segments``).
    resume_connections: bool
    #: Other servers with the same file; ranges are spread over all of them.
    mirrors: tuple[Target, ...]
    #: Called in the transfer's thread with one line for a person: a mirror
    #: dropped, a server that cannot send ranges. None: nobody is told.
    on_remark: Callable[[str], None] | None
    #: A file remembering which servers answered ``slice=`` (``known``), so that a
    #: segmented start asks them on every connection at once. None: this process only.
    known_servers: str | None

    def __init__(
        self,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
        legacy: bool | None = None,
        token: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        pin_sha256: str | None = None,
        retries: int = 10,
        retry_cap: float = 30.0,
        rate_limit: RateLimit | None = None,
        expected: ExpectedDigest | None = None,
        segments: int = 1,
        resume_connections: bool = True,
        mirrors: tuple[Target, ...] = (),
        on_remark: Callable[[str], None] | None = None,
        known_servers: str | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.legacy = legacy
        self.token = token
        self.ssl_context = ssl_context
        self.pin_sha256 = pin_sha256
        self.retries = retries
        self.retry_cap = retry_cap
        self.rate_limit = rate_limit
        self.expected = expected
        self.segments = segments
        self.resume_connections = resume_connections
        self.mirrors = mirrors
        self.on_remark = on_remark
        self.known_servers = known_servers


class TransferState(Value):
    """Counters a transfer thread writes and anyone may read; no locks needed to read.

    ``phase`` goes: queued, connecting, [waiting], downloading, verifying,
    then done, failed or cancelled; ``retrying`` (with ``retry`` set) between
    attempts. ``done`` counts bytes of the file on disk (resumed bytes
    included), ``total`` is None while unknown (legacy servers). ``note`` says
    what the client waits for, in words for a person ("" when nothing).

    Equal only to itself, and hashable: each has its own lock, so two states
    never compared equal as dataclasses either.
    """

    _fields = (
        "phase",
        "done",
        "total",
        "resumed_from",
        "legacy",
        "started",
        "cancelled",
        "retry",
        "note",
        "connections",
    )
    __slots__ = (*_fields, "_socket", "_lock", "_wake", "_skip_wait")
    phase: Phase
    done: int
    total: int | None
    resumed_from: int
    legacy: bool
    started: float
    cancelled: bool
    retry: RetryNotice | None
    note: str
    #: Connections moving bytes now (a segmented download has several).
    connections: int

    def __init__(
        self,
        phase: Phase = Phase.QUEUED,
        done: int = 0,
        total: int | None = None,
        resumed_from: int = 0,
        legacy: bool = False,
        started: float | None = None,
        cancelled: bool = False,
        retry: RetryNotice | None = None,
        note: str = "",
        connections: int = 0,
    ) -> None:
        self.phase = phase
        self.done = done
        self.total = total
        self.resumed_from = resumed_from
        self.legacy = legacy
        self.started = time.monotonic() if started is None else started
        self.cancelled = cancelled
        self.retry = retry
        self.note = note
        self.connections = connections
        self._socket: socket.socket | None = None
        self._lock = _thread.allocate_lock()  # threading.Lock, without importing threading
        #: Made by the first wait (``_waiting``): a download that never waits never
        #: imports ``threading`` (0.5 ms of a one-file ``get``'s start-up).
        self._wake: threading.Condition | None = None
        self._skip_wait = False

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def _waiting(self) -> threading.Condition:
        """The condition waits sleep on (``_lock`` held): made on first use, then kept."""
        if self._wake is None:
            import threading

            self._wake = threading.Condition(self._lock)
        return self._wake

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock
            if sock is not None and self.cancelled:
                _shutdown(sock)

    def cancel(self) -> None:
        """Ask the transfer to stop; safe from any thread, idempotent, ends any wait."""
        with self._lock:
            self.cancelled = True
            if self._socket is not None:
                _shutdown(self._socket)
            if self._wake is not None:
                self._wake.notify_all()

    def retry_now(self) -> None:
        """End the current backoff wait now (any thread); no effect outside one."""
        with self._lock:
            self._skip_wait = True
            if self._wake is not None:
                self._wake.notify_all()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise InterruptedError_("cancelled")

    def begin_retry(self, notice: RetryNotice) -> None:
        """Enter the retrying phase; a ``retry_now`` from here on ends the coming wait."""
        with self._lock:
            self._skip_wait = False
            self.retry = notice
            self.note = ""
            self.phase = Phase.RETRYING

    def backoff(self, seconds: float) -> None:
        """Wait out a retry's delay; ``retry_now`` ends it early, ``cancel`` raises."""
        with self._lock:
            self._waiting().wait_for(lambda: self.cancelled or self._skip_wait, seconds)
            self._skip_wait = False
            self.retry = None
        self.check_cancelled()

    def pause(self, seconds: float) -> None:
        """Wait (a rate limit's delay); only ``cancel`` ends it early, and then raises."""
        if seconds <= 0:
            return
        with self._lock:
            self._waiting().wait_for(lambda: self.cancelled, seconds)
        self.check_cancelled()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class RateMeter:
    """Bytes per second over a sliding window of samples (a few seconds).

    Here, not in ``api``, so that ``get -r``'s bar has it without ``asyncio``.

    Fed the bytes *moved* by the current attempt, not the file's size on disk: a
    resumed 1 GiB ``.part`` would otherwise read as 1 GiB arriving in one sample
    (the app showed hundreds of MB/s and a wrong ETA for the first seconds). A
    count that goes down (a new attempt) starts the window again.
    """

    def __init__(self, window: float = 3.0) -> None:
        self.window = window
        self.samples: collections.deque[tuple[float, int]] = collections.deque()

    def sample(self, now: float, done: int) -> float:
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        first_time, first_done = self.samples[0]
        span = now - first_time
        return (done - first_done) / span if span > 0 else 0.0


class FetchResult(FrozenValue):
    """A finished download. ``digest`` is None only from a legacy server: nothing was verified."""

    _fields = (
        "path",
        "size",
        "digest",
        "legacy",
        "resumed_from",
        "seconds",
        "attempts",
        "checksum",
    )
    __slots__ = _fields
    path: str
    size: int
    digest: str | None
    legacy: bool
    resumed_from: int
    seconds: float
    #: Connections it took (1 when no retry was needed).
    attempts: int
    #: ``Options.expected`` when the file matched it (``sha256:…``): verified even
    #: from a legacy server. None when no checksum was asked for.
    checksum: str | None

    def __init__(
        self,
        path: str,
        size: int,
        digest: str | None,
        legacy: bool,
        resumed_from: int,
        seconds: float,
        attempts: int = 1,
        checksum: str | None = None,
    ) -> None:
        init_field(self, "path", path)
        init_field(self, "size", size)
        init_field(self, "digest", digest)
        init_field(self, "legacy", legacy)
        init_field(self, "resumed_from", resumed_from)
        init_field(self, "seconds", seconds)
        init_field(self, "attempts", attempts)
        init_field(self, "checksum", checksum)
