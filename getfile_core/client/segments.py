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

Start: a fresh download from one server opens all its connections at
once, each asking for its slice (``slice=K/N``, ``slices``): the server
cuts the file by a rule both ends know, so the first head to arrive gives
the size and with it every connection's range, and no connection waits a
round trip for another's head. A server from before slices refuses the
parameter and is asked the old way: the first connection asks for the
whole file and its head decides the plan while its body is already the
first piece's bytes; the others start once that head is read. A download
with mirrors starts that way too (each mirror is checked, ``probe``,
before its bytes are used), and a ``.part`` to continue asks for the head
alone (``probe``) and plans from the record.

Files under ``MIN_SEGMENTED`` come on one connection (slice 0; the others'
slices are empty); a server that cannot send ranges (legacy, version 1)
gets one plain download, with one line saying so.

Who does what: this module runs the download (the first head, the plan,
the ``.part`` and its record, supervision, verification); ``rangefetch``
is one connection's thread; ``slices`` opens a fresh download's
connections; ``crew`` holds what the connections share and decides what a
failure means; ``mirrors`` checks the sources; ``plan``
is the bookkeeping of pieces; ``ranges`` the record on disk.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import blake3

from getfile_core.address import Target
from getfile_core.client import known, rangefetch, ranges
from getfile_core.client.crew import Crew
from getfile_core.client.destination import Destination
from getfile_core.client.mirrors import Head, NoRanges, Opening, Source, open_whole, probe
from getfile_core.client.plan import MIN_SPLIT, Plan
from getfile_core.client.receive import BUFFER
from getfile_core.client.retry import run_with_retries
from getfile_core.client.slices import Refused, SlicedStart
from getfile_core.client.state import FetchResult, Options, Phase, RetryNotice, TransferState
from getfile_core.digest import format_digest, hash_range, new_hasher
from getfile_core.errors import (
    ChecksumMismatchError,
    GetfileError,
    IntegrityError,
    InterruptedError_,
    LocalFileError,
    ProtocolError,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from getfile_core.checksums import DigestCheck

MiB = 1024 * 1024
#: Files smaller than this come on one connection, whatever ``segments`` says
#: (slices: the floor, ``slices.FLOOR``, is half of it; the old start: the
#: opening connection, which asked for the whole file, brings it all).
#: Segments cost a connection each and, before slices, a round trip more (the
#: other connections started once the head gave the size). Measured (medians of 3,
#: in-process server, 2-core VM, when a head-only request still came
#: first): on a long path (40 ms one way, 256 KiB window) one connection
#: against 4 segments took 0.42 s vs 0.49 s for 1 MiB, 0.76 vs 0.83 s for
#: 2 MiB, 1.41 vs 0.86 s for 4 MiB and 2.74 vs 0.83 s for 8 MiB; on loopback
#: segments never won below 8 MiB (3.1 vs 5.3 ms at 4 MiB). 4 MiB is where
#: they start to pay on a long path and cost a few ms on a fast one.
MIN_SEGMENTED = 4 * MiB
#: Most connections one download opens (per download, all sources together).
MAX_CONNECTIONS = 32
#: A record from before records named their connections: at most this many to continue it.
OLD_RECORD_CONNECTIONS = 8
#: How often the supervisor samples progress, hashes what is in order, and
#: notices a cancel; the ranges record is rewritten every ``SAVE_EVERY``.
TICK = 0.1
SAVE_EVERY = 1.0
#: Longest wait, after a stop, for a connection's thread to end before the ``.part`` is cut.
STOP_WAIT = 5.0


def resume_count(record: ranges.Record, size: int, mtime_ns: int | None) -> int:
    """Connections to continue ``record`` on: one per unfinished range, up to the count it was
    started with (``OLD_RECORD_CONNECTIONS`` if it does not say); all of them for a remote
    file that changed (it starts again)."""
    most = min(MAX_CONNECTIONS, record.connections or OLD_RECORD_CONNECTIONS)
    if record.size != size or record.mtime_ns != mtime_ns:
        return most
    holes, end = 0, 0
    for start, stop in record.done:
        holes += start > end
        end = stop
    holes += end < size
    return max(1, min(most, holes))


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
        self.crew: Crew | None = None
        self._saved: ranges.Record | None = None
        #: The connections this download was started with, kept in its record.
        self._started_with: int | None = None
        self._threads: list[threading.Thread] = []
        #: ``Options.expected``'s check, riding on the in-order hash (``_fresh_hasher``).
        self._check: DigestCheck | None = None
        self._checked: str | None = None

    def run(self, on_retry: Callable[[RetryNotice], None] | None) -> FetchResult:
        began = time.monotonic()
        self.state.phase = Phase.CONNECTING
        record: ranges.Record | None = None
        sliced: SlicedStart | None = None
        opening: Opening | None = None
        try:
            offset = self.destination.check()
            shown = self.destination.part_path + ranges.SUFFIX
            if self.destination.resume:
                record = ranges.load(self.destination.dir_fd, self.record_name, shown)
            fresh = not offset and record is None
            if fresh and len(self.sources) == 1 and self.options.segments > 1:
                sliced, head = self._open_slices(on_retry)
            if sliced is None:
                head, opening = self._first_head(offset, on_retry)
        except NoRanges as refusal:
            return self._without_ranges(refusal, record, on_retry)
        except BaseException:
            self.destination.close()
            raise
        count = min(MAX_CONNECTIONS, max(self.options.segments, len(self.sources)))
        if record is not None:
            self._started_with = record.connections
            if self.options.segments == 1 and self.options.resume_connections:
                count = max(count, resume_count(record, head.size, head.mtime_ns))
        if self._started_with is None:
            self._started_with = count
        if sliced is None and head.size < MIN_SEGMENTED and record is None:
            if opening is None or not head.size:
                if opening is not None:
                    opening.session.close()
                return self._one_connection(on_retry)
            count = 1  # the opening connection brings it all: no second connection
        crew: Crew | None = None
        try:
            crew = self._crew(head, sliced, record, offset, count)
            fd = self._open_part(offset, head.size)
            if sliced is not None:
                sliced.proceed(crew)
                self._threads.extend(sliced.threads)
            else:
                self._start(crew, count, on_retry, _first_piece(crew.plan, opening))
                opening = None  # its thread closes it
            digest = self._download(crew, fd, on_retry)
        except BaseException as error:
            if opening is not None:
                opening.session.close()
            if sliced is not None:
                sliced.abort()  # its threads end (after ``proceed``, _give_up stops them too)
            if crew is None:
                self.destination.close()
            else:
                self._give_up(crew, error)
            raise
        return self._finish(crew, digest, began)

    def _crew(
        self,
        head: Head,
        sliced: SlicedStart | None,
        record: ranges.Record | None,
        offset: int,
        count: int,
    ) -> Crew:
        """The plan (the slices', or cut from the record) and what the connections share."""
        self.sources[0].head = head
        if sliced is not None:
            plan = sliced.plan(head)
        else:
            plan = Plan(head.size, self._usable(record, head, offset), count)
        self.crew = Crew(
            self.options, self.destination, self.state, self.sources, plan, head, head.digest
        )
        self.state.total, self.state.resumed_from = head.size, plan.done_bytes()
        return self.crew

    def _finish(self, crew: Crew, digest: str, began: float) -> FetchResult:
        """Every byte in and verified: the ``.part`` becomes the file, its record goes."""
        ranges.remove(self.destination.dir_fd, self.record_name)
        path = self.destination.commit(crew.head.mtime_ns)
        self.state.phase = Phase.DONE
        return FetchResult(
            path=path,
            size=crew.head.size,
            digest=digest,
            legacy=False,
            resumed_from=self.state.resumed_from,
            seconds=time.monotonic() - began,
            attempts=crew.connections_made,
            checksum=self._checked,
        )

    def _without_ranges(
        self,
        refusal: NoRanges,
        record: ranges.Record | None,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> FetchResult:
        """The server cannot send ranges: one plain download, said once (a record: refused)."""
        if record is not None:
            self.destination.close()
            raise LocalFileError(
                f"{self.destination.part_path} holds byte ranges, but the server cannot "
                f"send ranges ({refusal.why}); use --overwrite to start again"
            ) from None
        self._remark(
            f"{self.sources[0].label} cannot send byte ranges ({refusal.why}); "
            "downloading over one connection"
        )
        return self._one_connection(on_retry, legacy=refusal.legacy)

    def _open_slices(
        self, on_retry: Callable[[RetryNotice], None] | None
    ) -> tuple[SlicedStart | None, Head | None]:
        """A fresh download from one server: every connection asks for its slice at once.

        Returns the started connections and the first head, or ``(None,
        None)`` when the server does not know slices (ask it today's way);
        raises ``NoRanges`` when it cannot send ranges at all.
        """
        count = min(MAX_CONNECTIONS, self.options.segments)
        target, memory = self.sources[0].target, self.options.known_servers
        at_once = known.answers_slices(target.host, target.port, memory)
        sliced = SlicedStart(self.sources[0], self.options, count, at_once=at_once)
        self.state.note = f"waiting for {self.sources[0].label} to answer"
        try:
            sliced.launch(on_retry)
            head = sliced.wait_first(self.state).head
        except Refused as refusal:
            sliced.abort()
            known.learned(target.host, target.port, False, memory)
            if refusal.no_ranges is not None:
                raise refusal.no_ranges from None
            return None, None
        except BaseException:
            sliced.abort()
            raise
        finally:
            self.state.note = ""
        known.learned(target.host, target.port, True, memory)
        return sliced, head

    def _first_head(
        self, offset: int, on_retry: Callable[[RetryNotice], None] | None
    ) -> tuple[Head, Opening | None]:
        """The first source's head: with the first range's body coming, unless resuming.

        A fresh download asks for the whole file (``open_whole``) and keeps
        the connection for its first piece: no round trip is spent on a head
        alone. A ``.part`` to continue asks for the head only (``probe``):
        which range comes first depends on the size the head gives.
        """
        options, state, target = self.options, self.state, self.sources[0].target

        def lost(error: GetfileError) -> bool:
            return isinstance(error, InterruptedError_)

        def head_only() -> tuple[Head, None]:
            return probe(target, options, state), None

        def with_body() -> tuple[Head, Opening]:
            opening = open_whole(target, options, state)
            return opening.head, opening

        answer, _ = run_with_retries(
            head_only if offset else with_body,
            options=options,
            state=state,
            retryable=lost,
            on_retry=on_retry,
        )
        return answer

    def _one_connection(
        self, on_retry: Callable[[RetryNotice], None] | None, *, legacy: bool = False
    ) -> FetchResult:
        """One plain download; ``legacy``: the server was silent to a getfile request just
        now, so it is asked the book's way at once (not a second getfile request first)."""
        from getfile_core.client.get import Download

        self.destination.close()
        one = Download(self.sources[0].target, self.destination, self.options, self.state)
        if legacy and self.options.legacy is None:
            one.use_legacy = True
        return one.run(on_retry)

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

    def _give_up(self, crew: Crew, error: BaseException) -> None:
        """Keep the ``.part`` and its record for ``--resume``, unless it cannot be trusted."""
        crew.stop_all()  # Ctrl-C lands here too: no connection writes on after the close
        broke_trust = isinstance(error, IntegrityError | ProtocolError)
        if isinstance(error, ChecksumMismatchError):
            broke_trust = False  # the servers kept their word: the .part stays to be judged
        keep = crew.plan.done_bytes() > 0 and not broke_trust
        dir_fd = self.destination.dir_fd
        if keep and dir_fd >= 0:
            try:
                self._save_record(crew)
            except LocalFileError:
                keep = self._keep_as_prefix(crew)
        elif dir_fd >= 0:
            ranges.remove(dir_fd, self.record_name)
        self.destination.abandon(keep_part=keep)

    def _keep_as_prefix(self, crew: Crew) -> bool:
        """No record could be written (a full disk): keep only what a record is not needed for.

        The ``.part`` has the file's whole size (holes where no range landed),
        and without its record a ``--resume`` reads it as a plain download's
        prefix: all 12 MiB "done", then a digest mismatch (exit 7) and the
        ``.part`` removed, after a full disk had left 5 MiB of good ranges.
        An older record still on disk names ranges that are all still there;
        without one, the ``.part`` is cut to the bytes in order from 0 (a cut
        needs no space), or removed when there are none. Returns whether the
        ``.part`` is kept.
        """
        dir_fd = self.destination.dir_fd
        try:
            os.stat(self.record_name, dir_fd=dir_fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        for thread in self._threads:  # stopped (``stop_all``): none may write past the cut
            thread.join(STOP_WAIT)
        prefix = crew.plan.prefix()
        if any(thread.is_alive() for thread in self._threads) or not prefix:
            return False
        try:
            os.ftruncate(self.destination.fd, prefix)
        except OSError:
            return False
        return True

    def _save_record(self, crew: Crew) -> None:
        """Rewrite the ranges record, if the ranges changed since the last time."""
        done = tuple(crew.plan.done_ranges())
        record = ranges.Record(crew.head.size, crew.head.mtime_ns, done, self._started_with)
        if record != self._saved:
            ranges.save(self.destination.dir_fd, self.record_name, record)
            self._saved = record

    def _remark(self, line: str) -> None:
        if self.options.on_remark is not None:
            self.options.on_remark(line)

    # ------------------------------------------------------------ supervising the connections

    def _start(
        self,
        crew: Crew,
        count: int,
        on_retry: Callable[[RetryNotice], None] | None,
        first: rangefetch.Started | None,
    ) -> None:
        """``count`` connection threads, spread over the sources in turn; the first
        (the first source's) gets the opening connection, if there is one."""
        for index in range(count):
            source = self.sources[index % len(self.sources)]
            sub = TransferState(phase=Phase.CONNECTING)
            crew.subs.append(sub)
            thread = threading.Thread(
                target=rangefetch.work,
                args=(crew, source, sub, on_retry, first if index == 0 else None),
                name=f"getfile-segment-{index}",
                daemon=True,
            )
            self._threads.append(thread)
            with crew.lock:
                crew.working += 1
            thread.start()

    def _download(self, crew: Crew, fd: int, on_retry: Callable[[RetryNotice], None] | None) -> str:
        """Supervise the connections, hash in order meanwhile, and verify the whole file."""
        state, plan = self.state, crew.plan
        state.phase = Phase.DOWNLOADING
        hasher, hashed = self._fresh_hasher(), 0
        buffer = memoryview(bytearray(BUFFER))
        saved = time.monotonic()
        while any(thread.is_alive() for thread in self._threads):
            crew.changed.wait(TICK)
            crew.changed.clear()
            if state.cancelled or crew.fatal is not None:
                crew.stop_all()
            elif plan.settled():
                crew.stop_idle()
            if crew.reverted:  # a mirror's bytes were taken back: hash again from the start
                hasher, hashed, crew.reverted = self._fresh_hasher(), 0, False
            hashed = _hash_in_order(plan, fd, hasher, hashed, buffer)
            state.done, state.connections = plan.done_bytes(), crew.live
            if time.monotonic() - saved >= SAVE_EVERY:
                self._save_record(crew)
                saved = time.monotonic()
        for thread in self._threads:
            thread.join()
        state.done, state.connections = plan.done_bytes(), 0
        state.check_cancelled()
        if crew.fatal is not None:
            raise crew.fatal
        if not plan.complete():
            raise crew.last_error or InterruptedError_("every connection ended early")
        if crew.reverted:
            hasher, hashed = self._fresh_hasher(), 0
        return self._verify(crew, fd, hasher, hashed, buffer, on_retry)

    def _verify(
        self,
        crew: Crew,
        fd: int,
        hasher: blake3.blake3,
        hashed: int,
        buffer: memoryview,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> str:
        self.state.phase = Phase.VERIFYING
        hash_range(fd, hashed, crew.head.size, hasher, buffer)
        got = format_digest(hasher)
        wanted = crew.reference_digest(self.state, on_retry)
        if got != wanted:
            raise IntegrityError(
                f"digest mismatch: server announced {wanted[:20]}..., "
                f"received data hashes to {got[:20]}... (partial file removed)"
            )
        if self._check is not None:
            from getfile_core.checksums import require_match

            kept = self.destination.part_path
            self._checked = require_match(self._check, kept=kept, vouched=True)
        return got

    def _fresh_hasher(self) -> blake3.blake3:
        """A BLAKE3 hasher from byte 0, with ``Options.expected`` riding on it if given."""
        if self.options.expected is None:
            return new_hasher()
        from getfile_core.checksums import hashing_with  # only with a checksum: hashlib, re

        feed, self._check = hashing_with(new_hasher(), self.options.expected)
        return feed


def _first_piece(plan: Plan, opening: Opening | None) -> rangefetch.Started | None:
    """The opening connection (whole file from 0) and a fresh plan's first piece, for its thread."""
    if opening is None:
        return None
    piece = plan.take(0)  # a fresh plan's first piece: [0, a share)
    assert piece is not None and piece.start == 0
    return rangefetch.Started(opening, piece)


def _hash_in_order(
    plan: Plan, fd: int, hasher: blake3.blake3, hashed: int, buffer: memoryview
) -> int:
    """Hash what is written without a gap since ``hashed``; returns how far the hash got."""
    prefix = plan.prefix()
    if prefix > hashed:
        hash_range(fd, hashed, prefix, hasher, buffer)
    return max(prefix, hashed)


__all__ = ["MIN_SEGMENTED", "MIN_SPLIT", "SegmentedDownload", "wants_segments"]
