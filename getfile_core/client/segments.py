"""One file over several connections (``Options.segments``) and servers (``Options.mirrors``).

On a long path one TCP connection moves at most its window per round trip,
and many servers cap each connection; N connections each fetching a byte
range (a version-2 ``GET offset=A length=L``) move up to N times as much.
Every connection writes its range in place into the one ``.part`` (each
through its own descriptor, so the kernel's splice path still works), the
finished ranges are recorded beside it (``ranges``) so a retry, a
``--resume`` or a later run continues every range where it stopped, and the
file is verified as ONE file at the end against the first server's
whole-file digest. The work is shared by stealing (``plan``): a connection
with nothing left takes the back half of the largest range still running,
so faster connections and mirrors end up fetching more.

Hashing: the supervising thread hashes the ``.part`` in order, up to the
first byte not yet written, while the connections run; when the last range
lands only the part after the first gap is left to hash. Measured on
loopback, 1 GiB in 8 segments (5 runs, a loaded 2-core VM): the wait after
the last byte was 0.20 s against 0.41 s when the whole file was hashed at
the end (the total time was within the noise of the load).

Files under ``MIN_SEGMENTED`` use one connection (see its docstring), and
so does a server that cannot send ranges (legacy, version 1), with one line
saying so.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

import blake3

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client import ranges
from getfile_core.client.body import expect_close, read_trailer
from getfile_core.client.destination import Destination, write_all
from getfile_core.client.mirrors import (
    Head,
    NoRanges,
    Source,
    check_range,
    differs,
    fetch_digest,
    probe,
)
from getfile_core.client.plan import MIN_SPLIT, Piece, Plan
from getfile_core.client.receive import BUFFER, open_receiver
from getfile_core.client.retry import PROGRESS, backoff_delay, run_with_retries
from getfile_core.client.session import PaceFloor, Session, printable, raise_for_status
from getfile_core.client.state import FetchResult, Options, Phase, RetryNotice, TransferState
from getfile_core.digest import format_digest, hash_range, new_hasher
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
from getfile_core.protocol import LATEST, Request, Verb

MiB = 1024 * 1024
#: Files smaller than this take one connection, whatever ``segments`` says.
#: Segments cost a round trip more (the head that gives the size) and a
#: connection each. Measured (medians of 3, in-process server, 2-core VM):
#: on a long path (40 ms one way, 256 KiB window) one connection against
#: 4 segments took 0.42 s vs 0.49 s for 1 MiB, 0.76 vs 0.83 s for 2 MiB,
#: 1.41 vs 0.86 s for 4 MiB and 2.74 vs 0.83 s for 8 MiB; on loopback
#: segments never won below 8 MiB (3.1 vs 5.3 ms at 4 MiB). 4 MiB is where
#: they start to pay on a long path and cost a few ms on a fast one.
MIN_SEGMENTED = 4 * MiB
#: Most connections one download opens (per download, all sources together).
MAX_CONNECTIONS = 32
#: How often the supervisor samples progress, hashes what is in order, and
#: notices a cancel; the ranges record is rewritten every ``SAVE_EVERY``.
TICK = 0.1
SAVE_EVERY = 1.0

Remark = Callable[[str], None]


def wants_segments(options: Options, destination: Destination) -> bool:
    """Segmented when asked, or when a ``.part`` to resume was written in ranges."""
    if options.legacy is True:
        return False
    if options.segments > 1 or options.mirrors:
        return True
    return destination.resume and os.path.lexists(destination.part_path + ranges.SUFFIX)


class SegmentedDownload:
    """One file from one or more sources over several connections; see the module."""

    def __init__(
        self, target: Target, destination: Destination, options: Options, state: TransferState
    ) -> None:
        self.destination = destination
        self.options = options
        self.state = state
        self.sources = [Source(0, target)] + [
            Source(i, mirror) for i, mirror in enumerate(options.mirrors, start=1)
        ]
        self.record_name = destination.part_name + ranges.SUFFIX
        self.plan: Plan | None = None
        self.head: Head | None = None
        #: The first source's whole-file digest, once known: the file must match it.
        self.digest: str | None = None
        self._lock = threading.Lock()
        self._digest_lock = threading.Lock()
        self._changed = threading.Event()
        self._subs: list[TransferState] = []
        self._threads: list[threading.Thread] = []
        self._fatal: GetfileError | None = None
        self._last_error: GetfileError | None = None
        self._reverted = False
        self._saved: ranges.Record | None = None
        self._live = 0
        #: Connection threads not yet ended (a "busy" refusal ends one quietly if others run).
        self._working = 0
        self.connections_made = 1

    # ------------------------------------------------------------ the whole download

    def run(self, on_retry: Callable[[RetryNotice], None] | None) -> FetchResult:
        began = time.monotonic()
        state = self.state
        state.phase = Phase.CONNECTING
        try:
            offset = self.destination.check()
            shown = self.destination.part_path + ranges.SUFFIX
            record = None
            if self.destination.resume:
                record = ranges.load(self.destination.dir_fd, self.record_name, shown)
            head, _ = run_with_retries(
                lambda: probe(self.sources[0].target, self.options, state),
                options=self.options,
                state=state,
                retryable=lambda error: isinstance(error, InterruptedError_),
                on_retry=on_retry,
            )
        except NoRanges as refusal:
            if record is not None:
                raise LocalFileError(
                    f"{self.destination.part_path} holds byte ranges, but the server cannot "
                    f"send ranges ({refusal.why}); use --overwrite to start again"
                ) from None
            self._remark(
                f"{self.sources[0].label} cannot send byte ranges ({refusal.why}); "
                "downloading over one connection"
            )
            return self._one_connection(on_retry)
        except BaseException:
            self.destination.close()
            raise
        if head.size < MIN_SEGMENTED and record is None:
            return self._one_connection(on_retry)
        self.head, self.digest = head, head.digest
        self.sources[0].head = head
        done = self._usable(record, head, offset)
        count = min(MAX_CONNECTIONS, max(self.options.segments, len(self.sources)))
        self.plan = Plan(head.size, done, count)
        state.total, state.resumed_from = head.size, self.plan.done_bytes()
        fd = self._open_part(offset, head.size)
        try:
            digest = self._download(fd, count, on_retry)
        except BaseException as error:
            self._give_up(error)
            raise
        ranges.remove(self.destination.dir_fd, self.record_name)
        path = self.destination.commit(head.mtime_ns)
        state.phase = Phase.DONE
        return FetchResult(
            path=path,
            size=head.size,
            digest=digest,
            legacy=False,
            resumed_from=state.resumed_from,
            seconds=time.monotonic() - began,
            attempts=self.connections_made,
        )

    def _one_connection(self, on_retry: Callable[[RetryNotice], None] | None) -> FetchResult:
        from getfile_core.client.get import Download

        self.destination.close()
        return Download(self.sources[0].target, self.destination, self.options, self.state).run(
            on_retry
        )

    def _usable(
        self, record: ranges.Record | None, head: Head, offset: int
    ) -> list[tuple[int, int]]:
        """The ranges already on disk that still belong to the server's file."""
        if not offset:
            return []
        if record is None:  # a plain download's .part: a prefix
            return [(0, offset)] if offset <= head.size else []
        if record.size != head.size or record.mtime_ns != head.mtime_ns:
            self._remark(
                f"the remote file changed since {self.destination.part_path} was written; "
                "starting again"
            )
            return []
        return [(a, min(b, offset)) for a, b in record.done if a < offset]

    def _open_part(self, offset: int, size: int) -> int:
        fd = self.destination.open_part(offset)
        if not offset:
            ranges.remove(self.destination.dir_fd, self.record_name)
        if os.fstat(fd).st_size != size:
            os.ftruncate(fd, size)
        return fd

    def _give_up(self, error: BaseException) -> None:
        """Keep the ``.part`` and its record for ``--resume``, unless it cannot be trusted."""
        self._stop_all()  # Ctrl-C lands here too: no connection writes on after the close
        broke_trust = isinstance(error, IntegrityError | ProtocolError)
        keep = self.plan is not None and self.plan.done_bytes() > 0 and not broke_trust
        dir_fd = self.destination.dir_fd
        if keep and self.plan is not None and dir_fd >= 0:
            with contextlib.suppress(LocalFileError):
                self._save_record()
        elif dir_fd >= 0:
            ranges.remove(dir_fd, self.record_name)
        self.destination.abandon(keep_part=keep)

    def _save_record(self) -> None:
        """Rewrite the ranges record, if the ranges changed since the last time."""
        assert self.plan is not None and self.head is not None
        record = ranges.Record(self.head.size, self.head.mtime_ns, tuple(self.plan.done_ranges()))
        if record != self._saved:
            ranges.save(self.destination.dir_fd, self.record_name, record)
            self._saved = record

    def _remark(self, line: str) -> None:
        if self.options.on_remark is not None:
            self.options.on_remark(line)

    # ------------------------------------------------------------ supervising the connections

    def _download(self, fd: int, count: int, on_retry: Callable[[RetryNotice], None] | None) -> str:
        """Run the connections, hash in order meanwhile, and verify the whole file."""
        assert self.plan is not None
        state = self.state
        state.phase = Phase.DOWNLOADING
        for index in range(count):
            source = self.sources[index % len(self.sources)]
            sub = TransferState(phase=Phase.CONNECTING)
            self._subs.append(sub)
            thread = threading.Thread(
                target=self._work,
                args=(source, sub, on_retry),
                name=f"getfile-segment-{index}",
                daemon=True,
            )
            self._threads.append(thread)
            with self._lock:
                self._working += 1
            thread.start()
        hasher, hashed = new_hasher(), 0
        buffer = memoryview(bytearray(BUFFER))
        saved = time.monotonic()
        while any(thread.is_alive() for thread in self._threads):
            self._changed.wait(TICK)
            self._changed.clear()
            if state.cancelled or self._fatal is not None:
                self._stop_all()
            elif self.plan.complete():
                self._stop_idle()
            if self._reverted:  # a mirror's bytes were taken back: hash again from the start
                hasher, hashed, self._reverted = new_hasher(), 0, False
            hashed = self._hash_in_order(fd, hasher, hashed, buffer)
            state.done, state.connections = self.plan.done_bytes(), self._live
            if time.monotonic() - saved >= SAVE_EVERY:
                self._save_record()
                saved = time.monotonic()
        for thread in self._threads:
            thread.join()
        state.done, state.connections = self.plan.done_bytes(), 0
        state.check_cancelled()
        if self._fatal is not None:
            raise self._fatal
        if not self.plan.complete():
            raise self._last_error or InterruptedError_("every connection ended early")
        if self._reverted:
            hasher, hashed = new_hasher(), 0
        return self._verify(fd, hasher, hashed, buffer, on_retry)

    def _hash_in_order(
        self, fd: int, hasher: blake3.blake3, hashed: int, buffer: memoryview
    ) -> int:
        assert self.plan is not None
        prefix = self.plan.prefix()
        if prefix > hashed:
            hash_range(fd, hashed, prefix, hasher, buffer)
        return max(prefix, hashed)

    def _verify(
        self,
        fd: int,
        hasher: blake3.blake3,
        hashed: int,
        buffer: memoryview,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> str:
        assert self.head is not None
        self.state.phase = Phase.VERIFYING
        hash_range(fd, hashed, self.head.size, hasher, buffer)
        got = format_digest(hasher)
        if self.digest is None:
            self._reference_digest(self.state, on_retry)
        if got != self.digest:
            raise IntegrityError(
                f"digest mismatch: server announced {str(self.digest)[:20]}..., "
                f"received data hashes to {got[:20]}... (partial file removed)"
            )
        return got

    def _reference_digest(
        self, sub: TransferState, on_retry: Callable[[RetryNotice], None] | None = None
    ) -> str:
        """The first source's digest; asked for (a zero-length range) if nothing brought it."""
        with self._digest_lock:
            if self.digest is None:
                assert self.head is not None
                primary, size = self.sources[0].target, self.head.size
                digest, attempts = run_with_retries(
                    lambda: fetch_digest(primary, size, self.options, sub),
                    options=self.options,
                    state=sub,
                    retryable=_retryable,
                    on_retry=on_retry,
                )
                with self._lock:
                    self.connections_made += attempts
                self.digest = digest
            return self.digest

    def _count_connection(self) -> None:
        with self._lock:
            self.connections_made += 1

    def _stop_all(self) -> None:
        for sub in self._subs:
            sub.cancel()

    def _stop_idle(self) -> None:
        """Every byte is in: end the backoff waits (and mirror checks) still going on.

        Connections reading a body or a trailer are left to finish: a trailer
        brings the digest, which saves asking for it.
        """
        for sub in self._subs:
            if sub.phase not in (Phase.DOWNLOADING, Phase.VERIFYING):
                sub.cancel()

    # ------------------------------------------------------------ one connection's thread

    def _work(
        self,
        source: Source,
        sub: TransferState,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> None:
        """Take pieces and fetch them, until none is left, the source is dropped, or a stop."""
        fd = -1
        try:
            if not self._admitted(source, sub):
                return
            fd = self.destination.another_descriptor()
            self._fetch_pieces(source, sub, fd, on_retry)
        except GetfileError as error:
            self._failed(source, error)
        except OSError as error:
            self._failed(source, LocalFileError(f"{error.strerror or error}"))
        finally:
            if fd >= 0:
                os.close(fd)
            with self._lock:
                self._working -= 1
            self._changed.set()

    def _fetch_pieces(
        self,
        source: Source,
        sub: TransferState,
        fd: int,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> None:
        """``retry.run_with_retries``'s rules, except that the piece is let go before the wait.

        A connection waiting out its backoff holds no bytes hostage: another
        connection (another mirror's, most usefully) takes the piece at once,
        and this one takes whatever is free when its wait ends.
        """
        assert self.plan is not None
        failures = 0
        while source.alive and self._fatal is None and not sub.cancelled:
            piece = self.plan.take(source.index)
            if piece is None:
                return
            before = sub.done
            try:
                self._fetch_range(source, piece, sub, fd)
                continue
            except GetfileError as error:
                if sub.done - before >= PROGRESS:
                    failures = 0
                if sub.cancelled or failures >= self.options.retries or not _retryable(error):
                    raise
                failures += 1
                reason = f"{source.label}: {error}" if len(self.sources) > 1 else str(error)
                notice = RetryNotice(
                    attempt=failures,
                    attempts=self.options.retries,
                    delay=backoff_delay(failures, self.options.retry_cap),
                    reason=reason,
                )
            finally:
                self.plan.release(piece)
            sub.begin_retry(notice)
            if on_retry is not None:
                on_retry(notice)
            sub.backoff(notice.delay)

    def _admitted(self, source: Source, sub: TransferState) -> bool:
        """A mirror is used only once its size and digest match the first source's."""
        if source.primary:
            return True
        assert self.head is not None
        with source.checking:
            if source.head is not None or not source.alive:
                return source.alive
            try:
                self._count_connection()
                head = probe(source.target, self.options, sub)
                why = differs(self.head.size, head.size, self.digest, head.digest)
                if not why:  # same size: now the digests, asked for if the heads had none
                    theirs = head.digest or fetch_digest(
                        source.target, head.size, self.options, sub
                    )
                    why = differs(self.head.size, head.size, self._reference_digest(sub), theirs)
            except NoRanges as refusal:
                why = f"cannot send byte ranges ({refusal.why})"
            except GetfileError as error:
                if sub.cancelled:
                    return False
                why = f"{printable(str(error))}"
            if why:
                self._drop(source, f"{why}, not used")
                return False
            source.head = head
            return True

    def _fetch_range(self, source: Source, piece: Piece, sub: TransferState, fd: int) -> None:
        """One connection: ask for the rest of ``piece``, write it in place, check the digest."""
        if piece.pos >= piece.end:
            return
        sub.phase = Phase.CONNECTING
        session = Session(source.target, self.options, sub)
        try:
            self._exchange(source, piece, sub, fd, session)
        except protocol.LegacySilence:
            raise InterruptedError_("the server closed without answering") from None
        except protocol.ShortBody:
            raise InterruptedError_("connection closed before its range's digest came") from None
        finally:
            session.close()

    def _exchange(
        self, source: Source, piece: Piece, sub: TransferState, fd: int, session: Session
    ) -> None:
        """The request, the body, the trailer (an error here leaves the piece where it got to)."""
        assert self.head is not None
        start, end, size = piece.pos, piece.end, self.head.size
        request = Request(
            Verb.GET, source.target.path, offset=start, length=end - start, version=LATEST
        )
        self._count_connection()
        response = session.open(request)
        assert response is not None
        raise_for_status(response)
        check_range(response, size, start, end - start)
        self._check_digest(source, response.digest)
        sub.phase = Phase.DOWNLOADING
        if not self._copy_range(session, piece, sub, fd):
            return  # the piece was split: the rest is another connection's
        if response.trailer:
            sub.phase = Phase.VERIFYING
            name = printable(source.target.display_path.rsplit("/", 1)[-1])
            self._check_digest(source, read_trailer(session, name, size))
        assert session.sock is not None
        expect_close(session.sock)

    def _copy_range(self, session: Session, piece: Piece, sub: TransferState, fd: int) -> bool:
        """The body into ``fd`` at the piece's position; False when the piece shrank under us."""
        assert self.plan is not None
        sock, conn, limit = session.sock, session.conn, self.options.rate_limit
        assert sock is not None and conn is not None
        os.lseek(fd, piece.pos, os.SEEK_SET)
        leftover = conn.take_buffered()
        if leftover:
            take = min(len(leftover), piece.end - piece.pos)
            write_all(fd, memoryview(leftover)[:take])
            self.plan.advance(piece, take)
            sub.done += take
        remaining = conn.body_remaining or 0
        _bound_silence(sock, self.options.timeout)
        receiver = open_receiver(sock, fd, None, sub.check_cancelled)
        pace = PaceFloor(self.options.timeout, sub.done)
        with self._lock:
            self._live += 1
        try:
            while remaining > 0:
                want = min(BUFFER, remaining, piece.end - piece.pos)
                if want <= 0:
                    return False
                if limit is not None:
                    want = limit.chunk(want)
                count = receiver.receive(want)
                if count == 0:
                    raise InterruptedError_(
                        f"connection closed with {remaining} bytes of its range to go"
                    )
                remaining -= count
                conn.consume_body(count)
                self.plan.advance(piece, count)
                sub.done += count
                if count < PaceFloor.MIN_BYTES:
                    pace.check(sub.done)
                if limit is not None:
                    sub.pause(limit.reserve(count))
            return piece.pos >= piece.end
        finally:
            receiver.close()
            with self._lock:
                self._live -= 1

    def _check_digest(self, source: Source, digest: str | None) -> None:
        """Every head and trailer must name the reference digest (the file did not change)."""
        if digest is None:
            return
        with self._lock:
            if self.digest is None and source.primary:
                self.digest = digest
        if digest != self.digest:
            if source.primary:
                raise IntegrityError(
                    "the file changed on the server during the download "
                    f"(digest now {printable(digest)[:20]}...; partial file removed)"
                )
            raise _Different(f"different file (digest {printable(digest)[:20]}…)")

    def _failed(self, source: Source, error: GetfileError) -> None:
        """A connection ended for good: drop its mirror, or stop the download."""
        assert self.plan is not None
        if self.plan.complete() and not self.state.cancelled:
            return  # stopped because every byte is in: nothing failed
        self._last_error = error
        if isinstance(error, _Different):
            assert self.plan is not None
            self.plan.revert(source.index)
            self._reverted = True
            self._drop(source, f"{error}, not used")
            return
        if isinstance(error, BusyError) and self._working > 1:
            return  # the server has no slot for one more: the connections it has go on
        others = [s for s in self.sources if s.alive and s is not source]
        local = isinstance(error, LocalFileError)
        if local or self.state.cancelled or (source.primary and not _retryable(error)):
            self._fatal = self._fatal or error
            return
        if others:
            what = "mirror " if not source.primary else ""
            reason = printable(str(error))
            self._drop(source, f"failed ({reason}); the others take its ranges", what)

    def _drop(self, source: Source, why: str, what: str = "mirror ") -> None:
        with self._lock:
            if not source.alive:
                return
            source.alive = False
        self._remark(f"{what}{source.label}: {why}")


class _Different(ProtocolError):
    """A mirror's digest differs from the first source's."""


def _retryable(error: GetfileError) -> bool:
    """As ``get.Download``: lost, reset, or silent after the server answered."""
    if isinstance(error, InterruptedError_):
        return True
    if isinstance(error, TooSlowError):
        return False
    return isinstance(error, TimeoutError_ | UnreachableError)


def _bound_silence(sock: socket.socket, timeout: float) -> None:
    """A blocking socket (splice needs one) whose silence ``SO_RCVTIMEO`` bounds (as ``body``)."""
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        return
    sock.settimeout(None)
    seconds = int(timeout)
    micros = int((timeout - seconds) * 1e6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))


__all__ = ["MIN_SEGMENTED", "MIN_SPLIT", "SegmentedDownload", "wants_segments"]
