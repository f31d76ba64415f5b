"""GET: one file into its ``.part``, verified, committed; retried and resumed when the link drops.

Runs in a worker thread with a blocking socket. Why a thread and not the
event loop: the body loop (``receive``: splice into the file and hash from
the page cache, or ``recv_into`` a reused 1 MiB buffer, ``os.write`` and a
BLAKE3 update) releases the GIL in every call. Running it off the loop
keeps a Textual UI (or a thousand other transfers) responsive, and measured
about 3x faster than asyncio's stream reader. The thread publishes progress
by plain counters in ``TransferState`` that the async side samples at a
bounded rate; a cancel shuts the socket down, which wakes the blocked
``recv`` (or ``splice``) at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client.body import copy_body, expect_close, read_trailer
from getfile_core.client.destination import Destination
from getfile_core.client.retry import run_with_retries
from getfile_core.client.session import (
    Session,
    printable,
    raise_for_status,
)
from getfile_core.client.state import FetchResult, Options, Phase, RetryNotice, TransferState
from getfile_core.digest import format_digest, hash_descriptor, new_hasher
from getfile_core.errors import (
    ChecksumMismatchError,
    GetfileError,
    IntegrityError,
    InterruptedError_,
    LegacyServerError,
    NotFoundError,
    ProtocolError,
    TimeoutError_,
    TooSlowError,
    UnreachableError,
)
from getfile_core.protocol import LATEST, LegacyRequest, Request, Response, Verb

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    import blake3

    from getfile_core.checksums import DigestCheck


def download(
    target: Target,
    destination: Destination,
    options: Options,
    state: TransferState,
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> FetchResult:
    """Fetch one file into ``destination``: the whole of a download, blocking.

    ``client.fetch`` runs this in a thread; the one-file CLI calls it directly
    (no event loop to start). ``on_retry`` is called in this thread before each
    backoff wait (several connections: in theirs). ``Options.segments`` and
    ``Options.mirrors`` make it a ``segments.SegmentedDownload``.
    Raises only ``GetfileError`` subclasses (an unexpected OSError is
    wrapped), and leaves ``state.phase`` at done, failed or cancelled.
    """
    try:
        if options.segments > 1 or options.mirrors or destination.resume:
            from getfile_core.client.segments import SegmentedDownload, wants_segments

            if wants_segments(options, destination):
                return SegmentedDownload(target, destination, options, state).run(on_retry)
        return Download(target, destination, options, state).run(on_retry)
    except GetfileError:
        state.note = ""
        state.phase = Phase.CANCELLED if state.cancelled else Phase.FAILED
        raise
    except OSError as error:
        state.note = ""
        state.phase = Phase.FAILED
        raise GetfileError(f"{error.strerror or error}") from error


class Download:
    """One file's download across however many connections it takes."""

    def __init__(
        self, target: Target, destination: Destination, options: Options, state: TransferState
    ) -> None:
        self.target = target
        self.destination = destination
        self.options = options
        self.state = state
        self.use_legacy = options.legacy is True
        #: A getfile server answered at least once: silence now means a lost link.
        self.reached = False
        self.offset = 0
        #: ``Options.expected`` as ``algo:hex`` once the file matched it.
        self.checked: str | None = None

    def run(self, on_retry: Callable[[RetryNotice], None] | None) -> FetchResult:
        began = time.monotonic()
        self.state.phase = Phase.CONNECTING
        self.offset = self.destination.check()
        first_offset = self.offset
        try:
            (path, digest), attempts = run_with_retries(
                self._attempt,
                options=self.options,
                state=self.state,
                retryable=self._retryable,
                on_retry=on_retry,
            )
        except BaseException:
            self.destination.abandon(keep_part=self.state.done > 0)
            raise
        return FetchResult(
            path=path,
            size=self.state.done,
            digest=digest,
            legacy=self.state.legacy,
            resumed_from=first_offset,
            seconds=time.monotonic() - began,
            attempts=attempts,
            checksum=self.checked,
        )

    def _retryable(self, error: GetfileError) -> bool:
        """Lost, reset, or gone silent: yes. Refused, lying, trickling, busy: no.

        Silence and refusal count only once the server was reached: a first
        connect that times out or is refused is a wrong address far more often
        than a bad link, and says so at once. "Busy" is a refusal the server
        states; a person (or the TUI's queue) decides when to ask again.
        """
        if isinstance(error, InterruptedError_):
            return True
        if isinstance(error, TooSlowError):
            return False
        return isinstance(error, TimeoutError_ | UnreachableError) and self.reached

    def _attempt(self) -> tuple[str, str | None]:
        """One connection: request, body into the ``.part``, verify, commit."""
        if self.destination.fd >= 0:  # a retry: go on from what the last attempt wrote
            self.offset = 0 if self.use_legacy else self.destination.written()
        self.state.phase = Phase.CONNECTING
        session = Session(self.target, self.options, self.state)
        try:
            response = self._open(session)
            self.state.resumed_from = self.offset
            self.state.done = self.offset
            fd = self.destination.open_part(self.offset)
            self.state.phase = Phase.DOWNLOADING
            try:
                digest = self._receive_body(session, fd, response)
            except BaseException as error:
                raise self._body_failed(error) from None
        finally:
            session.close()
        self.state.phase = Phase.VERIFYING
        path = self.destination.commit(response.mtime_ns if response else None)
        self.state.phase = Phase.DONE
        return path, digest

    def _open(self, session: Session) -> Response | None:
        """Connect and ask, extended first; ``None`` is the legacy dialect's no-head."""
        offset = self.offset
        if not self.use_legacy:
            try:
                request = Request(Verb.GET, self.target.path, offset=offset, version=LATEST)
                response = session.open(request)
            except protocol.LegacySilence:
                if self.reached:
                    raise InterruptedError_("the server closed without answering") from None
                if self.options.legacy is False:
                    raise LegacyServerError(
                        "the server closed without answering (a legacy server, "
                        "or a TLS one: try getfiles://)"
                    ) from None
                session.close()
                self.use_legacy = True
            else:
                assert response is not None
                self.reached = True
                return self._check_head(response)
        if offset:
            raise LegacyServerError(
                "a legacy server cannot resume; use --overwrite to download it again"
            )
        self.state.legacy = True
        session.open(LegacyRequest(self.target.path))
        self.reached = True
        return None

    def _check_head(self, response: Response) -> Response:
        raise_for_status(response)
        if response.offset != self.offset:
            raise ProtocolError("server resumed from a different offset than asked")
        if response.digest is None and not response.trailer:
            # Nothing could be verified, the resumed prefix least of all.
            raise ProtocolError("the server announced no digest: refusing an unverifiable file")
        self.state.total = response.size
        return response

    def _body_failed(self, error: BaseException) -> BaseException:
        """Keep the ``.part`` for a retry or ``--resume`` unless the server broke its word."""
        if isinstance(error, ChecksumMismatchError):
            return error  # the server kept its word: the .part stays for a person to judge
        broke_trust = isinstance(error, IntegrityError | ProtocolError)
        if broke_trust and not isinstance(error, protocol.ShortBody):
            self.destination.abandon(keep_part=False)
            return error
        if isinstance(error, protocol.MissingTrailer):
            return InterruptedError_(
                f"connection closed before the digest arrived "
                f"(kept {self.destination.part_path}; resuming fetches only the digest)"
            )
        if isinstance(error, protocol.ShortBody):
            return InterruptedError_(
                f"connection closed after {self.state.done} of {self.state.total} bytes "
                f"(kept {self.destination.part_path}; --resume continues it)"
            )
        if isinstance(error, NotFoundError) and self.state.legacy and self.options.legacy is None:
            # Silence to both dialects: a TLS server looks exactly like this too.
            return NotFoundError(
                "the server closed without a byte, to a getfile and to a legacy request: "
                "a legacy server without this file, or a TLS server (try getfiles://)"
            )
        return error

    def _receive_body(self, session: Session, fd: int, response: Response | None) -> str | None:
        """Copy the body into ``fd``; check size, trailing silence and digest."""
        sock, state = session.sock, self.state
        assert sock is not None
        # Legacy: no digest was announced, so there is nothing to check a hash against.
        hasher = new_hasher() if response is not None else None
        # A published checksum rides in the same pass (one read-back, one prefix hash).
        feed, check = _with_published(hasher, self.options)
        if self.offset and feed is not None:
            hash_descriptor(fd, self.offset, feed)  # a resume verifies the whole file
        copy_body(session, fd, feed)
        if response is None:
            if state.done == 0:
                raise NotFoundError(
                    "the legacy server sent nothing: the file is missing, unreadable or empty "
                    "(the book's protocol cannot tell which)"
                )
            state.total = state.done
            self._check_published(check, vouched=False)
            return None
        state.phase = Phase.VERIFYING
        if response.trailer:
            name = printable(self.target.display_path.rsplit("/", 1)[-1])
            announced = read_trailer(session, name, response.size)
        else:
            announced = response.digest
        expect_close(sock)
        assert hasher is not None
        got = format_digest(hasher)
        if got != announced:
            raise IntegrityError(
                f"digest mismatch: server announced {str(announced)[:20]}..., "
                f"received data hashes to {got[:20]}... (partial file removed)"
            )
        self._check_published(check, vouched=True)
        return got

    def _check_published(self, check: DigestCheck | None, *, vouched: bool) -> None:
        """The published checksum, if one was given; ``vouched``: the server's digest matched."""
        if check is not None:
            from getfile_core.checksums import require_match

            self.checked = require_match(check, kept=self.destination.part_path, vouched=vouched)


def _with_published(hasher: blake3.blake3 | None, options: Options) -> tuple:
    """``(feed, check)``: ``hasher`` alone, or with ``Options.expected`` riding on it."""
    if options.expected is None:
        return hasher, None
    from getfile_core.checksums import hashing_with  # only with a checksum: hashlib, re

    return hashing_with(hasher, options.expected)
