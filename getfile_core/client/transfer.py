"""One request over one connection, run in a worker thread with a blocking socket.

Why a thread and not the event loop: the body loop (``receive``: splice
into the file and hash from the page cache, or ``recv_into`` a reused 1 MiB
buffer, ``os.write`` and a BLAKE3 update) releases the GIL in every call.
Running it off the loop keeps a Textual UI (or a thousand other transfers)
responsive, and measured about 3x faster than asyncio's stream reader. The
thread publishes progress by plain counters in ``TransferState`` that the
async side samples at a bounded rate; a cancel shuts the socket down, which
wakes the blocked ``recv`` (or ``splice``) at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from getfile_core import auth, protocol
from getfile_core.address import Target
from getfile_core.client.destination import Destination, write_all
from getfile_core.client.receive import BUFFER, open_receiver
from getfile_core.digest import format_digest, hash_descriptor, new_hasher
from getfile_core.errors import (
    BusyError,
    ConnectError,
    ForbiddenError,
    GetfileError,
    IntegrityError,
    InterruptedError_,
    LegacyServerError,
    NotFoundError,
    ProtocolError,
    RemoteError,
    TimeoutError_,
    UnauthorizedError,
)
from getfile_core.protocol import LegacyRequest, Request, Response, Status, Verb

if TYPE_CHECKING:
    import ssl


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


@dataclass
class TransferState:
    """Counters a transfer thread writes and anyone may read; no locks needed.

    ``phase`` goes: queued, connecting, downloading, verifying, then done,
    failed or cancelled. ``done`` counts bytes of the file on disk (resumed
    bytes included), ``total`` is None while unknown (legacy servers).
    """

    phase: str = "queued"
    done: int = 0
    total: int | None = None
    resumed_from: int = 0
    legacy: bool = False
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    _socket: socket.socket | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock
            if sock is not None and self.cancelled:
                _shutdown(sock)

    def cancel(self) -> None:
        """Ask the transfer to stop; safe from any thread, idempotent."""
        with self._lock:
            self.cancelled = True
            if self._socket is not None:
                _shutdown(self._socket)

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise InterruptedError_("cancelled")


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class FetchResult:
    path: str
    size: int
    digest: str | None
    legacy: bool
    resumed_from: int
    seconds: float


# ---------------------------------------------------------------- connection


def connect(target: Target, options: Options, state: TransferState) -> socket.socket:
    """Open TCP (and TLS if asked), mapping every failure to one clear error."""
    where = f"{target.host}:{target.port}"
    try:
        sock = socket.create_connection((target.host, target.port), options.connect_timeout)
    except socket.gaierror:
        raise ConnectError(f"host not found: {target.host}") from None
    except ConnectionRefusedError:
        raise ConnectError(
            f"connection refused by {where} (is a getfile server running?)"
        ) from None
    except TimeoutError:
        raise TimeoutError_(
            f"no answer from {where} within {options.connect_timeout:g} s"
        ) from None
    except OSError as error:
        raise ConnectError(f"cannot connect to {where}: {error.strerror or error}") from None
    # No SO_RCVBUF: a fixed size turns off the kernel's autotuning (up to
    # tcp_rmem's maximum, 32 MiB here), which a long fat link needs, and on
    # loopback 1 MiB, 4 MiB and autotuned measured the same (docs/performance.md).
    if target.tls:
        sock = _wrap_tls(sock, target, options)
    state.attach(sock)
    return sock


def _wrap_tls(sock: socket.socket, target: Target, options: Options) -> socket.socket:
    import ssl

    context = options.ssl_context
    if context is None:
        context = ssl.create_default_context()
        if options.pin_sha256:
            # A pin replaces CA trust: the certificate itself is the identity.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        tls = context.wrap_socket(sock, server_hostname=target.host)
    except ssl.SSLCertVerificationError as error:
        sock.close()
        raise ConnectError(f"TLS certificate rejected: {error.verify_message}") from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError):
        sock.close()
        raise ConnectError(
            "TLS handshake failed: the server hung up (a plain getfile:// server?)"
        ) from None
    except TimeoutError:
        sock.close()
        raise TimeoutError_(
            f"TLS handshake: no answer within {options.connect_timeout:g} s "
            "(a plain getfile:// server?)"
        ) from None
    except (ssl.SSLError, OSError) as error:
        sock.close()
        raise ConnectError(f"TLS handshake failed: {error}") from None
    if options.pin_sha256:
        der = tls.getpeercert(binary_form=True) or b""
        seen = hashlib.sha256(der).hexdigest()
        if seen != options.pin_sha256.lower().replace(":", ""):
            tls.close()
            raise ConnectError(f"TLS certificate does not match the pin (its SHA-256 is {seen})")
    return tls


def _recv(sock: socket.socket, state: TransferState, size: int = 64 * 1024) -> bytes:
    try:
        data = sock.recv(size)
    except TimeoutError:
        state.check_cancelled()
        raise TimeoutError_("the server stopped answering") from None
    except OSError as error:
        state.check_cancelled()
        raise InterruptedError_(f"connection lost: {error.strerror or error}") from None
    if not data:
        state.check_cancelled()
    return data


def _send(sock: socket.socket, data: bytes, state: TransferState) -> None:
    try:
        sock.sendall(data)
    except OSError as error:
        state.check_cancelled()
        reason = error.strerror or error
        raise InterruptedError_(f"connection lost while sending: {reason}") from None


_STATUS_ERRORS: dict[Status, type[RemoteError]] = {
    Status.NOT_FOUND: NotFoundError,
    Status.FORBIDDEN: ForbiddenError,
    Status.UNAUTHORIZED: UnauthorizedError,
    Status.BUSY: BusyError,
}


def raise_for_status(response: Response) -> None:
    if response.status is Status.OK:
        return
    error = _STATUS_ERRORS.get(response.status, RemoteError)
    reason = response.message or response.status.token.replace("-", " ")
    code = f"{int(response.status)} {response.status.token}"
    raise error(f"{reason} ({code})", response.status)


class Session:
    """Send one request and read the head; the body is read by the caller."""

    def __init__(self, target: Target, options: Options, state: TransferState) -> None:
        self.target = target
        self.options = options
        self.state = state
        self.sock: socket.socket | None = None
        self.conn: protocol.ClientConnection | None = None

    def open(self, request: Request | LegacyRequest) -> Response | None:
        """Connect and send; for extended requests return the head (auth handled)."""
        self.sock = connect(self.target, self.options, self.state)
        self.sock.settimeout(self.options.timeout)
        self.conn = protocol.ClientConnection(request)
        _send(self.sock, self.conn.request_bytes(), self.state)
        if isinstance(request, LegacyRequest):
            return None
        response = self._read_head()
        if response.status is Status.UNAUTHORIZED and response.challenge is not None:
            if self.options.token is None:
                raise UnauthorizedError(
                    "this server needs a token (--token-file, or $GETFILE_TOKEN)", response.status
                )
            request_line = self.conn.request_bytes()[:-1]
            mac = auth.compute_mac(self.options.token, response.challenge, request_line)
            _send(self.sock, self.conn.auth_bytes(mac), self.state)
            response = self._read_head()
        return response

    def _read_head(self) -> Response:
        """The whole head within ``timeout`` seconds: a per-recv timeout alone lets a
        server that drips one byte at a time hold the client forever."""
        assert self.sock is not None and self.conn is not None
        timeout = self.options.timeout
        deadline = time.monotonic() + timeout
        too_slow = f"server too slow: no complete response head in {timeout:g} s"
        trickled = False
        while True:
            event = self.conn.next_event()
            if isinstance(event, Response) and event.status is Status.PROCESSING:
                # A sign of life from a server hashing a big file: a new deadline.
                deadline, trickled = time.monotonic() + timeout, False
                continue
            if isinstance(event, Response):
                self.sock.settimeout(timeout)
                return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError_(too_slow)
            self.sock.settimeout(left)
            try:
                data = _recv(self.sock, self.state)
            except TimeoutError_:
                if trickled:
                    raise TimeoutError_(too_slow) from None
                raise
            trickled = True
            self.conn.receive_data(data)

    def close(self) -> None:
        self.state.attach(None)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


# ---------------------------------------------------------------- GET


def download(
    target: Target,
    destination: Destination,
    options: Options,
    state: TransferState,
) -> FetchResult:
    """Fetch one file into ``destination``: the whole of a download, blocking.

    ``client.fetch`` runs this in a thread; the one-file CLI calls it directly
    (no event loop to start). Raises only ``GetfileError`` subclasses (an
    unexpected OSError is wrapped), and leaves ``state.phase`` at done,
    failed or cancelled.
    """
    try:
        return _download(target, destination, options, state)
    except GetfileError:
        state.phase = "cancelled" if state.cancelled else "failed"
        raise
    except OSError as error:
        state.phase = "failed"
        raise GetfileError(f"{error.strerror or error}") from error


def _download(
    target: Target,
    destination: Destination,
    options: Options,
    state: TransferState,
) -> FetchResult:
    began = time.monotonic()
    state.phase = "connecting"
    offset = destination.check()
    use_legacy = options.legacy is True
    response: Response | None = None
    session = Session(target, options, state)
    try:
        if not use_legacy:
            try:
                response = session.open(Request(Verb.GET, target.path, offset=offset))
            except protocol.LegacySilence:
                if options.legacy is False:
                    raise LegacyServerError(
                        "the server closed without answering (a legacy server, "
                        "or a TLS one: try getfiles://)"
                    ) from None
                session.close()
                use_legacy = True
        if use_legacy:
            if offset:
                raise LegacyServerError(
                    "a legacy server cannot resume; use --overwrite to download it again"
                )
            state.legacy = True
            session.open(LegacyRequest(target.path))
        else:
            assert response is not None
            raise_for_status(response)
            if response.offset != offset:
                raise ProtocolError("server resumed from a different offset than asked")
            state.total = response.size
        state.resumed_from = offset
        state.done = offset
        fd = destination.open_part(offset)
        state.phase = "downloading"
        try:
            digest = _receive_body(session, fd, offset, response, state)
        except BaseException as error:
            keep = not isinstance(error, IntegrityError | ProtocolError) or isinstance(
                error, protocol.ShortBody
            )
            destination.abandon(keep_part=keep and state.done > 0)
            if isinstance(error, protocol.ShortBody):
                raise InterruptedError_(
                    f"connection closed after {state.done} of {state.total} bytes "
                    f"(kept {destination.part_path}; --resume continues it)"
                ) from None
            if isinstance(error, NotFoundError) and state.legacy and options.legacy is None:
                # Silence to both dialects: a TLS server looks exactly like this too.
                raise NotFoundError(
                    "the server closed without a byte, to a getfile and to a legacy request: "
                    "a legacy server without this file, or a TLS server (try getfiles://)"
                ) from None
            raise
        state.phase = "verifying"
        path = destination.commit(response.mtime_ns if response else None)
        state.phase = "done"
        return FetchResult(
            path=path,
            size=state.done,
            digest=digest,
            legacy=state.legacy,
            resumed_from=offset,
            seconds=time.monotonic() - began,
        )
    except BaseException:
        destination.close()
        raise
    finally:
        session.close()


def _receive_body(
    session: Session, fd: int, offset: int, response: Response | None, state: TransferState
) -> str | None:
    """Copy the body into ``fd``; check size, trailing silence and digest."""
    sock, conn = session.sock, session.conn
    assert sock is not None and conn is not None
    # Legacy: no digest was announced, so there is nothing to check a hash against.
    hasher = new_hasher() if response is not None else None
    if offset and hasher is not None:
        hash_descriptor(fd, offset, hasher)
    leftover = conn.take_buffered()
    if leftover:
        write_all(fd, memoryview(leftover))
        if hasher is not None:
            hasher.update(leftover)
        state.done += len(leftover)
    remaining = conn.body_remaining  # None for legacy: until the server closes
    if not isinstance(sock, _ssl_socket_type()):
        # A blocking socket (splice needs one); SO_RCVTIMEO still bounds how
        # long the server may stay silent.
        sock.settimeout(None)
        seconds = int(session.options.timeout)
        micros = int((session.options.timeout - seconds) * 1e6)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds, micros))
    receiver = open_receiver(sock, fd, hasher, state.check_cancelled)
    pace = PaceFloor(session.options.timeout, state.done)
    try:
        while remaining is None or remaining > 0:
            count = receiver.receive(BUFFER if remaining is None else min(BUFFER, remaining))
            if count == 0:
                if remaining is None:
                    break
                raise protocol.ShortBody(remaining)
            state.done += count
            if count < PaceFloor.MIN_BYTES:  # only a trickle arrived: is the server too slow?
                pace.check(state.done)
            if remaining is not None:
                remaining -= count
                conn.consume_body(count)
        receiver.finish()
    finally:
        receiver.close()
    if response is None:
        if state.done == 0:
            raise NotFoundError(
                "the legacy server sent nothing: the file is missing, unreadable or empty "
                "(the book's protocol cannot tell which)"
            )
        state.total = state.done
        return None
    _expect_close(sock, state)
    state.phase = "verifying"
    got = format_digest(hasher)
    if response.digest is not None and got != response.digest:
        raise IntegrityError(
            f"digest mismatch: server announced {response.digest[:20]}..., "
            f"received data hashes to {got[:20]}... (partial file removed)"
        )
    return got


class PaceFloor:
    """Refuse a server that keeps a transfer alive with a trickle of bytes.

    The per-recv timeout only bounds silence; a server sending one byte a
    second would hold the client forever. A transfer fails when fewer than
    ``MIN_BYTES`` arrive in a window of ``window`` seconds. Only reads that
    return less than ``MIN_BYTES`` consult the clock: each read returns
    within ``window`` seconds (SO_RCVTIMEO or the socket timeout), so a
    window made only of bigger reads already met the floor.
    """

    MIN_BYTES = 1024

    def __init__(self, window: float, done: int) -> None:
        self.window = window
        self.began = time.monotonic()
        self.base = done

    def check(self, done: int) -> None:
        now = time.monotonic()
        if now - self.began < self.window:
            return
        got = done - self.base
        if got < self.MIN_BYTES:
            raise TimeoutError_(f"server too slow: {got} bytes in {now - self.began:.0f} s")
        self.began, self.base = now, done


def _expect_close(sock: socket.socket, state: TransferState) -> None:
    """After the announced bytes the server must close; more data means it lied."""
    sock.settimeout(min(5.0, max(0.5, sock.gettimeout() or 5.0)))
    try:
        extra = sock.recv(1)
    except (TimeoutError, BlockingIOError, OSError):
        return
    if extra:
        raise ProtocolError("server sent more bytes than it announced (partial file removed)")


def _timeval(seconds: int, micros: int) -> bytes:
    import struct

    return struct.pack("ll", seconds, micros)


def _ssl_socket_type() -> type:
    import sys

    ssl = sys.modules.get("ssl")
    return ssl.SSLSocket if ssl is not None else type(None)


# ---------------------------------------------------------------- LIST


def list_folder(
    target: Target, options: Options, state: TransferState, max_entries: int = 10_000
) -> tuple[list[protocol.Entry], bool]:
    """Every entry of a remote folder, page after page, up to ``max_entries``.

    Returns the entries and whether the listing was cut at ``max_entries``.
    """
    entries: list[protocol.Entry] = []
    after: bytes | None = None
    state.phase = "connecting"
    while True:
        session = Session(target, options, state)
        try:
            try:
                response = session.open(Request(Verb.LIST, target.path or b".", after=after))
            except protocol.LegacySilence:
                raise LegacyServerError(
                    "listing needs a getfile server; this one closed without answering "
                    "(a legacy server, or a TLS one: try getfiles://)"
                ) from None
            raise_for_status(response)
            assert response.entries is not None
            if response.next_after is not None and not response.entries:
                # Every page must make progress, or a server could page us forever.
                raise ProtocolError("listing page with a next cursor but no entries")
            body = _read_exact(session, response.body_length)
            entries.extend(protocol.decode_listing(body, response.entries))
        finally:
            session.close()
        if response.next_after is None:
            state.phase = "done"
            return entries, False
        if len(entries) >= max_entries:
            state.phase = "done"
            return entries[:max_entries], True
        if after is not None and response.next_after <= after:
            raise ProtocolError("listing cursor went backwards")
        after = response.next_after


def _read_exact(session: Session, length: int) -> bytes:
    assert session.sock is not None and session.conn is not None
    body = bytearray(session.conn.take_buffered())
    pace = PaceFloor(session.options.timeout, len(body))
    while len(body) < length:
        data = _recv(session.sock, session.state, min(256 * 1024, length - len(body)))
        if not data:
            raise protocol.ShortBody(length - len(body))
        session.conn.consume_body(len(data))
        body += data
        if len(data) < PaceFloor.MIN_BYTES:
            pace.check(len(body))
    return bytes(body)
