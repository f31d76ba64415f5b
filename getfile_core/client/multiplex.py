"""Listings and small files on kept connections, every connection driven by one thread.

Eight threads, each blocking on its own kept connection (``pipeline.Worker``),
spent a tree of 2000 files of 4 KiB handing the GIL around (234,709 futex
calls, ~117 a file) and waiting on each other in the kernel: 0.80 s where
one such thread took 0.56 s. Here one thread holds every connection,
non-blocking, in a selector: it sends the requests, reads and parses the
answers, takes each body up to ``SMALL_BODY`` whole into memory, and hands
it to the job (``complete``), which verifies it and passes it to the disk
thread (``tree_disk``). Bigger files go to ``pipeline.Worker`` threads,
whose bodies are spliced to disk without the GIL.

The rules are those of ``pipeline.Worker``, per connection: the answers
come in the order sent; whatever a connection could not answer goes back
on the queue; a lost, reset or silent connection is retried with backoff,
a refusal is never; no token or a legacy server ends the whole tree with
one line. Connections are opened (TCP and TLS) blocking, one at a time,
as the queue grows: on a LAN that is a fraction of a millisecond each.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import time
from collections.abc import Callable

from getfile_core import auth, protocol
from getfile_core.address import Target
from getfile_core.client.pipeline import (
    DEPTH,
    FATAL,
    READ_SIZE,
    Job,
    JobQueue,
    Lane,
    kept_request,
    retryable,
    try_again,
)
from getfile_core.client.retry import PROGRESS, backoff_delay
from getfile_core.client.session import MAX_PREPARE_SECONDS, PaceFloor, connect
from getfile_core.client.state import Options, TransferState
from getfile_core.errors import (
    GetfileError,
    InterruptedError_,
    LegacyServerError,
    ProtocolError,
    TimeoutError_,
    TooSlowError,
    UnauthorizedError,
)
from getfile_core.protocol import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    HashProgress,
    Request,
    Response,
    Status,
    Trailer,
)

TYPE_CHECKING = False  # typing is not imported at run time (~2 ms of start-up)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


#: Longest wait in ``select``: how soon a cancel (another thread) is noticed.
POLL = 0.25
#: Listings one connection carries at once while more connections may open:
#: the rest go on new ones. All 20 folders' listings on the first connection
#: (each ~1 ms of the server's time, answered one after the other) held the
#: first file back until the last folder was listed: the first save came
#: 40-80 ms after the first answer, the disk thread idle (now 10-15 ms).
#: Files still never go ahead of a listing: a slow link learns the whole
#: plan first (the progress total), and ``-j 1`` behaves as before.
LISTINGS_PER_LINK = 2
#: While more connections may open, one carries files of at most about this
#: many listed bytes before the next opens; once all are open they fill to
#: ``DEPTH``. Without it, a folder of up to 32 files of a few hundred KiB went
#: down one connection: through a relay capping each connection at 100 KiB/s,
#: 5 x 300 KB took ~15 s with ``-j 8`` where lftp's ``mirror --parallel=8``
#: takes ~3. Files of 4 KiB fill a connection's ``DEPTH`` (128 KiB) first, so
#: the small-file tree is spread as before.
SPREAD_BYTES = 256 * 1024


class SmallJob(Job, Protocol):
    """A job whose whole answer is taken into memory, then handed over at once."""

    #: The largest body it takes; a bigger one goes to ``too_big``.
    body_limit: int
    #: Body bytes the answer should carry, as listed (0: not known, e.g. a listing).
    expected: int

    def complete(self, head: Response, body: bytes, trailer: Trailer | None) -> None:
        """The whole answer: the head, the body, the version-2 trailer if one came."""

    def too_big(self) -> None:
        """The head announced more than ``body_limit``: send it another way."""

    def cut(self, body: bytes) -> None:
        """The answer stopped after ``body`` (a lost connection, a cancel)."""


class _TooBig(Exception):
    """The answer being read is bigger than its job takes: the connection is given up."""


class Link:
    """One kept connection of the loop: what was sent on it, and the answer being read."""

    def __init__(self, sock: socket.socket, first: SmallJob, request: Request, now: float):
        self.sock = sock
        self.conn = protocol.ClientConnection(request)
        self.sent: collections.deque[SmallJob] = collections.deque([first])
        self.outgoing = bytearray(self.conn.request_bytes())
        self.answered = 0
        #: Body bytes this connection brought (a retry's "did it move" test).
        self.received = 0
        #: When a byte last came (silence), and when the current answer was due.
        self.heard = self.due = now
        #: The pace floor's window in the body: its start and its bytes.
        self.window, self.window_bytes = now, 0
        self.head: Response | None = None
        self.body = bytearray()
        self.trailer: Trailer | None = None
        self.writing = False

    @property
    def room(self) -> int:
        """How many more requests may go out now (0 until the first head said ``keep``)."""
        return min(DEPTH - len(self.conn.queued), self.conn.can_pipeline)


def _owed(link: Link) -> int:
    """Listed bytes of the answers still to come on ``link``."""
    return sum(job.expected for job in link.sent)


def _full(link: Link) -> bool:
    """Whether ``link`` takes no more work while another connection may open."""
    return link.room == 0 or _owed(link) >= SPREAD_BYTES


class _Upkeep:
    """The loop's clocks and failures: what ``Multiplexer`` does when a connection goes bad."""

    options: Options
    queue: JobQueue
    state: TransferState
    links: list[Link]
    selector: selectors.BaseSelector
    failures: int
    reached: bool
    resume_at: float

    # ------------------------------------------------------------ time

    def _stood_still(self, since: float) -> None:
        """The loop waited on something of ours (a rate limit, a full disk queue) since
        ``since``: those seconds count for no connection's silence, pace or answer."""
        waited = time.monotonic() - since
        if waited < 0.001:
            return
        for link in self.links:
            link.heard += waited
            link.due += waited
            link.window += waited

    def _check_time(self, now: float) -> None:
        """Silence, a trickle, or an answer that never comes: the connection fails."""
        timeout = self.options.timeout
        for link in list(self.links):
            if not link.sent:
                continue
            error: GetfileError | None = None
            if now - link.heard > timeout:
                error = TimeoutError_("the server stopped answering")
            elif now - link.due > MAX_PREPARE_SECONDS:
                error = TooSlowError(f"no answer after {MAX_PREPARE_SECONDS:g} s; giving up")
            elif link.conn.state is protocol.ClientState.BODY and now - link.window >= timeout:
                if link.window_bytes < PaceFloor.MIN_BYTES:
                    got = link.window_bytes
                    error = TooSlowError(
                        f"server too slow: {got} bytes in {now - link.window:.0f} s"
                    )
                link.window, link.window_bytes = now, 0
            if error is not None:
                self._failed(link, list(link.sent), error)

    # ------------------------------------------------------------ failures

    def _drop(self, link: Link) -> None:
        if link in self.links:
            self.links.remove(link)
            self.selector.unregister(link.sock)
        with contextlib.suppress(OSError):
            link.sock.close()

    def _cut(self, link: Link) -> None:
        """The answer being read will not end: its job keeps what came of it."""
        if link.head is not None and link.sent:
            body, link.head = bytes(link.body), None
            link.sent[0].cut(body)

    def _requeue(self, link: Link) -> None:
        for job in reversed(link.sent):
            self.queue.add(job, again=True)
        link.sent.clear()

    def _close(self, link: Link) -> None:
        """End a connection cleanly: what it still had to answer goes to the others."""
        self._drop(link)
        self._requeue(link)

    def _failed(self, link: Link | None, sent: list[SmallJob], error: GetfileError) -> None:
        """A connection failed (``None``: never opened); its first job decides, the rest go back."""
        if link is not None:
            self._cut(link)
            self._drop(link)
            link.sent.clear()
        if self.state.cancelled:
            return
        retry = retryable(error, self.state, self.reached)
        if link is not None and link.received >= PROGRESS:
            self.failures = 0  # it moved: the link works, only not for long
            if sent:
                sent[0].interrupted = 0
        if sent and not try_again(sent[0], retry, self.options, self.queue, error):
            sent.pop(0)
        if isinstance(error, FATAL) or (not self.reached and not retry):
            self._give_up_all(error, sent)
            return
        now = time.monotonic()
        if retry and now >= self.resume_at:  # failures in one backoff count once
            self.failures += 1
            if self.failures > self.options.retries:
                self._give_up_all(error, sent)
                return
            self.resume_at = now + backoff_delay(self.failures, self.options.retry_cap)
        for job in reversed(sent):
            self.queue.add(job, again=True)

    def _give_up_all(self, error: GetfileError, sent: list[SmallJob]) -> None:
        """Nothing on this server can work (no token, a legacy server, a dead link)."""
        self.queue.stop(error)
        others = [job for link in self.links for job in link.sent]
        for link in list(self.links):
            self._drop(link)
            link.sent.clear()
        # One line says why; the thousand files behind it are counted, not each told.
        for index, job in enumerate([*sent, *others, *self.queue.drain()]):
            job.give_up(error, quiet=index > 0)
            self.queue.done(job)


class Multiplexer(_Upkeep):
    """The loop: up to ``links`` kept connections, one thread, until the small work is done."""

    def __init__(self, target: Target, options: Options, queue: JobQueue, links: int) -> None:
        self.target = target
        self.options = options
        self.queue = queue
        self.max_links = max(1, links)
        self.state = TransferState()
        self.links: list[Link] = []
        self.selector = selectors.DefaultSelector()
        self.failures = 0
        self.reached = False
        #: No connection is opened before this time (a backoff after a failure).
        self.resume_at = 0.0
        self._would_block: tuple[type[Exception], ...] = (BlockingIOError, InterruptedError)
        if target.tls:
            import ssl

            self._would_block += (ssl.SSLWantReadError, ssl.SSLWantWriteError)

    def in_flight(self) -> list[Job]:
        """The jobs being answered now, one per connection (for progress)."""
        return [link.sent[0] for link in list(self.links) if link.sent]

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        try:
            while not self.state.cancelled and not self.queue.stopped:
                now = time.monotonic()
                self._top_up(now)
                busy = [link for link in self.links if link.sent]
                if not busy:
                    if not self.queue.has_small():
                        return
                    if now < self.resume_at:  # backing off, no connection open
                        self.state.pause(min(self.resume_at - now, POLL))
                    continue
                self._poll()
                self._check_time(time.monotonic())
        except GetfileError:
            if not self.state.cancelled:
                raise
        finally:
            for link in list(self.links):
                self._cut(link)
                self._drop(link)
                self._requeue(link)
            self.selector.close()

    def _top_up(self, now: float) -> None:
        """Fill every connection that has room; open another while work is left waiting."""
        for link in list(self.links):
            if len(link.sent) <= DEPTH // 2 and link.room > 0:
                try:
                    self._push(link)
                except GetfileError as error:
                    self._failed(link, list(link.sent), error)
        while (
            len(self.links) < self.max_links
            and now >= self.resume_at
            and (
                self.queue.has_listings()  # the connections carry all the listings they may
                or (self.queue.has_small() and all(map(_full, self.links)))
            )
        ):
            if not self._open():
                return

    def _next_request(self, *, listings: bool = True) -> tuple[SmallJob, Request] | None:
        """The next job with something to ask (jobs with nothing to ask are done here)."""
        while True:
            job = self.queue.take_small(listings=listings)
            if job is None:
                return None
            try:
                request = job.request()
            except GetfileError as error:
                job.give_up(error)
                request = None
            if request is None:
                self.queue.done(job)
                continue
            return job, kept_request(request)  # type: ignore[return-value]

    def _open(self) -> bool:
        """One more connection, its first request sent; False when nothing is left to ask."""
        taken = self._next_request()
        if taken is None:
            return False
        job, request = taken
        try:
            sock = connect(self.target, self.options, self.state)
            sock.setblocking(False)
        except GetfileError as error:
            self._failed(None, [job], error)
            return False
        link = Link(sock, job, request, time.monotonic())
        self.links.append(link)
        self.selector.register(sock, selectors.EVENT_READ, link)
        try:
            self._send(link)
        except GetfileError as error:
            self._failed(link, list(link.sent), error)
        return True

    def _push(self, link: Link) -> None:
        """Pipeline requests on ``link`` up to its room, in one write."""
        room, listings, owed = link.room, DEPTH, 0
        spreading = len(self.links) < self.max_links and not self.failures
        if spreading:
            # More connections may open: each takes its share of the listings and bytes.
            listings = LISTINGS_PER_LINK - sum(job.lane is Lane.LIST for job in link.sent)
            owed = _owed(link)
        while room > 0:
            if listings <= 0 and self.queue.has_listings():
                break  # the next connection takes them: never a file ahead of a listing
            if spreading and owed >= SPREAD_BYTES:
                break  # the next connection takes the rest
            taken = self._next_request(listings=listings > 0)
            if taken is None:
                break
            job, request = taken
            listings -= job.lane is Lane.LIST
            owed += job.expected
            link.sent.append(job)
            link.outgoing += link.conn.pipeline(request, self._prover())
            room -= 1
            if len(link.sent) == 1:  # it was idle: the clocks start now
                link.heard = link.due = time.monotonic()
        self._send(link)

    def _prover(self) -> Callable[[bytes, bytes], bytes] | None:
        token = self.options.token
        if token is None:
            return None
        return lambda challenge, subject: auth.compute_mac(token, challenge, subject)

    # ------------------------------------------------------------ bytes in and out

    def _poll(self) -> None:
        timeout = POLL
        for key, mask in self.selector.select(timeout):
            link: Link = key.data
            if link not in self.links:
                continue
            try:
                if mask & selectors.EVENT_WRITE:
                    self._send(link)
                if mask & selectors.EVENT_READ:
                    self._receive(link)
            except _TooBig:
                job = link.sent.popleft()
                self._close(link)
                job.too_big()
            except GetfileError as error:
                self._failed(link, list(link.sent), error)

    def _send(self, link: Link) -> None:
        if link.outgoing:
            try:
                sent = link.sock.send(link.outgoing)
            except self._would_block:
                sent = 0
            except OSError as error:
                self.state.check_cancelled()
                reason = error.strerror or error
                raise InterruptedError_(f"connection lost while sending: {reason}") from None
            del link.outgoing[:sent]
        writing = bool(link.outgoing)
        if writing != link.writing:
            link.writing = writing
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
            self.selector.modify(link.sock, events, link)

    def _receive(self, link: Link) -> None:
        try:
            data = link.sock.recv(READ_SIZE)
            pending = getattr(link.sock, "pending", None)
            while pending is not None and pending():  # TLS: records already decrypted
                data += link.sock.recv(READ_SIZE)
        except self._would_block:
            return
        except OSError as error:
            self.state.check_cancelled()
            raise InterruptedError_(f"connection lost: {error.strerror or error}") from None
        if data:
            link.heard = time.monotonic()
        try:
            link.conn.receive_data(data)
            self._events(link)
        except protocol.LegacySilence:
            raise LegacyServerError(
                "a folder needs a getfile server; this one closed without answering "
                "(a legacy server, or a TLS one: try getfiles://)"
            ) from None
        except protocol.ShortBody as error:
            raise InterruptedError_(f"connection lost: {error}") from None

    # ------------------------------------------------------------ answers

    def _events(self, link: Link) -> None:
        conn = link.conn
        limit = self.options.rate_limit
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, Data):
                link.body += event.data
                size = len(event.data)
                link.received += size
                link.window_bytes += size
                self.state.done += size
                if limit is not None:
                    began = time.monotonic()
                    self.state.pause(limit.reserve(size))
                    self._stood_still(began)
            elif isinstance(event, Response):
                self._head(link, event)
            elif isinstance(event, Trailer):
                link.trailer = event
            elif isinstance(event, EndOfMessage):
                if not self._answered(link):
                    return
            elif isinstance(event, ConnectionClosed):
                self._ended(link)
                return
            elif not isinstance(event, HashProgress):
                raise ProtocolError("an answer the loop cannot read")

    def _head(self, link: Link, head: Response) -> None:
        if head.status is Status.PROCESSING:
            return  # the server is hashing; the protocol bounds how often it may say so
        if (
            head.status is Status.UNAUTHORIZED
            and link.conn.state is protocol.ClientState.CHALLENGED
        ):
            token = self.options.token
            if token is None:
                raise UnauthorizedError(
                    "this server needs a token (--token-file, or $GETFILE_TOKEN)", head.status
                )
            assert head.challenge is not None
            mac = auth.compute_mac(token, head.challenge, link.conn.proof_subject())
            link.outgoing += link.conn.auth_bytes(mac)
            self._send(link)
            return
        if head.status is Status.UNSUPPORTED_VERSION:
            raise LegacyServerError(
                "a folder needs a getfile server that speaks protocol version 2"
            )
        self.reached = True
        if head.body_length > link.sent[0].body_limit:
            raise _TooBig()
        link.head, link.body, link.trailer = head, bytearray(), None
        link.window, link.window_bytes = time.monotonic(), 0

    def _answered(self, link: Link) -> bool:
        """One whole answer: its job completes; whether the connection goes on."""
        job, head = link.sent.popleft(), link.head
        assert head is not None
        link.head, link.answered, self.failures = None, link.answered + 1, 0
        began = link.due = time.monotonic()
        try:
            job.complete(head, bytes(link.body), link.trailer)  # may wait for the disk thread
        except GetfileError as error:
            job.give_up(error)
        finally:
            self.queue.done(job)
            self._stood_still(began)
        link.body = bytearray()
        if link.conn.state is protocol.ClientState.DONE:  # the server's last answer on it
            self._ended(link)
            return False
        return True

    def _ended(self, link: Link) -> None:
        """The server ended the connection between answers (its quota, idle time, a stop)."""
        if not link.answered:
            self._failed(
                link, list(link.sent), InterruptedError_("the server closed the connection")
            )
            return
        self._close(link)
