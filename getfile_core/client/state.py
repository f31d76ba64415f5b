"""What a download is told (``Options``), what it says while running (``TransferState``), and
what it ends with (``FetchResult``).

A transfer runs in its own thread (see ``download``); everyone else reads its
state. The transfer's own code is the only writer of ``phase``, ``retry`` and
``note``; other threads only ask: ``cancel()`` and ``retry_now()``, both safe
from any thread, both ending a backoff or rate-limit wait at once.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import threading
import time
from dataclasses import dataclass, field

from getfile_core.errors import InterruptedError_

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    import ssl
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


@dataclass(frozen=True)
class RetryNotice:
    """One retry about to happen: the ``attempt``-th of ``attempts``, after ``delay`` seconds."""

    attempt: int
    attempts: int
    delay: float
    reason: str


@dataclass
class Options:
    """How to reach a server and how patient to be with it."""

    connect_timeout: float = 10.0
    #: Seconds without a byte from the server before giving up.
    timeout: float = 30.0
    #: ``None``: try extended, fall back to legacy; ``True``: legacy only; ``False``: never.
    legacy: bool | None = None
    token: bytes | None = None
    ssl_context: ssl.SSLContext | None = None
    #: TLS: accept exactly the certificate with this SHA-256 (hex), CA or not.
    pin_sha256: str | None = None
    #: Attempts after a lost, reset or timed-out connection (0: fail at once). The
    #: count starts again whenever an attempt brought new bytes, so a link that
    #: resets every few MB still finishes a big file.
    retries: int = 10
    #: Backoff between attempts: 1, 2, 4 ... seconds, never more than this.
    retry_cap: float = 30.0
    #: Shared by every download given the same object; its ``rate`` may change at any time.
    rate_limit: RateLimit | None = None
    #: A published checksum the file must match (``--checksum``), checked in the
    #: same pass as the BLAKE3 digest. One file's: give each download its own
    #: (``dataclasses.replace(options, expected=...)``).
    expected: ExpectedDigest | None = None
    #: Connections for one file, each fetching byte ranges (``segments``); 1: one
    #: connection. Files under ``segments.MIN_SEGMENTED`` always use one.
    segments: int = 1
    #: Other servers with the same file; ranges are spread over all of them.
    mirrors: tuple[Target, ...] = ()
    #: Called in the transfer's thread with one line for a person: a mirror
    #: dropped, a server that cannot send ranges. None: nobody is told.
    on_remark: Callable[[str], None] | None = None


@dataclass
class TransferState:
    """Counters a transfer thread writes and anyone may read; no locks needed to read.

    ``phase`` goes: queued, connecting, [waiting], downloading, verifying,
    then done, failed or cancelled; ``retrying`` (with ``retry`` set) between
    attempts. ``done`` counts bytes of the file on disk (resumed bytes
    included), ``total`` is None while unknown (legacy servers). ``note`` says
    what the client waits for, in words for a person ("" when nothing).
    """

    phase: Phase = Phase.QUEUED
    done: int = 0
    total: int | None = None
    resumed_from: int = 0
    legacy: bool = False
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    retry: RetryNotice | None = None
    note: str = ""
    #: Connections moving bytes now (a segmented download has several).
    connections: int = 0
    _socket: socket.socket | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _wake: threading.Condition = field(init=False, repr=False)
    _skip_wait: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._wake = threading.Condition(self._lock)

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
            self._wake.notify_all()

    def retry_now(self) -> None:
        """End the current backoff wait now (any thread); no effect outside one."""
        with self._lock:
            self._skip_wait = True
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
            self._wake.wait_for(lambda: self.cancelled or self._skip_wait, seconds)
            self._skip_wait = False
            self.retry = None
        self.check_cancelled()

    def pause(self, seconds: float) -> None:
        """Wait (a rate limit's delay); only ``cancel`` ends it early, and then raises."""
        if seconds <= 0:
            return
        with self._lock:
            self._wake.wait_for(lambda: self.cancelled, seconds)
        self.check_cancelled()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class FetchResult:
    """A finished download. ``digest`` is None only from a legacy server: nothing was verified."""

    path: str
    size: int
    digest: str | None
    legacy: bool
    resumed_from: int
    seconds: float
    #: Connections it took (1 when no retry was needed).
    attempts: int = 1
    #: ``Options.expected`` when the file matched it (``sha256:…``): verified even
    #: from a legacy server. None when no checksum was asked for.
    checksum: str | None = None
