"""A fresh segmented download's start: every connection asks for its slice at once.

Before, the first connection's head gave the size and only then did the
other connections ask for their ranges, whose heads came one round trip
later: the critical path was start-up + 2 RTT + the data. Here connection
K of N sends ``GET path slice=K/N floor=F`` at once; the server, which
knows the size, answers with the K-th piece of the rule both ends compute
(``protocol.Slice.span``), and the body starts a round trip after the
request on every connection: start-up + 1 RTT + the data. The first head
to arrive gives the size, and with it the whole plan (every slice's span);
each later head must agree (size, span, digest) or the download stops.

``floor``: no piece under ``FLOOR`` bytes, so a file under ``2 * FLOOR``
(``segments.MIN_SEGMENTED``) comes whole on slice 0 while the others get
an empty answer and close: N connections are opened whatever the size,
since nobody knows it yet, but only one carries a small file.

All at once only for a server known to answer slices (``known``): one
never seen gets connection 0 alone, and its answer decides for the others
before they connect. A getfile server's head starts every connection whose
slice is not empty (a file under ``2 * FLOOR`` then needs no other
connection at all); silence (the book's server) or ``505`` (a version-1
one) starts none, so such a server sees one connection before its
download, not N (or 2N: each ``505`` used to be asked again in version 1).
The cost, once per server: the others start one round trip later (on a
path of 40 ms each way, 0.90 s against 0.83 s for 16 MiB in 8 segments).

Each connection is a thread that opens its slice and then, once the plan
exists, goes on as any connection of the download (``rangefetch.work``):
its slice is its first piece, and when that is done it takes others. If
no slice is answered, ``wait_first`` says why: a server that refused the
parameter (an older version 2) is asked today's way, a version-1 or legacy
server gets one connection, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from getfile_core.address import Target
from getfile_core.client import rangefetch
from getfile_core.client.crew import Crew
from getfile_core.client.mirrors import Head, NoRanges, Opening, Source, open_with
from getfile_core.client.plan import Piece, Plan
from getfile_core.client.state import Options, Phase, RetryNotice, TransferState
from getfile_core.errors import GetfileError, InterruptedError_, ProtocolError, RemoteError
from getfile_core.protocol import LATEST, Request, Slice, Status, Verb

MiB = 1024 * 1024
#: The smallest piece a slice may be (``floor=``): under this, fewer, bigger
#: pieces. 2 MiB keeps today's threshold for one connection (4 MiB,
#: ``segments.MIN_SEGMENTED``, measured there) and today's smallest share.
FLOOR = 2 * MiB
#: How often a wait for the first head looks at a cancel.
TICK = 0.1


class Refused(Exception):
    """No slice was answered because the server cannot send slices: how to go on instead."""

    def __init__(self, no_ranges: NoRanges | None) -> None:
        super().__init__(no_ranges.why if no_ranges else "slice not understood")
        #: Set when the server cannot send ranges at all (legacy, version 1); else
        #: a version-2 server that does not know ``slice``: ask it today's way.
        self.no_ranges = no_ranges


class SlicedStart:
    """N connections each asking for its slice at once; the first head makes the plan.

    ``launch`` starts the threads, ``wait_first`` returns the first head,
    ``proceed`` hands each thread the download's ``Crew`` (they go on as its
    connections), and ``abort`` ends them all when the download stops first.
    """

    def __init__(
        self,
        source: Source,
        options: Options,
        count: int,
        floor: int = FLOOR,
        *,
        at_once: bool = True,
    ) -> None:
        self.source = source
        self.options = options
        self.slices = [Slice(index, count, floor) for index in range(count)]
        self.subs = [TransferState(phase=Phase.CONNECTING) for _ in range(count)]
        #: Every connection asks at once; else connection 0's answer decides for the others.
        self.at_once = at_once
        #: The connections started (``launched``: their slices' indexes), in order.
        self.threads: list[threading.Thread] = []
        self.launched: list[int] = []
        self._on_retry: Callable[[RetryNotice], None] | None = None
        self._cond = threading.Condition()
        self._openings: list[Opening | None] = [None] * count
        self._errors: list[BaseException | None] = [None] * count
        self._answered = 0
        #: Set once: the download's crew (go on), or False (stop); None: not decided yet.
        self._decision: Crew | bool | None = None
        self._pieces: list[Piece | None] = []

    def launch(self, on_retry: Callable[[RetryNotice], None] | None) -> None:
        """Start every connection, or only the first (``at_once`` False)."""
        self._on_retry = on_retry
        with self._cond:
            self._start(range(len(self.slices)) if self.at_once else [0])

    def _start(self, indexes: Iterable[int]) -> None:
        """A thread per slice in ``indexes`` (the lock held: ``wait_first`` counts them)."""
        for index in indexes:
            thread = threading.Thread(
                target=self._connection,
                args=(index,),
                name=f"getfile-segment-{index}",
                daemon=True,
            )
            self.threads.append(thread)
            self.launched.append(index)
            thread.start()

    def _first_answered(self, opening: Opening | None) -> None:
        """Connection 0's answer, when it alone asked (lock held): start the others, or none.

        A head: every connection whose slice is not empty on its size. No head
        (silence, ``505``, an error): none, and ``wait_first`` says why.
        """
        if opening is None or self._decision is not None:
            return
        size = opening.head.size
        self._start(k for k in range(1, len(self.slices)) if self.slices[k].span(size)[1])

    def wait_first(self, state: TransferState) -> Opening:
        """The first slice's head to arrive; ``Refused`` or the error if none is answered."""
        with self._cond:
            while True:
                first = next((o for o in self._openings if o is not None), None)
                if first is not None:
                    return first
                if state.cancelled:
                    self.abort()
                    state.check_cancelled()
                if self._answered == len(self.threads):
                    raise self._why_none()
                self._cond.wait(TICK)

    def plan(self, head: Head) -> Plan:
        """Every slice's span on the first head's size, each held by its connection."""
        spans = [piece.span(head.size) for piece in self.slices]
        plan, self._pieces = Plan.claimed(head.size, spans, self.source.index)
        return plan

    def proceed(self, crew: Crew) -> None:
        """The plan is made and the ``.part`` open: every connection goes on as part of ``crew``."""
        crew.subs.extend(self.subs[index] for index in self.launched)
        with crew.lock:
            crew.working += len(self.launched)
            crew.connections_made = len(self.launched)
        with self._cond:
            self._decision = crew
            self._cond.notify_all()

    def abort(self) -> None:
        """The download ends before ``proceed``: every connection closes and its thread ends."""
        with self._cond:
            if self._decision is None:
                self._decision = False
            self._cond.notify_all()
        for sub in self.subs:
            sub.cancel()

    def _why_none(self) -> BaseException:
        """No slice answered (lock held): ``Refused`` when the server cannot do slices, else
        the first error that is not a lost connection (a lost one: ``Refused`` too, so the
        download starts again today's way, which retries)."""
        errors = [error for error in self._errors if error is not None]
        no_ranges = next((e for e in errors if isinstance(e, NoRanges)), None)
        if no_ranges is not None:
            return Refused(no_ranges)
        for error in errors:
            if _refused_parameter(error):
                return Refused(None)
        for error in errors:
            if not isinstance(error, InterruptedError_):
                return error
        return Refused(None)

    # ------------------------------------------------------------ in each connection's thread

    def _connection(self, index: int) -> None:
        """Open slice ``index``; once the plan is made, go on as a connection of the download."""
        sub = self.subs[index]
        opening: Opening | None = None
        failed: GetfileError | NoRanges | None = None
        try:
            opening = open_slice(self.source.target, self.options, sub, self.slices[index])
        except (GetfileError, NoRanges) as error:
            failed = error
        except Exception as error:  # a bug here must end the download by its name, not hang it
            failed = GetfileError(f"connection {index}: {error.__class__.__name__}: {error}")
            failed.__cause__ = error
        with self._cond:
            self._openings[index] = opening
            self._errors[index] = failed
            self._answered += 1
            if index == 0 and not self.at_once:
                self._first_answered(opening)
            self._cond.notify_all()
            while self._decision is None:
                self._cond.wait(TICK)
            crew = self._decision
        if not isinstance(crew, Crew):
            if opening is not None:
                opening.session.close()
            return
        started = rangefetch.Started(opening, self._pieces[index])
        if isinstance(failed, GetfileError):
            started.error = failed
        elif opening is not None:
            started.error = self._disagrees(crew, index, opening)
            if started.error is not None:
                opening.session.close()
                started.opening = None
        rangefetch.work(crew, self.source, sub, self._on_retry, started)

    def _disagrees(self, crew: Crew, index: int, opening: Opening) -> GetfileError | None:
        """Why this head does not fit the plan the first head made (None: it fits)."""
        response = opening.response
        if response.size != crew.head.size:
            return ProtocolError(
                f"the server gave two sizes for one file ({response.size} and {crew.head.size})"
            )
        if (response.offset, response.length) != self.slices[index].span(crew.head.size):
            return ProtocolError("server sent another range than the slice asked for")
        try:
            crew.check_digest(self.source, response.digest)
        except GetfileError as error:
            return error
        return None


def open_slice(target: Target, options: Options, sub: TransferState, piece: Slice) -> Opening:
    """Ask for one slice and read its head (the body is the caller's); ``NoRanges`` if the
    server cannot send ranges. The caller closes the session whatever happens after."""
    request = Request(Verb.GET, target.path, version=LATEST, slice=piece)
    return open_with(request, target, options, sub)


def _refused_parameter(error: BaseException) -> bool:
    """A version-2 server from before slices: it refuses the unknown parameter (400)."""
    return isinstance(error, RemoteError) and error.status == Status.BAD_REQUEST


__all__ = ["FLOOR", "Refused", "SlicedStart", "open_slice"]
