"""The two state machines, h11 style: every transition of a connection lives here."""

from __future__ import annotations

import dataclasses
import enum

from getfile_core.errors import ProtocolError
from getfile_core.protocol._errors import LegacySilence, MissingTrailer, ShortBody
from getfile_core.protocol._events import (
    MAGIC,
    MAX_HEAD,
    MAX_INTERIM,
    MAX_LEGACY_LINE,
    MAX_REQUEST_LINE,
    MAX_TRAILER_LINE,
    MAX_TRAILER_LINES,
    NEED_DATA,
    VERSION,
    AuthProof,
    Data,
    EndOfMessage,
    HashProgress,
    LegacyRequest,
    Request,
    Response,
    Status,
    Trailer,
    Verb,
    _NeedData,
)
from getfile_core.protocol._wire import (
    encode_auth,
    encode_hash_progress,
    encode_legacy_request,
    encode_request,
    encode_response_head,
    encode_trailer,
    parse_request_line,
    parse_response_head,
    parse_trailer_line,
    pong,
)

# ---------------------------------------------------------------- state machines


class _Buffered:
    """Shared input buffering with a hard cap, so a peer cannot make us hoard bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False

    def receive_data(self, data: bytes) -> None:
        """Feed bytes that arrived; ``b""`` means the peer closed its side."""
        if self._eof and data:
            raise ProtocolError("data after end of stream")
        if data:
            self._buffer += data
        else:
            self._eof = True

    def _take_line(self, limit: int) -> bytes | None:
        index = self._buffer.find(b"\n", 0, limit)
        if index < 0:
            if len(self._buffer) >= limit:
                raise ProtocolError("line is longer than the protocol allows")
            return None
        line = bytes(self._buffer[:index])
        del self._buffer[: index + 1]
        return line


class ServerState(enum.StrEnum):
    """Where the server's side of a connection is; each method below says which it needs."""

    REQUEST = "request"  # waiting for the request line
    AUTH = "auth"  # a challenge was sent; waiting for the proof
    RESPOND = "respond"  # a request is in hand: answer it
    BODY = "body"  # version 2: the body is being sent, a trailer follows it
    TRAILER = "trailer"  # version 2: the body is out; progress lines, then the trailer
    DONE = "done"


class ServerConnection(_Buffered):
    """The server's side of one connection: parse the request, frame the answer.

    A legacy request can only be answered with raw bytes. Every transition
    happens here; the server asks (``send``, ``body_sent``, ``send_trailer``,
    ``send_failure``) and never sets ``state`` itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.state = ServerState.REQUEST
        self.request: Request | LegacyRequest | None = None
        #: The exact request line, what an auth MAC is computed over.
        self.request_line = b""
        #: Version 2 with a trailer: body bytes still to send before it.
        self.body_remaining = 0

    @property
    def is_extended(self) -> bool:
        """Whether the peer spoke (or started to speak) the extended dialect."""
        return self.request_line.startswith(b"\x00") or self._buffer[:1] == b"\x00"

    @property
    def version(self) -> int:
        """The version to answer in: the request's, or 1 (which every client reads)."""
        return self.request.version if isinstance(self.request, Request) else VERSION

    def next_event(self) -> Request | LegacyRequest | AuthProof | _NeedData:
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

    def _next_request(self) -> Request | LegacyRequest | _NeedData:
        if not self._buffer:
            if self._eof:
                raise ProtocolError("connection closed before a request arrived")
            return NEED_DATA
        legacy = self._buffer[:1] != b"\x00"
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
        self.state = ServerState.RESPOND
        return parsed

    def send(self, response: Response) -> bytes:
        """Bytes of a response head, in the request's version.

        A 401 with a challenge waits for a proof; a 102 leaves the request
        open; a version-2 GET ``ok`` with ``trailer`` expects the body
        (``body_sent``) and then the trailer; anything else ends the exchange.
        """
        if self.state is not ServerState.RESPOND or not isinstance(self.request, Request):
            raise ProtocolError("no extended request to respond to")
        request = self.request
        response = dataclasses.replace(response, version=request.version)
        if response.version < 2 and (response.trailer or response.length is not None):
            raise ProtocolError("trailers and ranges need protocol version 2")
        if request.verb is Verb.PING and response != pong():
            raise ProtocolError("PING is answered with pong() only")
        head = encode_response_head(response)
        if response.status is Status.UNAUTHORIZED and response.challenge is not None:
            self.state = ServerState.AUTH
        elif response.status is Status.PROCESSING:
            pass
        elif response.status is Status.OK and response.trailer:
            self.body_remaining = response.body_length
            self.state = ServerState.BODY if self.body_remaining else ServerState.TRAILER
        else:
            self.state = ServerState.DONE
        return head

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
        """Account for body bytes sent (by sendfile); at the end, the trailer is due."""
        if self.state is not ServerState.BODY or count > self.body_remaining:
            raise ProtocolError("more body bytes than the head announced")
        self.body_remaining -= count
        if self.body_remaining == 0:
            self.state = ServerState.TRAILER

    def send_hash_progress(self, hashed: int) -> bytes:
        """A sign of life in the trailer while the digest is still being computed."""
        if self.state is not ServerState.TRAILER:
            raise ProtocolError("no trailer is due")
        return encode_hash_progress(hashed)

    def send_trailer(self, trailer: Trailer) -> bytes:
        if self.state is not ServerState.TRAILER:
            raise ProtocolError("no trailer is due")
        data = encode_trailer(trailer)
        self.state = ServerState.DONE
        return data


class ClientState(enum.StrEnum):
    HEAD = "head"  # waiting for the response head
    CHALLENGED = "challenged"  # a 401 challenge arrived; send a proof to go on
    BODY = "body"
    TRAILER = "trailer"  # version 2: the body is in; the digest follows
    DONE = "done"


class ClientConnection(_Buffered):
    """The client's side: send one request, parse the head, frame the body and trailer.

    In legacy mode there is no head: everything until the close is body.
    Version 2: a head with ``trailer`` is followed, after exactly the body,
    by ``HashProgress`` events (zero or more) and one ``Trailer``.
    """

    def __init__(self, request: Request | LegacyRequest) -> None:
        super().__init__()
        self.request = request
        self.legacy = isinstance(request, LegacyRequest)
        self.state = ClientState.BODY if self.legacy else ClientState.HEAD
        self.response: Response | None = None
        self.body_remaining: int | None = None  # None: until close (legacy)
        self.interim = 0
        self.received_any = False
        self.trailer: Trailer | None = None
        self._trailer_lines = 0

    def request_bytes(self) -> bytes:
        if isinstance(self.request, LegacyRequest):
            return encode_legacy_request(self.request.path)
        return encode_request(self.request)

    def auth_bytes(self, mac: bytes) -> bytes:
        if self.state is not ClientState.CHALLENGED:
            raise ProtocolError("no challenge to answer")
        self.state = ClientState.HEAD
        assert isinstance(self.request, Request)
        return encode_auth(mac, self.request.version)

    def receive_data(self, data: bytes) -> None:
        if data:
            self.received_any = True
        super().receive_data(data)

    def next_event(self) -> Response | Data | HashProgress | Trailer | EndOfMessage | _NeedData:
        if self.state is ClientState.HEAD:
            return self._next_head()
        if self.state is ClientState.BODY:
            return self._next_body()
        if self.state is ClientState.TRAILER:
            return self._next_trailer()
        if self.state is ClientState.DONE:
            if self._buffer:
                raise ProtocolError("server sent more bytes than it announced")
            return EndOfMessage()
        return NEED_DATA

    def _next_head(self) -> Response | _NeedData:
        end = self._buffer.find(b"\n\n", 0, MAX_HEAD)
        if end < 0:
            if len(self._buffer) >= MAX_HEAD:
                raise ProtocolError("response head is longer than the protocol allows")
            if self._eof:
                if not self.received_any:
                    raise LegacySilence()
                raise ProtocolError("connection closed in the middle of the response head")
            return NEED_DATA
        response = parse_response_head(bytes(self._buffer[:end]))
        del self._buffer[: end + 2]
        self._check_version(response)
        if response.status is Status.PROCESSING:
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise ProtocolError("server kept saying it is still preparing")
            return response  # still in "head": the real one follows
        self._check_answers_request(response)
        self.response = response
        if response.status is Status.UNAUTHORIZED and response.challenge is not None:
            self.state = ClientState.CHALLENGED
        elif response.status is Status.OK:
            self.state = ClientState.BODY
            self.body_remaining = response.body_length
        else:
            self.state = ClientState.DONE
        return response

    def _next_body(self) -> Data | EndOfMessage | _NeedData:
        if self._buffer and self.body_remaining != 0:
            take = len(self._buffer)
            if self.body_remaining is not None and self._trailer_due:
                take = min(take, self.body_remaining)  # the rest is the trailer
            # Without a trailer, bytes past the body are caught by consume_body.
            chunk = bytes(self._buffer[:take])
            del self._buffer[:take]
            self.consume_body(len(chunk))
            return Data(chunk)
        if self.body_remaining == 0:
            if self._trailer_due:
                self.state = ClientState.TRAILER
                return self._next_trailer()
            self.state = ClientState.DONE
            return self.next_event()  # type: ignore[return-value]
        if self._eof:
            if self.body_remaining is None:
                self.state = ClientState.DONE
                return EndOfMessage()
            raise ShortBody(self.body_remaining)
        return NEED_DATA

    @property
    def _trailer_due(self) -> bool:
        return self.response is not None and self.response.trailer

    def _next_trailer(self) -> HashProgress | Trailer | EndOfMessage | _NeedData:
        while True:
            line = self._take_line(MAX_TRAILER_LINE)
            if line is None:
                if self._eof:
                    raise MissingTrailer()
                return NEED_DATA
            self._trailer_lines += 1
            if self._trailer_lines > MAX_TRAILER_LINES:
                raise ProtocolError("trailer has too many lines")
            if not line:
                if self.trailer is None:
                    raise ProtocolError("trailer ended without a digest or an error")
                self.state = ClientState.DONE
                return self.trailer
            if self.trailer is not None:
                raise ProtocolError("trailer goes on after its last line")
            parsed = parse_trailer_line(line)
            if isinstance(parsed, HashProgress):
                return parsed
            if isinstance(parsed, Trailer):
                self.trailer = parsed

    def consume_body(self, count: int) -> None:
        """Account for body bytes read outside ``receive_data`` (zero-copy paths)."""
        if count:
            self.received_any = True
        if self.body_remaining is None:
            return
        if count > self.body_remaining:
            raise ProtocolError("server sent more bytes than it announced")
        self.body_remaining -= count

    def take_buffered(self) -> bytes:
        """Hand over body bytes that arrived together with the head (never the trailer)."""
        if self.state is not ClientState.BODY:
            return b""
        take = len(self._buffer)
        if self.body_remaining is not None and self._trailer_due:
            take = min(take, self.body_remaining)
        chunk = bytes(self._buffer[:take])
        del self._buffer[:take]
        self.consume_body(len(chunk))
        return chunk

    def _check_version(self, response: Response) -> None:
        asked = self.request.version if isinstance(self.request, Request) else VERSION
        if response.version == asked:
            return
        # A server that does not speak our version says so in an older one.
        if response.status is Status.UNSUPPORTED_VERSION and response.version < asked:
            return
        raise ProtocolError(f"asked in protocol version {asked}, answered in {response.version}")

    def _check_answers_request(self, response: Response) -> None:
        request = self.request
        if response.status is not Status.OK or not isinstance(request, Request):
            return
        if request.verb is Verb.LIST:
            if response.entries is None:
                raise ProtocolError("listing response without an entry count")
        elif request.verb is Verb.PING:
            if response.body_length != 0:
                raise ProtocolError("a PING is answered without a body")
        elif response.entries is not None or response.offset != request.offset:
            raise ProtocolError("response does not answer the request that was sent")
        elif response.length != request.length:
            raise ProtocolError("response does not send the range that was asked for")
        elif request.version >= 2 and response.trailer == (response.digest is not None):
            raise ProtocolError("a version 2 file comes with a digest or a trailer, one of them")
        if response.trailer and (request.verb is not Verb.GET or request.version < 2):
            raise ProtocolError("a trailer where none can be")
