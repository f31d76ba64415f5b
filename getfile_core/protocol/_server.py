"""The server's state machine, h11 style: every transition of its side of a connection."""

from __future__ import annotations

import enum

from getfile_core.errors import ProtocolError
from getfile_core.protocol._buffered import _Buffered
from getfile_core.protocol._events import (
    MAGIC,
    MAX_KEEP_REQUESTS,
    MAX_LEGACY_LINE,
    MAX_REQUEST_LINE,
    MAX_SERVER_BUFFER,
    NEED_DATA,
    VERSION,
    AuthProof,
    ConnectionClosed,
    LegacyRequest,
    Request,
    Response,
    Status,
    Trailer,
    Verb,
    _NeedData,
)
from getfile_core.protocol._wire import (
    encode_hash_progress,
    encode_response_head,
    encode_trailer,
    parse_request_line,
    pong,
    proof_subject,
)


class ServerState(enum.StrEnum):
    """Where the server's side of a connection is; each method below says which it needs."""

    REQUEST = "request"  # waiting for the request line
    AUTH = "auth"  # a challenge was sent (or the connection has one): waiting for the proof
    RESPOND = "respond"  # a request is in hand: answer it
    BODY = "body"  # the body is being sent (version 2 trailer, or a kept connection)
    TRAILER = "trailer"  # version 2: the body is out; progress lines, then the trailer
    DONE = "done"


#: Statuses after which even a kept connection closes: the request stream
#: can no longer be trusted (a malformed line, a version we do not speak, a
#: wrong token).
_ENDS_CONNECTION = (Status.BAD_REQUEST, Status.UNSUPPORTED_VERSION, Status.UNAUTHORIZED)


class ServerConnection(_Buffered):
    """The server's side of one connection: parse each request, frame each answer.

    A legacy request can only be answered with raw bytes. Every transition
    happens here; the server asks (``send``, ``body_sent``, ``send_trailer``,
    ``send_failure``) and never sets ``state`` itself.

    Version 2 persistent connections: a request with ``keep`` is answered
    with a ``keep: N`` head, and once its answer is complete (head, the whole
    body as counted by ``body_sent``, the trailer) the state goes back to
    ``REQUEST`` for the next one; ``next_event`` then answers
    ``ConnectionClosed`` if the client ended its side. Once a challenge was
    sent, every later request (but ``PING``) is followed by its own proof
    over ``proof_subject()``.
    """

    def __init__(self, max_requests: int = MAX_KEEP_REQUESTS) -> None:
        super().__init__()
        if max_requests < 1:
            raise ValueError("a connection carries at least one request")
        self.state = ServerState.REQUEST
        self.request: Request | LegacyRequest | None = None
        #: The exact request line, what an auth MAC is computed over.
        self.request_line = b""
        #: Body bytes still to send before the trailer or the next request.
        self.body_remaining = 0
        self.max_requests = max_requests
        #: The current request's place on the connection (0: the first).
        self.sequence = -1
        #: The connection's challenge, once one was sent: proofs are due from then on.
        self.challenge: bytes | None = None
        #: The first request's dialect, once its first byte arrived (None before).
        self._first_is_legacy: bool | None = None
        self._keep = False  # the answer being sent keeps the connection
        self._trailer = False  # the answer being sent ends with a trailer

    def receive_data(self, data: bytes) -> None:
        if len(self._buffer) + len(data) > MAX_SERVER_BUFFER:
            raise ProtocolError("client sent more than the server reads ahead")
        super().receive_data(data)

    @property
    def is_extended(self) -> bool:
        """Whether the peer spoke (or started to speak) the extended dialect.

        Decided by the connection's first byte, once and for all: a legacy
        line followed by a NUL (``b"\\n\\x00"``) is a legacy peer, which must
        never be answered in the extended format (hypothesis found this one).
        """
        if self._first_is_legacy is not None:
            return not self._first_is_legacy
        return self._buffer[:1] == b"\x00"

    @property
    def version(self) -> int:
        """The version to answer in: the request's, or 1 (which every client reads)."""
        return self.request.version if isinstance(self.request, Request) else VERSION

    def proof_subject(self) -> bytes:
        """What the current request's token proof covers (with the challenge)."""
        return proof_subject(self.sequence, self.request_line)

    def next_event(
        self,
    ) -> Request | LegacyRequest | AuthProof | ConnectionClosed | _NeedData:
        if self.state is ServerState.REQUEST:
            return self._next_request()
        if self.state is ServerState.AUTH:
            line = self._take_line(MAX_REQUEST_LINE)
            if line is None:
                if self._eof:
                    raise ProtocolError("connection closed before the auth proof arrived")
                return NEED_DATA
            parsed = parse_request_line(line)
            if not isinstance(parsed, AuthProof):
                raise ProtocolError("expected AUTH after a challenge")
            self.state = ServerState.RESPOND
            return parsed
        raise ProtocolError(f"no event expected in state {self.state}")

    def _next_request(self) -> Request | LegacyRequest | ConnectionClosed | _NeedData:
        kept = self.sequence >= 0  # an earlier request kept the connection
        if not self._buffer:
            if self._eof:
                if kept:
                    self.state = ServerState.DONE
                    return ConnectionClosed()
                raise ProtocolError("connection closed before a request arrived")
            return NEED_DATA
        legacy = self._buffer[:1] != b"\x00"
        if self._first_is_legacy is None:
            self._first_is_legacy = legacy
        if legacy and kept:
            raise ProtocolError("only extended requests can follow on a kept connection")
        limit = MAX_LEGACY_LINE if legacy else MAX_REQUEST_LINE
        prefix = bytes(self._buffer[: len(MAGIC)])
        if not legacy and not MAGIC.startswith(prefix):
            raise ProtocolError("request starts with NUL but is not a getfile request")
        line = self._take_line(limit)
        if line is None:
            if self._eof:
                raise ProtocolError("connection closed in the middle of the request")
            return NEED_DATA
        self.request_line = line
        self.sequence += 1
        if legacy:
            path = line[:-1] if line.endswith(b"\r") else line
            if not path:
                raise ProtocolError("empty request")
            self.request = LegacyRequest(path)
            self.state = ServerState.RESPOND
            return self.request
        parsed = parse_request_line(line)
        if isinstance(parsed, AuthProof):
            raise ProtocolError("AUTH before any request")
        self.request = parsed
        proof_due = self.challenge is not None and parsed.verb is not Verb.PING
        self.state = ServerState.AUTH if proof_due else ServerState.RESPOND
        return parsed

    def send(self, response: Response) -> bytes:
        """Bytes of a response head, in the request's version.

        A 401 with a challenge waits for a proof; a 102 leaves the request
        open; a body (a version-2 GET with ``trailer``, or any body on a kept
        connection) expects ``body_sent`` (and then the trailer); anything
        else ends the exchange. On a ``keep`` request the head says how many
        more requests the connection takes (``response.keep`` may lower it;
        0 ends the connection after this answer).
        """
        if self.state is not ServerState.RESPOND or not isinstance(self.request, Request):
            raise ProtocolError("no extended request to respond to")
        request = self.request
        challenge = response.status is Status.UNAUTHORIZED and response.challenge is not None
        keep = None
        if request.keep and (challenge or response.status not in _ENDS_CONNECTION):
            keep = self._keep_count(response)
        if request.verb is Verb.PING and response.replace(keep=None) != pong():
            raise ProtocolError("PING is answered with pong() only")
        response = response.replace(version=request.version, keep=keep)
        if response.version < 2 and (response.trailer or response.length is not None):
            raise ProtocolError("trailers and ranges need protocol version 2")
        head = encode_response_head(response)
        if challenge:
            self.challenge = response.challenge
            self.state = ServerState.AUTH
        elif response.status is Status.PROCESSING:
            pass
        else:
            self._keep = response.keep is not None and response.keep > 0
            self._trailer = response.trailer
            framed = response.trailer or self._keep
            self.body_remaining = response.body_length if framed else 0
            if self.body_remaining:
                self.state = ServerState.BODY
            elif response.trailer:
                self.state = ServerState.TRAILER
            else:
                self._exchange_done()
        return head

    def _keep_count(self, response: Response) -> int:
        left = max(0, self.max_requests - self.sequence - 1)
        return left if response.keep is None else min(left, response.keep)

    def _exchange_done(self) -> None:
        """The answer is complete: the next request, or the end of the connection."""
        if self._keep:
            self._keep = False
            self.state = ServerState.REQUEST
        else:
            self.state = ServerState.DONE

    @property
    def keeps_going(self) -> bool:
        """Whether the last answer kept the connection and its next request is due."""
        return self.state is ServerState.REQUEST and self.sequence >= 0

    def send_failure(self, status: Status, message: str) -> bytes:
        """A refusal after ``next_event`` failed (bad request, unsupported version): then done.

        Sent in version 1 unless a request was understood: a client whose
        version we do not speak still reads version 1's 505.
        """
        if self.state is ServerState.DONE:
            raise ProtocolError("the exchange is over")
        if status is Status.OK or status is Status.PROCESSING:
            raise ProtocolError("a failure needs a failing status")
        self.state = ServerState.DONE
        return encode_response_head(Response(status, message, version=self.version))

    def body_sent(self, count: int) -> None:
        """Account for body bytes sent (by sendfile); then the trailer or the next request."""
        if self.state is not ServerState.BODY or count > self.body_remaining:
            raise ProtocolError("more body bytes than the head announced")
        self.body_remaining -= count
        if self.body_remaining == 0:
            if self._trailer:
                self.state = ServerState.TRAILER
            else:
                self._exchange_done()

    def send_hash_progress(self, hashed: int) -> bytes:
        """A sign of life in the trailer while the digest is still being computed."""
        if self.state is not ServerState.TRAILER:
            raise ProtocolError("no trailer is due")
        return encode_hash_progress(hashed)

    def send_trailer(self, trailer: Trailer) -> bytes:
        if self.state is not ServerState.TRAILER:
            raise ProtocolError("no trailer is due")
        data = encode_trailer(trailer)
        self._exchange_done()
        return data
