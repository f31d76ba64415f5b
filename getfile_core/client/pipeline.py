"""Many requests on one kept connection (protocol version 2, ``keep=1``), in a blocking thread.

A tree of 2000 small files fetched one connection per file pays, per file,
a TCP handshake, a request round trip and a teardown on both ends; on a
kept connection the requests go out back to back while the answers come
in, in order (``docs/protocol.md``, "Persistent connections"). Measured by
``bench.pipelining`` against the same server: 0.73 s one connection per
file, 0.23 s on two kept connections.

``KeptConnection`` is the I/O around the pure ``ClientConnection``: it
opens (auth included), sends up to ``DEPTH`` requests ahead, and reads each
answer's head and body. ``Worker`` drives one of them from a shared
``JobQueue``: whatever a connection could not answer (the server ended it,
a reset, a quota) goes back on the queue for any worker to send again,
which is always safe (GET and LIST change nothing on the server).
"""

from __future__ import annotations

import collections
import contextlib
import enum
import socket
import threading
import time
from collections.abc import Callable

import blake3

from getfile_core import auth, protocol
from getfile_core.address import Target
from getfile_core.client.body import copy_body, read_trailer
from getfile_core.client.destination import write_all
from getfile_core.client.retry import PROGRESS, backoff_delay
from getfile_core.client.session import PaceFloor, Session, connect, recv, send
from getfile_core.client.state import Options, TransferState
from getfile_core.errors import (
    GetfileError,
    InterruptedError_,
    LegacyServerError,
    ProtocolError,
    TimeoutError_,
    TooSlowError,
    UnauthorizedError,
    UnreachableError,
)
from getfile_core.protocol import ConnectionClosed, EndOfMessage, Request, Response, Status

TYPE_CHECKING = False  # typing is not imported at run time (~2 ms of start-up)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


#: Requests sent ahead of the answer being read, per connection. 32 x ~80
#: bytes never fills a socket's send buffer (so sending never blocks while
#: the server waits for us to read), and is deep enough that the server
#: always has the next request in hand: 8 and 32 measured the same on
#: loopback, 1 was 2.5x slower (a round trip per file).
DEPTH = 32
#: Bodies up to this size are read through the protocol object into memory;
#: bigger ones take the zero-copy path (``body.copy_body``: splice).
SMALL_BODY = 1024 * 1024
#: One read from a kept connection: many small answers at once.
READ_SIZE = 256 * 1024
#: Files at least this big are never queued behind on a connection: the
#: small ones behind would wait for all of it (head-of-line blocking).
BIG_FILE = 8 * 1024 * 1024


class Closed(Exception):
    """The server ended a kept connection between two answers (idle timeout, quota, stop)."""


class Job(Protocol):
    """One request of a tree: built when sent, its answer consumed when it comes."""

    #: Never pipeline more requests behind this one (a big file).
    alone: bool
    #: Which queue it waits in (and so which thread sends it).
    lane: Lane
    #: Times this job was sent and not answered because the connection failed.
    interrupted: int

    def request(self) -> Request | None:
        """The request to send now (``keep`` is set by the worker); ``None``: nothing to ask."""

    def answer(self, link: KeptConnection, head: Response) -> None:
        """Consume the rest of the answer (body, trailer) and act on it."""

    def give_up(self, error: GetfileError, *, quiet: bool = False) -> None:
        """The job failed for good (a refusal, a lie, retries spent); ``quiet``: no line."""


class KeptConnection:
    """One connection that carries many requests; answers are read in the order sent."""

    def __init__(self, target: Target, options: Options, state: TransferState) -> None:
        self.session = Session(target, options, state)
        self.options = options
        self.state = state
        self.answered = 0
        self._outgoing = bytearray()

    @property
    def sock(self) -> socket.socket:
        assert self.session.sock is not None
        return self.session.sock

    @property
    def conn(self) -> protocol.ClientConnection:
        assert self.session.conn is not None
        return self.session.conn

    def start(self, request: Request) -> Response:
        """Connect, send ``request`` alone, return its head (after the token's challenge)."""
        session = self.session
        session.sock = connect(session.target, self.options, self.state)
        self.sock.settimeout(self.options.timeout)
        session.conn = protocol.ClientConnection(request)
        send(self.sock, self.conn.request_bytes(), self.state)
        try:
            head = self.read_head()
        except protocol.LegacySilence:
            raise LegacyServerError(
                "a folder needs a getfile server; this one closed without answering "
                "(a legacy server, or a TLS one: try getfiles://)"
            ) from None
        if head.status is Status.UNSUPPORTED_VERSION:
            raise LegacyServerError(
                "a folder needs a getfile server that speaks protocol version 2"
            )
        if head.status is Status.UNAUTHORIZED and head.challenge is not None:
            if self.options.token is None:
                raise UnauthorizedError(
                    "this server needs a token (--token-file, or $GETFILE_TOKEN)", head.status
                )
            mac = auth.compute_mac(self.options.token, head.challenge, self.conn.proof_subject())
            send(self.sock, self.conn.auth_bytes(mac), self.state)
            head = self.read_head()
        return head

    @property
    def room(self) -> int:
        """How many more requests may go out now."""
        return min(DEPTH - len(self.conn.queued), self.conn.can_pipeline)

    def push(self, request: Request) -> None:
        token = self.options.token

        def prove(challenge: bytes, subject: bytes) -> bytes:
            assert token is not None
            return auth.compute_mac(token, challenge, subject)

        self._outgoing += self.conn.pipeline(request, prove if token is not None else None)

    def flush(self) -> None:
        """Send every request pushed since the last flush, in one write."""
        if self._outgoing:
            wire, self._outgoing = bytes(self._outgoing), bytearray()
            send(self.sock, wire, self.state)

    def read_head(self) -> Response:
        """The next answer's head; ``Closed`` when the server ended the connection first.

        Bounded like ``Session``: the whole head within ``timeout`` seconds of
        silence, ``102`` interim heads only up to the protocol's count.
        """
        while True:
            event = self.conn.next_event()
            if isinstance(event, Response):
                if event.status is Status.PROCESSING:
                    continue
                return event
            if isinstance(event, ConnectionClosed):
                raise Closed()
            if isinstance(event, EndOfMessage):
                raise ProtocolError("an answer ended before its head")
            self._feed()

    def _feed(self) -> None:
        self.sock.settimeout(self.options.timeout)
        data = recv(self.sock, self.state, READ_SIZE)
        self.conn.receive_data(data)

    def read_body(self, length: int) -> bytes:
        """A small body (a listing page, a small file) whole, into memory."""
        return self.session.read_body(length)

    def receive_file(self, fd: int, hasher: blake3.blake3, length: int) -> None:
        """A file's body into ``fd`` (at its offset), hashed, counted in ``state.done``.

        Written as it arrives, so a connection cut in the middle leaves a
        ``.part`` the next attempt resumes from.
        """
        if length > SMALL_BODY:
            copy_body(self.session, fd, hasher)
            return
        limit = self.options.rate_limit
        pace = PaceFloor(self.options.timeout, self.state.done)
        left = length
        while True:
            chunk = self.conn.take_buffered()
            if chunk:
                left -= len(chunk)
                write_all(fd, memoryview(chunk))
                hasher.update(chunk)
                self.state.done += len(chunk)
                if limit is not None:
                    self.state.pause(limit.reserve(len(chunk)))
            if left <= 0:
                return
            # Read into the protocol's buffer, not just this body: the next
            # answers' heads and bodies come in the same read (one recv for
            # ~15 files of 4 KiB instead of two per file).
            data = recv(self.sock, self.state, READ_SIZE)
            if not data:
                raise protocol.ShortBody(left)
            self.conn.receive_data(data)
            if len(data) < PaceFloor.MIN_BYTES:
                pace.check(self.state.done + len(data))

    def trailer(self, name: str, size: int | None) -> str:
        return read_trailer(self.session, name, size)

    def end_answer(self) -> bool:
        """After a complete answer: whether the connection goes on."""
        self.answered += 1
        while True:
            event = self.conn.next_event()
            if isinstance(event, EndOfMessage):
                return self.conn.state is not protocol.ClientState.DONE
            if isinstance(event, ConnectionClosed):
                return False
            self._feed()

    def close(self) -> None:
        self.session.close()


class Lane(enum.Enum):
    """Which queue a job waits in, and so which thread sends it."""

    LIST = "list"  # listings: the loop (``multiplex``), before files (they find the work)
    SMALL = "small"  # bodies up to SMALL_BODY: the loop, into memory
    BIG = "big"  # the rest: ``Worker`` threads, spliced to disk


class JobQueue:
    """The jobs of one tree, shared by every thread; knows when nothing is left anywhere.

    ``pending`` counts queued jobs and jobs a thread holds, so the tree is
    finished exactly when it reaches 0: a listing adds the jobs it found
    before it is marked done itself. Only adding a big job wakes the
    ``Worker`` threads: the loop adds thousands of small ones, and a wake-up
    each would cost a thread switch each.
    """

    def __init__(self) -> None:
        self._lanes: dict[Lane, collections.deque[Job]] = {
            lane: collections.deque() for lane in Lane
        }
        self._lock = threading.Condition()
        self.pending = 0
        self.stopped = False
        #: Why the tree was given up (``None``: not, or cancelled): jobs added from
        #: now on (given back by a connection) fail with it, quietly.
        self.failure: GetfileError | None = None
        #: Called (outside the lock) when a big job is queued: the tree starts its threads.
        self.on_big: Callable[[], None] | None = None

    def add(self, job: Job, *, again: bool = False) -> None:
        with self._lock:
            failure = self.failure
            if not self.stopped:
                failure = None
                self._add(job, again)
        if failure is not None:
            job.give_up(failure, quiet=True)
        elif job.lane is Lane.BIG and not self.stopped and self.on_big is not None:
            self.on_big()

    def _add(self, job: Job, again: bool) -> None:
        """Queue ``job`` (the lock held): ``again``, in front (it was taken, not done)."""
        if not again:
            self.pending += 1
        queue = self._lanes[job.lane]
        (queue.appendleft if again else queue.append)(job)
        if job.lane is Lane.BIG:
            self._lock.notify()

    def done(self, job: Job) -> None:
        with self._lock:
            self.pending -= 1
            if self.pending <= 0:
                self._lock.notify_all()

    def stop(self, failure: GetfileError | None = None) -> None:
        """No more jobs are taken: a cancel, or (``failure``) nothing on the server can work."""
        with self._lock:
            self.stopped = True
            self.failure = self.failure or failure
            self._lock.notify_all()

    def take_small(self, *, listings: bool = True) -> Job | None:
        """The loop's next job, listings first (none: ``listings`` false); ``None`` when it
        has none (never waits)."""
        with self._lock:
            if self.stopped:
                return None
            for lane in (Lane.LIST, Lane.SMALL) if listings else (Lane.SMALL,):
                if self._lanes[lane]:
                    return self._lanes[lane].popleft()
            return None

    def has_small(self) -> bool:
        return bool(self._lanes[Lane.LIST] or self._lanes[Lane.SMALL]) and not self.stopped

    def has_listings(self) -> bool:
        return bool(self._lanes[Lane.LIST]) and not self.stopped

    def take(self, *, wait: bool, timeout: float | None = None) -> Job | None:
        """The next big job; ``None``: the tree is finished, or (no ``wait``) none is queued.

        With ``wait`` it blocks until a job comes, the tree is finished, or
        ``timeout`` seconds passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        big = self._lanes[Lane.BIG]
        with self._lock:
            while True:
                if self.stopped:
                    return None
                if big:
                    return big.popleft()
                if not wait or self.pending <= 0:
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self._lock.wait(1.0 if deadline is None else deadline - time.monotonic())

    def drain(self) -> list[Job]:
        with self._lock:
            jobs = [job for lane in Lane for job in self._lanes[lane]]
            for queue in self._lanes.values():
                queue.clear()
            return jobs


class Worker:
    """One thread and its connection for big files: keep it full, read the answers, reconnect.

    Listings and small files go to the loop (``multiplex``) instead.
    """

    def __init__(
        self,
        target: Target,
        options: Options,
        queue: JobQueue,
    ) -> None:
        self.target = target
        self.options = options
        self.queue = queue
        self.state = TransferState()
        #: The job whose answer is being read (for progress: the file in flight).
        self.current: Job | None = None
        self.failures = 0
        self.began_at = 0
        #: A getfile server answered: silence or a refusal to connect now means a lost link.
        self.reached = False

    def run(self) -> None:
        while not self.state.cancelled:
            job = self.queue.take(wait=True)
            if job is None:
                return
            self._one_connection(job)

    def _one_connection(self, first: Job) -> None:
        """Carry requests on one connection until the queue is empty or it ends."""
        request = self._ready(first)
        if request is None:
            return
        link = KeptConnection(self.target, self.options, self.state)
        sent: collections.deque[Job] = collections.deque([first])
        self.began_at = self.state.done
        try:
            self.current = first
            head: Response | None = link.start(request)
            self.reached = True
            while sent:
                self.current = sent[0]
                if head is None:
                    head = link.read_head()
                _answer(sent[0], link, head)
                self.queue.done(sent.popleft())
                self.current, head = None, None
                self.failures = 0
                if not link.end_answer():
                    break
                self._fill(link, sent)
        except Closed:
            if not link.answered:  # closed before answering anything: not a clean end
                self._failed(InterruptedError_("the server closed the connection"), sent)
        except GetfileError as error:
            self._failed(error, sent)
        finally:
            link.close()
            self.current = None
            self._requeue(sent)

    def _ready(self, job: Job) -> Request | None:
        """The job's request with ``keep=1``; a job with nothing to ask is done here."""
        try:
            request = job.request()
        except GetfileError as error:
            job.give_up(error)
            request = None
        if request is None:
            self.queue.done(job)
            return None
        return kept_request(request)

    def _fill(self, link: KeptConnection, sent: collections.deque[Job]) -> None:
        """Top the connection up to ``DEPTH`` once half of it was answered, in one write.

        Each write wakes the server (and, on a busy machine, costs this
        thread its core): one request per answer measured 1 ms per
        ``sendall`` on the shared 2-core machine; a batch of 16 costs one.
        """
        if (sent and sent[-1].alone) or len(sent) > DEPTH // 2:
            return
        try:
            self._take_more(link, sent)
        finally:
            link.flush()

    def _take_more(self, link: KeptConnection, sent: collections.deque[Job]) -> None:
        while link.room > 0:
            job = self.queue.take(wait=not sent, timeout=IDLE_WAIT)
            if job is None:
                return
            if job.alone and sent:
                self.queue.add(job, again=True)
                return
            request = self._ready(job)
            if request is None:
                continue
            sent.append(job)
            link.push(request)
            if job.alone:
                return

    def _failed(self, error: GetfileError, sent: collections.deque[Job]) -> None:
        """The connection failed: the job being answered decides; the others go back."""
        if self.state.cancelled:
            return  # Ctrl-C: everything stays as it is (partial files kept), quietly
        retry = retryable(error, self.state, self.reached)
        if self.state.done - self.began_at >= PROGRESS:
            # It moved: the link works, only not for long (as ``retry`` counts for one file).
            self.failures = 0
            if sent:
                sent[0].interrupted = 0
        if sent and not try_again(sent[0], retry, self.options, self.queue, error):
            sent.popleft()
        if isinstance(error, FATAL) or (not self.reached and not retry):
            self._give_up_all(error, sent)
        elif retry:
            self.failures += 1
            if self.failures > self.options.retries:
                self._give_up_all(error, sent)
                return
            with contextlib.suppress(GetfileError):
                self.state.backoff(backoff_delay(self.failures, self.options.retry_cap))

    def _give_up_all(self, error: GetfileError, sent: collections.deque[Job]) -> None:
        """Nothing on this server can work (no token, a legacy server, a dead link)."""
        self.queue.stop(error)
        # One line says why; the thousand files behind it are counted, not each told.
        for index, job in enumerate([*sent, *self.queue.drain()]):
            job.give_up(error, quiet=index > 0)
            self.queue.done(job)
        sent.clear()

    def _requeue(self, sent: collections.deque[Job]) -> None:
        for job in reversed(sent):
            self.queue.add(job, again=True)
        sent.clear()


def _answer(job: Job, link: KeptConnection, head: Response) -> None:
    """The job reads its answer; a cut body is an interruption (resumed on another connection)."""
    try:
        job.answer(link, head)
    except protocol.ShortBody as error:
        raise InterruptedError_(f"connection lost: {error}") from None


def kept_request(request: Request) -> Request:
    """``request`` asking to keep the connection (``keep=1``, the latest version)."""
    if request.keep and request.version == protocol.LATEST:
        return request  # built that way: no copy per file
    return request.replace(keep=True, version=protocol.LATEST)


def retryable(error: GetfileError, state: TransferState, reached: bool) -> bool:
    """Whether a kept connection's failure is worth another attempt (the server was reached)."""
    if isinstance(error, InterruptedError_):
        return not state.cancelled
    if isinstance(error, TooSlowError):
        return False
    return isinstance(error, TimeoutError_ | UnreachableError) and reached


def try_again(
    job: Job, retry: bool, options: Options, queue: JobQueue, error: GetfileError
) -> bool:
    """The job whose answer failed: True if it has attempts left, else it is given up (done)."""
    if retry and job.interrupted < options.retries:
        job.interrupted += 1
        return True
    job.give_up(error)
    queue.done(job)
    return False


#: Seconds an idle kept connection waits for the next job before it is closed
#: (well under the server's 10 s idle limit).
IDLE_WAIT = 2.0
#: Errors that no other request to this server would escape.
FATAL = (UnauthorizedError, LegacyServerError)
