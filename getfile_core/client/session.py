"""One connection to a server: TCP (and TLS), one request, the response head.

Every failure of the network becomes one ``GetfileError`` with a line for a
person; the body is read by the caller (``download`` or ``listing``). The
socket is blocking with a timeout: this runs in a transfer's own thread.
"""

from __future__ import annotations

import _thread
import contextlib
import socket
import time

from getfile_core import auth, protocol, safe_text
from getfile_core.address import Target, resolver_host
from getfile_core.client.state import Options, Phase, TransferState
from getfile_core.errors import (
    BusyError,
    ConnectError,
    ForbiddenError,
    InterruptedError_,
    NotFoundError,
    RemoteError,
    TimeoutError_,
    TooSlowError,
    UnauthorizedError,
    UnreachableError,
)
from getfile_core.protocol import LegacyRequest, Request, Response, Status

#: However many ``102 processing`` heads a server sends, the real head must come
#: within this many seconds of the request (the hour ``docs/protocol.md`` promises).
MAX_PREPARE_SECONDS = 3600.0
#: Longest ``note`` taken from a server's interim message.
_MAX_NOTE = 200

#: Servers (host, port) that answered ``505`` to version 2: asked in version 1
#: from then on, for the life of the process, instead of two connections each time.
_VERSION_1_ONLY: set[tuple[str, int]] = set()
_VERSION_1_LOCK = _thread.allocate_lock()  # threading.Lock, without importing threading


def hashing_note(name: str, hashed: int | None, size: int | None, message: str = "") -> str:
    """What a client waiting for a server's hash shows: "server is hashing big.iso (40%)"."""
    if hashed is not None and size:
        return f"server is hashing {name} ({min(100, hashed * 100 // size)}%)"
    what = "".join(ch if ch.isprintable() else " " for ch in message)[:_MAX_NOTE]
    return f"server is {what}" if what else f"server is hashing {name}"


def connect(target: Target, options: Options, state: TransferState) -> socket.socket:
    """Open TCP (and TLS if asked), mapping every failure to one clear error."""
    where = target.address
    try:
        address = (resolver_host(target.host), target.port)
        sock = socket.create_connection(address, options.connect_timeout)
    except (socket.gaierror, UnicodeError):
        raise ConnectError(f"host not found: {target.host}") from None
    except ConnectionRefusedError:
        raise UnreachableError(
            f"connection refused by {where} (is a getfile server running?)"
        ) from None
    except TimeoutError:
        raise TimeoutError_(
            f"no answer from {where} within {options.connect_timeout:g} s"
        ) from None
    except OSError as error:
        raise UnreachableError(f"cannot connect to {where}: {error.strerror or error}") from None
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
        import hashlib  # only for a pin: OpenSSL's hashlib costs ~2.5 ms of start-up

        seen = hashlib.sha256(der).hexdigest()
        if seen != options.pin_sha256.lower().replace(":", ""):
            tls.close()
            raise ConnectError(f"TLS certificate does not match the pin (its SHA-256 is {seen})")
    return tls


def recv(sock: socket.socket, state: TransferState, size: int = 64 * 1024) -> bytes:
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


def send(sock: socket.socket, data: bytes, state: TransferState) -> None:
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
    """Send one request and read the head; the caller reads the body (small: ``read_body``)."""

    def __init__(self, target: Target, options: Options, state: TransferState) -> None:
        self.target = target
        self.options = options
        self.state = state
        self.sock: socket.socket | None = None
        self.conn: protocol.ClientConnection | None = None

    def open(self, request: Request | LegacyRequest, *, downgrade: bool = True) -> Response | None:
        """Connect and send; for extended requests return the head (auth handled).

        A request in a version the server does not speak (``505``) is asked
        again in version 1 on a new connection, and the server remembered;
        with ``downgrade=False`` the ``505`` is returned instead (a range or
        a slice cannot be asked in version 1: a second connection would only
        fail to write it), and the server still remembered.
        """
        where = (self.target.host, self.target.port)
        if isinstance(request, Request) and request.version > protocol.VERSION:
            with _VERSION_1_LOCK:
                if where in _VERSION_1_ONLY:
                    request = request.replace(version=protocol.VERSION)
        response = self._open_once(request)
        if (
            isinstance(request, Request)
            and response is not None
            and response.status is Status.UNSUPPORTED_VERSION
            and request.version > protocol.VERSION
        ):
            with _VERSION_1_LOCK:
                _VERSION_1_ONLY.add(where)
            if not downgrade:
                return response
            self.close()
            response = self._open_once(request.replace(version=protocol.VERSION))
        return response

    def _open_once(self, request: Request | LegacyRequest) -> Response | None:
        where = printable(self.target.address)
        self.state.note = f"connecting to {where}"
        self.sock = connect(self.target, self.options, self.state)
        self.sock.settimeout(self.options.timeout)
        self.conn = protocol.ClientConnection(request)
        send(self.sock, self.conn.request_bytes(), self.state)
        if isinstance(request, LegacyRequest):
            self.state.note = ""
            return None
        self.state.note = f"waiting for {where} to answer"
        response = self._read_head()
        if response.status is Status.UNAUTHORIZED and response.challenge is not None:
            if self.options.token is None:
                raise UnauthorizedError(
                    "this server needs a token (--token-file, or $GETFILE_TOKEN)", response.status
                )
            request_line = self.conn.request_bytes()[:-1]
            mac = auth.compute_mac(self.options.token, response.challenge, request_line)
            send(self.sock, self.conn.auth_bytes(mac), self.state)
            response = self._read_head()
        return response

    def _read_head(self) -> Response:
        """The whole head within ``timeout`` seconds: a per-recv timeout alone lets a
        server that drips one byte at a time hold the client forever.

        A ``102 processing`` head (a server hashing a big file) starts a new
        ``timeout`` window, but never past ``MAX_PREPARE_SECONDS`` after the request.
        """
        assert self.sock is not None and self.conn is not None
        timeout = self.options.timeout
        began = time.monotonic()
        deadline = began + timeout
        capped = began + MAX_PREPARE_SECONDS
        trickled = False
        while True:
            event = self.conn.next_event()
            if isinstance(event, Response) and event.status is Status.PROCESSING:
                self._note_waiting(event)
                deadline, trickled = min(time.monotonic() + timeout, capped), False
                continue
            if isinstance(event, Response):
                self.sock.settimeout(timeout)
                self.state.note = ""
                return event
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError_("no head in time")
                self.sock.settimeout(left)
                data = recv(self.sock, self.state)
            except TimeoutError_:
                if deadline >= capped:
                    raise TooSlowError(
                        f"server still preparing after {MAX_PREPARE_SECONDS:g} s; giving up"
                    ) from None
                if trickled or left <= 0:
                    raise TooSlowError(
                        f"server too slow: no complete response head in {timeout:g} s"
                    ) from None
                raise
            trickled = True
            self.conn.receive_data(data)

    def _note_waiting(self, interim: Response) -> None:
        name = self.target.display_path.rsplit("/", 1)[-1]
        self.state.note = hashing_note(
            printable(name), interim.hashed, interim.size, interim.message
        )
        self.state.phase = Phase.WAITING

    def read_body(self, length: int) -> bytes:
        """A small body (a listing page, a small file) whole, into memory."""
        assert self.sock is not None and self.conn is not None
        body = bytearray(self.conn.take_buffered())
        pace = PaceFloor(self.options.timeout, len(body))
        while len(body) < length:
            data = recv(self.sock, self.state, min(256 * 1024, length - len(body)))
            if not data:
                raise protocol.ShortBody(length - len(body))
            self.conn.consume_body(len(data))
            body += data
            if len(data) < PaceFloor.MIN_BYTES:
                pace.check(len(body))
        return bytes(body)

    def close(self) -> None:
        self.state.attach(None)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def printable(text: str) -> str:
    """``safe_text.printable``, cut to a note's length (names and reasons from a server)."""
    return safe_text.printable(text, limit=_MAX_NOTE)


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
            raise TooSlowError(f"server too slow: {got} bytes in {now - self.began:.0f} s")
        self.began, self.base = now, done
