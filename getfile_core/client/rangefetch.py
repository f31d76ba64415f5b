"""One connection of a segmented download: take a piece, fetch it in place, again, until done.

Each runs in its own thread with its own ``TransferState`` (so a cancel or
a backoff is per connection) and its own descriptor of the ``.part`` (its
own file offset, so the kernel's splice path works as for one connection).
It asks for exactly the rest of its piece (``GET offset=A length=L``),
writes the body in place, and stops early when another connection has
taken the back of the piece (``plan``); the retry rules are the library's
(``retry``), except that the piece is let go during the backoff.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from collections.abc import Callable

from getfile_core import protocol
from getfile_core._values import Value
from getfile_core.client.body import expect_close, read_trailer
from getfile_core.client.crew import Crew, retryable
from getfile_core.client.destination import write_all
from getfile_core.client.mirrors import Opening, Source, check_range
from getfile_core.client.plan import Piece
from getfile_core.client.receive import BUFFER, open_receiver
from getfile_core.client.retry import PROGRESS, backoff_delay
from getfile_core.client.session import PaceFloor, Session, printable, raise_for_status
from getfile_core.client.state import Phase, RetryNotice, TransferState
from getfile_core.errors import GetfileError, InterruptedError_, LocalFileError
from getfile_core.protocol import LATEST, Request, Response, Verb

#: Longest wait of a connection with nothing to take before it looks again
#: (a piece let go wakes it at once; this bounds a missed wake-up or a cancel).
IDLE_WAIT = 0.5


class Started(Value):
    """A connection opened before its thread took pieces, and the piece it is to fill.

    The download's opening connection (its body the whole file's), or one
    slice's (``slices``: its body the piece's). A slice whose answer was
    empty has no piece; one whose opening failed has only the ``error``,
    met as the thread's first failed attempt.
    """

    _fields = ("opening", "piece", "error", "taken")
    __slots__ = _fields
    opening: Opening | None
    piece: Piece | None
    error: GetfileError | None
    #: Set once the thread has taken it on (from then on, the piece is handled as any other).
    taken: bool

    def __init__(
        self,
        opening: Opening | None,
        piece: Piece | None,
        error: GetfileError | None = None,
        taken: bool = False,
    ) -> None:
        self.opening = opening
        self.piece = piece
        self.error = error
        self.taken = taken

    def let_go(self, crew: Crew) -> None:
        """Never taken on (the thread ended first): close it, free the piece."""
        if self.opening is not None:
            self.opening.session.close()
        if self.piece is not None:
            crew.plan.release(self.piece)


def work(
    crew: Crew,
    source: Source,
    sub: TransferState,
    on_retry: Callable[[RetryNotice], None] | None,
    first: Started | None = None,
) -> None:
    """Take pieces and fetch them, until none is left, the source is dropped, or a stop.

    ``first``: a piece whose request is already sent (the download's opening
    connection, or this connection's slice), fetched before any other; or
    how that request failed, met as this connection's first failed attempt.
    """
    fd = -1
    try:
        if not crew.admitted(source, sub):
            return
        fd = crew.destination.another_descriptor()
        _fetch_pieces(crew, source, sub, fd, on_retry, first)
    except GetfileError as error:
        crew.failed(source, error)
    except OSError as error:
        crew.failed(source, LocalFileError(f"{error.strerror or error}"))
    finally:
        if first is not None and not first.taken:  # ended before using it: let the piece go
            first.let_go(crew)
        if fd >= 0:
            os.close(fd)
        with crew.lock:
            crew.working -= 1
        crew.changed.set()


def _fetch_pieces(
    crew: Crew,
    source: Source,
    sub: TransferState,
    fd: int,
    on_retry: Callable[[RetryNotice], None] | None,
    first: Started | None = None,
) -> None:
    """``retry.run_with_retries``'s rules, except that the piece is let go before the wait.

    A connection waiting out its backoff holds no bytes hostage: another
    connection (another mirror's, most usefully) takes the piece at once,
    and this one takes whatever is free when its wait ends.
    """
    failures = 0
    pending = first  # an attempt already under way: its connection, or how it failed
    while source.alive and crew.fatal is None and not sub.cancelled:
        started, pending = pending, None
        if started is not None:
            started.taken, piece = True, started.piece
            if piece is None and started.error is None:  # an empty slice: nothing to fetch
                started.let_go(crew)
                continue
        else:
            piece = crew.plan.take(source.index)
            if piece is None:
                if crew.plan.settled():
                    return
                sub.phase = Phase.WAITING  # the last pieces' owners may fail yet: stay ready
                crew.plan.wait(IDLE_WAIT)
                continue
        before = sub.done
        try:
            if started is not None and started.error is not None:
                raise started.error  # the opening failed: this connection's first attempt
            assert piece is not None
            if started is not None and started.opening is not None:
                _fetch_opened(crew, source, piece, sub, fd, started.opening)
            else:
                _fetch_range(crew, source, piece, sub, fd)
            continue
        except GetfileError as error:
            if sub.done - before >= PROGRESS:
                failures = 0
            if sub.cancelled or failures >= crew.options.retries or not retryable(error):
                crew.failed(source, error)  # while the piece is still ours: a revert comes first
                return
            failures += 1
            reason = f"{source.label}: {error}" if len(crew.sources) > 1 else str(error)
            notice = RetryNotice(
                attempt=failures,
                attempts=crew.options.retries,
                delay=backoff_delay(failures, crew.options.retry_cap),
                reason=reason,
            )
        finally:
            if piece is not None:
                crew.plan.release(piece)
        sub.begin_retry(notice)
        if on_retry is not None:
            on_retry(notice)
        sub.backoff(notice.delay)


def _fetch_range(crew: Crew, source: Source, piece: Piece, sub: TransferState, fd: int) -> None:
    """One connection: ask for the rest of ``piece``, write it in place, check the digest."""
    if piece.pos >= piece.end:
        return
    sub.phase = Phase.CONNECTING
    session = Session(source.target, crew.options, sub)
    try:
        _exchange(crew, source, piece, sub, fd, session)
    except protocol.LegacySilence:
        raise InterruptedError_("the server closed without answering") from None
    except protocol.ShortBody:
        raise InterruptedError_("connection closed before its range's digest came") from None
    finally:
        session.close()


def _fetch_opened(
    crew: Crew, source: Source, piece: Piece, sub: TransferState, fd: int, opening: Opening
) -> None:
    """``piece`` from the opening connection: its head is read, the body is the whole file's."""
    session = opening.session
    session.state.attach(None)  # from now on a stop of this connection alone reaches it
    session.state = sub
    sub.attach(session.sock)
    try:
        _receive(crew, source, piece, sub, fd, opening.session, opening.response)
    except protocol.ShortBody:
        raise InterruptedError_("connection closed before its range's digest came") from None
    finally:
        opening.session.close()


def _exchange(
    crew: Crew, source: Source, piece: Piece, sub: TransferState, fd: int, session: Session
) -> None:
    """The request, then its answer (``_receive``)."""
    start, end, size = piece.pos, piece.end, crew.head.size
    request = Request(
        Verb.GET, source.target.path, offset=start, length=end - start, version=LATEST
    )
    crew.count_connection()
    response = session.open(request)
    assert response is not None
    raise_for_status(response)
    check_range(response, size, start, end - start)
    _receive(crew, source, piece, sub, fd, session, response)


def _receive(
    crew: Crew,
    source: Source,
    piece: Piece,
    sub: TransferState,
    fd: int,
    session: Session,
    response: Response,
) -> None:
    """The body, the trailer (an error here leaves the piece where it got to)."""
    size = crew.head.size
    crew.check_digest(source, response.digest)
    sub.phase = Phase.DOWNLOADING
    if not _copy_range(crew, session, piece, sub, fd):
        return  # the piece was split: the rest is another connection's
    # The piece is on disk: the supervisor hashes on in order now rather than
    # when a thread ends (the slices end together, and threads only after all).
    crew.changed.set()
    if response.trailer:
        sub.phase = Phase.VERIFYING
        name = printable(source.target.display_path.rsplit("/", 1)[-1])
        crew.check_digest(source, read_trailer(session, name, size))
    assert session.sock is not None
    expect_close(session.sock)


def _copy_range(crew: Crew, session: Session, piece: Piece, sub: TransferState, fd: int) -> bool:
    """The body into ``fd`` at the piece's position; False when the piece shrank under us."""
    sock, conn, limit = session.sock, session.conn, crew.options.rate_limit
    assert sock is not None and conn is not None
    os.lseek(fd, piece.pos, os.SEEK_SET)
    leftover = conn.take_buffered()
    if leftover:
        take = min(len(leftover), piece.end - piece.pos)
        write_all(fd, memoryview(leftover)[:take])
        crew.plan.advance(piece, take)
        sub.done += take
    remaining = conn.body_remaining or 0
    _bound_silence(sock, crew.options.timeout)
    receiver = open_receiver(sock, fd, None, sub.check_cancelled)
    pace = PaceFloor(crew.options.timeout, sub.done)
    with crew.lock:
        crew.live += 1
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
            crew.plan.advance(piece, count)
            sub.done += count
            if count < PaceFloor.MIN_BYTES:
                pace.check(sub.done)
            if limit is not None:
                sub.pause(limit.reserve(count))
        return piece.pos >= piece.end
    finally:
        receiver.close()
        with crew.lock:
            crew.live -= 1


def _bound_silence(sock: socket.socket, timeout: float) -> None:
    """A blocking socket (splice needs one) whose silence ``SO_RCVTIMEO`` bounds (as ``body``)."""
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        return
    sock.settimeout(None)
    seconds = int(timeout)
    micros = int((timeout - seconds) * 1e6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))
