"""The client's state machine, h11 style: every transition of its side of a connection."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

from getfile_core.errors import ProtocolError
from getfile_core.protocol._buffered import _Buffered
from getfile_core.protocol._errors import LegacySilence, MissingTrailer, ShortBody
from getfile_core.protocol._events import (
    MAX_HEAD,
    MAX_INTERIM,
    MAX_TRAILER_LINE,
    MAX_TRAILER_LINES,
    NEED_DATA,
    VERSION,
    ConnectionClosed,
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
    encode_legacy_request,
    encode_request,
    parse_response_head,
    parse_trailer_line,
    proof_subject,
)


class ClientState(enum.StrEnum):
    HEAD = "head"  # waiting for the response head
    CHALLENGED = "challenged"  # a 401 challenge arrived; send a proof to go on
    BODY = "body"
    TRAILER = "trailer"  # version 2: the body is in; the digest follows
    END = "end"  # a kept connection: the answer is complete, its EndOfMessage is next
    IDLE = "idle"  # a kept connection with nothing asked: ``pipeline`` the next request
    DONE = "done"


#: Computes a token proof from the connection's challenge and a proof subject.
Prover = Callable[[bytes, bytes], bytes]


class ClientConnection(_Buffered):
    """The client's side: send requests, parse each head, frame each body and trailer.

    In legacy mode there is no head: everything until the close is body.
    Version 2: a head with ``trailer`` is followed, after exactly the body,
    by ``HashProgress`` events (zero or more) and one ``Trailer``.

    Persistent connections (version 2): the first request asks with ``keep``;
    once its head confirmed (``keep: N``), ``pipeline`` sends more requests
    without waiting. Their answers come in order, each ending with one
    ``EndOfMessage``; ``request`` is always the one being answered. When the
    server ends the connection, ``ConnectionClosed`` (or the last message's
    ``EndOfMessage``) comes and ``unanswered`` lists what to send again.
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
        #: The current request's place on the connection (0: the first).
        self.sequence = 0
        #: The connection's challenge, once the server sent one.
        self.challenge: bytes | None = None
        #: Requests sent after the current one, not answered yet, in order.
        self.queued: deque[Request] = deque()
        #: Requests the server still takes after the current one (its last ``keep``).
        self._allowance = 0
        self._closed = False  # the server ended the connection between two answers

    def request_bytes(self) -> bytes:
        if isinstance(self.request, LegacyRequest):
            return encode_legacy_request(self.request.path)
        return encode_request(self.request)

    def proof_subject(self) -> bytes:
        """What the current request's token proof covers (with ``challenge``)."""
        return proof_subject(self.sequence, self.request_bytes()[:-1])

    def auth_bytes(self, mac: bytes) -> bytes:
        if self.state is not ClientState.CHALLENGED:
            raise ProtocolError("no challenge to answer")
        self.state = ClientState.HEAD
        assert isinstance(self.request, Request)
        return encode_auth(mac, self.request.version)

    # ------------------------------------------------------------ pipelining

    @property
    def can_pipeline(self) -> int:
        """How many more requests this connection takes now (0: open another)."""
        last = self.queued[-1] if self.queued else self.request
        if not isinstance(last, Request) or not last.keep or self.state is ClientState.DONE:
            return 0
        return max(0, self._allowance - len(self.queued))

    def pipeline(self, request: Request, prove: Prover | None = None) -> bytes:
        """The bytes of one more request, answered after every one sent before it.

        Allowed once a head confirmed the connection is kept (so a server that
        asks for a token has sent its challenge first: then ``prove`` computes
        each request's proof and it goes right after the request).
        """
        if not self.can_pipeline:
            raise ProtocolError("this connection takes no more requests (open another)")
        if self.state is ClientState.CHALLENGED:
            raise ProtocolError("answer the challenge (auth_bytes) before sending more")
        if request.version < 2:
            raise ProtocolError("only version 2 requests can share a connection")
        sequence = self.sequence + len(self.queued) + 1
        if self.state is ClientState.IDLE:
            self._begin(request)
        else:
            self.queued.append(request)
        wire = encode_request(request)
        if self.challenge is not None and request.verb is not Verb.PING:
            if prove is None:
                raise ProtocolError("this connection needs a token proof with every request")
            mac = prove(self.challenge, proof_subject(sequence, wire[:-1]))
            wire += encode_auth(mac, request.version)
        return wire

    @property
    def unanswered(self) -> list[Request]:
        """Requests sent whose answer never began: safe to send again elsewhere."""
        began = self.response is not None or self.interim
        waiting = [self.request] if self.state is ClientState.HEAD or self._closed else []
        waiting = [] if began else waiting
        return [r for r in [*waiting, *self.queued] if isinstance(r, Request)]

    def _begin(self, request: Request) -> None:
        """The next answer is for ``request``: back to waiting for a head."""
        self.request = request
        self.sequence += 1
        self.state = ClientState.HEAD
        self.response = None
        self.body_remaining = None
        self.interim = 0
        self.trailer = None
        self._trailer_lines = 0

    def _message_done(self) -> EndOfMessage:
        """One answer is complete: the next one's head, idle, or the end of the connection."""
        kept = self.response is not None and bool(self.response.keep)
        if not kept:
            self.state = ClientState.DONE
        elif self.queued:
            self._begin(self.queued.popleft())
        else:
            self.state = ClientState.IDLE
        return EndOfMessage()

    # ------------------------------------------------------------ events

    def receive_data(self, data: bytes) -> None:
        if data:
            self.received_any = True
        super().receive_data(data)

    def next_event(
        self,
    ) -> Response | Data | HashProgress | Trailer | EndOfMessage | ConnectionClosed | _NeedData:
        if self.state is ClientState.HEAD:
            return self._next_head()
        if self.state is ClientState.BODY:
            return self._next_body()
        if self.state is ClientState.TRAILER:
            return self._next_trailer()
        if self.state is ClientState.END:
            return self._message_done()
        if self.state is ClientState.IDLE:
            if self._buffer:
                raise ProtocolError("server sent bytes nobody asked for")
            if self._eof:
                return self._closed_between_answers()
            return NEED_DATA
        if self.state is ClientState.DONE:
            if self._buffer:
                raise ProtocolError("server sent more bytes than it announced")
            return ConnectionClosed() if self._closed else EndOfMessage()
        return NEED_DATA

    def _closed_between_answers(self) -> ConnectionClosed:
        self.state = ClientState.DONE
        self._closed = True
        return ConnectionClosed()

    def _next_head(self) -> Response | ConnectionClosed | _NeedData:
        end = self._buffer.find(b"\n\n", 0, MAX_HEAD)
        if end < 0:
            if len(self._buffer) >= MAX_HEAD:
                raise ProtocolError("response head is longer than the protocol allows")
            if self._eof:
                if not self.received_any:
                    raise LegacySilence()
                if self.sequence and not self._buffer and not self.interim:
                    # A kept connection the server ended before this answer
                    # began (its idle timeout, its request quota, a stop).
                    return self._closed_between_answers()
                raise ProtocolError("connection closed in the middle of the response head")
            return NEED_DATA
        response = parse_response_head(bytes(self._buffer[:end]))
        del self._buffer[: end + 2]
        check_version(self.request, response)
        if response.status is Status.PROCESSING:
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise ProtocolError("server kept saying it is still preparing")
            return response  # still in "head": the real one follows
        check_answers_request(self.request, response)
        self._check_keep(response)
        self.response = response
        if response.status is Status.UNAUTHORIZED and response.challenge is not None:
            self.challenge = response.challenge
            self.state = ClientState.CHALLENGED
        elif response.status is Status.OK:
            self.state = ClientState.BODY
            self.body_remaining = response.body_length
        else:
            return self._answer_without_body(response)
        return response

    def _answer_without_body(self, response: Response) -> Response:
        """A refusal: on a kept connection its ``EndOfMessage`` comes next, then the next answer."""
        self.body_remaining = 0
        self.state = ClientState.END if response.keep else ClientState.DONE
        return response

    def _check_keep(self, response: Response) -> None:
        if response.keep is None:
            return
        if not isinstance(self.request, Request) or not self.request.keep:
            raise ProtocolError("server kept a connection nobody asked to keep")
        earlier = self.response.keep if self.response is not None else None
        if earlier is not None and response.keep > earlier:  # the head after a challenge's
            raise ProtocolError("server raised its request count")
        self._allowance = response.keep

    def _next_body(self) -> Data | EndOfMessage | _NeedData:
        if self._buffer and self.body_remaining != 0:
            take = len(self._buffer)
            if self.body_remaining is not None and self._framed:
                take = min(take, self.body_remaining)  # the rest is the trailer or the next answer
            # Otherwise bytes past the body are caught by consume_body.
            chunk = bytes(self._buffer[:take])
            del self._buffer[:take]
            self.consume_body(len(chunk))
            return Data(chunk)
        if self.body_remaining == 0:
            if self._trailer_due:
                self.state = ClientState.TRAILER
                return self._next_trailer()
            if self._kept:
                return self._message_done()
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

    @property
    def _kept(self) -> bool:
        """The connection goes on after this answer (so its end is framed exactly)."""
        return self.response is not None and bool(self.response.keep)

    @property
    def _framed(self) -> bool:
        return self._trailer_due or self._kept

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
                self.state = ClientState.END if self._kept else ClientState.DONE
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
        if self.body_remaining is not None and self._framed:
            take = min(take, self.body_remaining)
        chunk = bytes(self._buffer[:take])
        del self._buffer[:take]
        self.consume_body(len(chunk))
        return chunk


def check_version(request: Request | LegacyRequest, response: Response) -> None:
    """The answer is in the request's version (or an older one saying it does not speak it)."""
    asked = request.version if isinstance(request, Request) else VERSION
    if response.version == asked:
        return
    # A server that does not speak our version says so in an older one, and
    # a line it could not parse (an unknown parameter: a server older than
    # it) is refused in version 1, since it never learned the line's version.
    refusals = (Status.UNSUPPORTED_VERSION, Status.BAD_REQUEST)
    if response.status in refusals and response.version < asked:
        return
    raise ProtocolError(f"asked in protocol version {asked}, answered in {response.version}")


def check_answers_request(request: Request | LegacyRequest, response: Response) -> None:
    """An ``ok`` head fits the request: its kind, its offset and range, digest or trailer."""
    if response.status is not Status.OK or not isinstance(request, Request):
        return
    if request.verb is Verb.LIST:
        if response.entries is None:
            raise ProtocolError("listing response without an entry count")
    elif request.verb is Verb.PING:
        if response.body_length != 0:
            raise ProtocolError("a PING is answered without a body")
    elif response.entries is not None:
        raise ProtocolError("response does not answer the request that was sent")
    elif request.slice is not None:
        assert response.size is not None  # an ok head always has one
        if (response.offset, response.length) != request.slice.span(response.size):
            raise ProtocolError("server sent another range than the slice asked for")
    elif response.offset != request.offset:
        raise ProtocolError("response does not answer the request that was sent")
    elif response.length != request.length:
        raise ProtocolError("response does not send the range that was asked for")
    elif request.version >= 2 and response.trailer == (response.digest is not None):
        raise ProtocolError("a version 2 file comes with a digest or a trailer, one of them")
    if response.trailer and (request.verb is not Verb.GET or request.version < 2):
        raise ProtocolError("a trailer where none can be")
