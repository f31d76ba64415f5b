"""The getfile wire format, legacy and extended, with no I/O at all.

Modelled on h11: a connection object is fed the bytes that arrived
(``receive_data``), hands back parsed events (``next_event``), and turns
events into bytes to send (``send``). Sockets, threads and asyncio live in
the callers, so every rule of the format sits here, in one place, and can be
tested exhaustively in memory. ``docs/protocol.md`` is the prose version.

Two dialects share a port:

* **Legacy** (the book's): the client sends ``path\\n``; the server sends the
  file's bytes and closes. Nothing else: no status, no size.
* **Extended** (ours): the request line starts with a NUL byte, which no
  POSIX path can contain, so it is never mistaken for a file name, and a
  legacy server fails to open it and closes without sending anything. That
  silence is how our client recognises a legacy server.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes, unquote_to_bytes

from getfile_core.errors import ProtocolError

VERSION = 1
MAGIC = b"\x00getfile/"

#: Longest request line accepted, in bytes, newline included. A POSIX path is
#: at most 4096 bytes and percent-encoding can triple it.
MAX_REQUEST_LINE = 16 * 1024
#: Longest legacy request line (a raw path and its newline).
MAX_LEGACY_LINE = 4096 + 2
#: Longest response head (status line, headers and the blank line).
MAX_HEAD = 16 * 1024
MAX_HEADER_LINES = 64
#: Most interim ``102 processing`` heads a client accepts before the real one:
#: at one a second, an hour of server-side hashing.
MAX_INTERIM = 3600
#: Longest single name in a listing (bytes, before encoding); NAME_MAX on Linux.
MAX_NAME = 255
#: A listing page never holds more than this many entries or body bytes.
MAX_LIST_ENTRIES = 1000
MAX_LIST_BODY = 1024 * 1024

_SAFE = b"/-._~!$&'()*+,;=:@"
_TOKEN = re.compile(rb"[!-~]+")  # visible ASCII, no space


class Status(enum.IntEnum):
    """Every status an extended server can answer with; the name goes on the wire too."""

    #: Interim: the server is still preparing (hashing a file it has not
    #: hashed before). Keeps the client's head deadline from expiring on big
    #: files; the real head follows.
    PROCESSING = 102
    OK = 200
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    IS_A_DIRECTORY = 409
    NOT_A_DIRECTORY = 420
    BAD_OFFSET = 416
    SERVER_ERROR = 500
    BUSY = 503
    UNSUPPORTED_VERSION = 505

    @property
    def token(self) -> str:
        return self.name.lower().replace("_", "-")


_STATUS_BY_TOKEN = {s.token: s for s in Status}


class Verb(enum.StrEnum):
    GET = "GET"
    LIST = "LIST"


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class LegacyRequest:
    """The book's request: a raw path, answered by raw bytes and a close."""

    path: bytes


@dataclass(frozen=True)
class Request:
    """An extended request. ``path`` is raw bytes: POSIX names need not be UTF-8."""

    verb: Verb
    path: bytes
    offset: int = 0
    #: LIST only: continue after this name (the ``next`` of the previous page).
    after: bytes | None = None
    limit: int = MAX_LIST_ENTRIES
    version: int = VERSION


@dataclass(frozen=True)
class AuthProof:
    """The client's answer to a challenge: HMAC of the challenge and the request line."""

    mac: bytes


@dataclass(frozen=True)
class Response:
    """A response head. For GET the body is ``size - offset`` bytes of the file.

    For LIST the body is ``size`` bytes of listing lines (see ``encode_listing``).
    """

    status: Status
    message: str = ""
    size: int | None = None
    mtime_ns: int | None = None
    digest: str | None = None
    offset: int = 0
    #: 401 only: the nonce the client must prove knowledge of the token against.
    challenge: bytes | None = None
    #: LIST only: how many entries the body holds, and the cursor of the next page.
    entries: int | None = None
    next_after: bytes | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def body_length(self) -> int:
        """Bytes that follow the head (zero for any status but ok)."""
        if self.status is not Status.OK or self.size is None:
            return 0
        return self.size - self.offset if self.entries is None else self.size


@dataclass(frozen=True)
class Data:
    data: bytes


@dataclass(frozen=True)
class EndOfMessage:
    """The body is complete (extended: all announced bytes; legacy: the server closed)."""


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()

Event = LegacyRequest | Request | AuthProof | Response | Data | EndOfMessage


# ---------------------------------------------------------------- encoding


def encode_path(path: bytes) -> bytes:
    """Percent-encode a raw path so it is visible ASCII with no spaces."""
    return quote_from_bytes(path, safe=_SAFE).encode("ascii")


def decode_path(token: bytes) -> bytes:
    if not _TOKEN.fullmatch(token):
        raise ProtocolError("path is not percent-encoded visible ASCII")
    if re.search(rb"%(?![0-9A-Fa-f]{2})", token):
        raise ProtocolError("malformed percent escape in path")
    return unquote_to_bytes(token)


def encode_request(request: Request) -> bytes:
    parts = [MAGIC + str(request.version).encode(), request.verb.value.encode()]
    parts.append(encode_path(request.path))
    if request.verb is Verb.GET and request.offset:
        parts.append(b"offset=%d" % request.offset)
    if request.verb is Verb.LIST:
        if request.after is not None:
            parts.append(b"after=" + encode_path(request.after))
        if request.limit != MAX_LIST_ENTRIES:
            parts.append(b"limit=%d" % request.limit)
    line = b" ".join(parts) + b"\n"
    if len(line) > MAX_REQUEST_LINE:
        raise ProtocolError("request is longer than the protocol allows")
    return line


def encode_legacy_request(path: bytes) -> bytes:
    if b"\n" in path or b"\x00" in path:
        raise ProtocolError("a legacy request path cannot contain a newline or NUL")
    return path + b"\n"


def encode_auth(mac: bytes) -> bytes:
    return MAGIC + str(VERSION).encode() + b" AUTH " + mac.hex().encode() + b"\n"


def _header_value(value: str) -> str:
    # Messages are for people; keep them on one line and free of control bytes.
    return "".join(ch if ch.isprintable() else " " for ch in value)[:1024]


def encode_response_head(response: Response) -> bytes:
    status = response.status
    lines = [f"getfile/{VERSION} {int(status)} {status.token}"]
    if response.message:
        lines.append(f"message: {_header_value(response.message)}")
    if response.size is not None:
        lines.append(f"size: {response.size}")
    if response.mtime_ns is not None:
        sec, ns = divmod(response.mtime_ns, 1_000_000_000)
        lines.append(f"mtime: {sec}.{ns:09d}")
    if response.digest is not None:
        lines.append(f"digest: {response.digest}")
    if response.offset:
        lines.append(f"offset: {response.offset}")
    if response.challenge is not None:
        lines.append(f"challenge: {response.challenge.hex()}")
    if response.entries is not None:
        lines.append(f"entries: {response.entries}")
    if response.next_after is not None:
        lines.append(f"next: {encode_path(response.next_after).decode('ascii')}")
    for key, value in response.extra.items():
        lines.append(f"{key}: {_header_value(value)}")
    head = ("\n".join(lines) + "\n\n").encode("utf-8")
    if len(head) > MAX_HEAD:
        raise ProtocolError("response head is longer than the protocol allows")
    return head


# ---------------------------------------------------------------- parsing


def _parse_int(value: bytes | str, what: str, maximum: int = 2**63 - 1) -> int:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ProtocolError(f"{what} is not a non-negative integer")
    number = int(text)
    if number > maximum:
        raise ProtocolError(f"{what} is too large")
    return number


def parse_request_line(line: bytes) -> Request | AuthProof:
    """Parse one extended line (magic included, newline excluded)."""
    if not line.startswith(MAGIC):
        raise ProtocolError("not a getfile request")
    words = line[len(MAGIC) :].split(b" ")
    version = _parse_int(words[0], "protocol version", 1000)
    if version < 1:
        raise ProtocolError("protocol version must be 1 or more")
    if version != VERSION:
        raise UnsupportedVersion(version)
    if len(words) < 2:
        raise ProtocolError("request has no verb")
    verb = words[1]
    if verb == b"AUTH":
        if len(words) != 3 or not re.fullmatch(rb"[0-9a-f]{64}", words[2]):
            raise ProtocolError("AUTH takes one 64-digit lowercase hex MAC")
        return AuthProof(bytes.fromhex(words[2].decode("ascii")))
    if verb not in (b"GET", b"LIST"):
        raise ProtocolError(f"unknown verb {verb[:16]!r}")
    if len(words) < 3:
        raise ProtocolError("request has no path")
    path = decode_path(words[2])
    params: dict[bytes, bytes] = {}
    for word in words[3:]:
        key, sep, value = word.partition(b"=")
        if not sep or key in params:
            raise ProtocolError("malformed or repeated request parameter")
        params[key] = value
    if verb == b"GET":
        unknown = set(params) - {b"offset"}
        if unknown:
            raise ProtocolError("unknown GET parameter")
        offset = _parse_int(params[b"offset"], "offset") if b"offset" in params else 0
        return Request(Verb.GET, path, offset=offset)
    unknown = set(params) - {b"after", b"limit"}
    if unknown:
        raise ProtocolError("unknown LIST parameter")
    after = decode_path(params[b"after"]) if b"after" in params else None
    limit = MAX_LIST_ENTRIES
    if b"limit" in params:
        limit = _parse_int(params[b"limit"], "limit", MAX_LIST_ENTRIES)
        if limit < 1:
            raise ProtocolError("limit must be at least 1")
    return Request(Verb.LIST, path, after=after, limit=limit)


class UnsupportedVersion(ProtocolError):
    """A client speaks a newer protocol; the server answers 505 and closes."""

    def __init__(self, version: int) -> None:
        super().__init__(f"protocol version {version} is not supported (this server speaks 1)")
        self.version = version


def parse_response_head(head: bytes) -> Response:
    """Parse a complete head: status line and headers, without the blank line."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("response head is not UTF-8") from None
    lines = text.split("\n")
    if len(lines) > MAX_HEADER_LINES:
        raise ProtocolError("response head has too many lines")
    match = re.fullmatch(r"getfile/(\d{1,4}) (\d{3}) ([a-z-]{1,32})", lines[0])
    if not match:
        raise ProtocolError("malformed status line")
    if int(match[1]) != VERSION:
        raise ProtocolError(f"server answered with protocol version {match[1]}")
    try:
        status = Status(int(match[2]))
    except ValueError:
        raise ProtocolError(f"unknown status {match[2]}") from None
    if _STATUS_BY_TOKEN.get(match[3]) is not status:
        raise ProtocolError("status code and name disagree")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(": ")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", key) or key in headers:
            raise ProtocolError("malformed or repeated header line")
        if not value.isprintable():
            raise ProtocolError("header value has control characters")
        headers[key] = value
    return _response_from_headers(status, headers)


def _parse_mtime(value: str) -> int:
    sec, dot, frac = value.partition(".")
    if not dot or len(frac) != 9:
        raise ProtocolError("mtime must be seconds.nanoseconds")
    return _parse_int(sec, "mtime") * 1_000_000_000 + _parse_int(frac, "mtime")


def _response_from_headers(status: Status, headers: dict[str, str]) -> Response:
    known = {"message", "size", "mtime", "digest", "offset", "challenge", "entries", "next"}
    size = _parse_int(headers["size"], "size") if "size" in headers else None
    offset = _parse_int(headers["offset"], "offset") if "offset" in headers else 0
    digest = headers.get("digest")
    if digest is not None and not re.fullmatch(r"[a-z0-9-]{1,16}:[0-9a-f]{16,128}", digest):
        raise ProtocolError("malformed digest")
    challenge = None
    if "challenge" in headers:
        if not re.fullmatch(r"[0-9a-f]{64}", headers["challenge"]):
            raise ProtocolError("malformed challenge")
        challenge = bytes.fromhex(headers["challenge"])
    entries = None
    if "entries" in headers:
        entries = _parse_int(headers["entries"], "entries", MAX_LIST_ENTRIES)
    next_after = None
    if "next" in headers:
        next_after = decode_path(headers["next"].encode("ascii", "replace"))
    if status is Status.OK:
        if size is None:
            raise ProtocolError("ok response without a size")
        if entries is None and offset > size:
            raise ProtocolError("offset beyond the announced size")
        if entries is not None and size > MAX_LIST_BODY:
            raise ProtocolError("listing body is larger than the protocol allows")
    return Response(
        status=status,
        message=headers.get("message", ""),
        size=size,
        mtime_ns=_parse_mtime(headers["mtime"]) if "mtime" in headers else None,
        digest=digest,
        offset=offset,
        challenge=challenge,
        entries=entries,
        next_after=next_after,
        extra={k: v for k, v in headers.items() if k not in known},
    )


# ---------------------------------------------------------------- listings


@dataclass(frozen=True)
class Entry:
    """One line of a listing. ``name`` is raw bytes, exactly as on the server's disk."""

    name: bytes
    kind: str  # "file", "dir" or "other"
    size: int
    mtime_ns: int


ENTRY_KINDS = ("file", "dir", "other")


def encode_listing(entries: list[Entry]) -> bytes:
    return b"".join(
        b"%s %d %d %s\n" % (e.kind.encode(), e.size, e.mtime_ns, encode_path(e.name))
        for e in entries
    )


def decode_listing(body: bytes, expected: int) -> list[Entry]:
    """Parse a listing body; every name is checked, since the server may lie."""
    lines = body.split(b"\n")
    if lines[-1] != b"":
        raise ProtocolError("listing does not end with a newline")
    lines.pop()
    if len(lines) != expected:
        raise ProtocolError("listing has a different number of entries than announced")
    entries = []
    for line in lines:
        words = line.split(b" ")
        if len(words) != 4 or words[0].decode("ascii", "replace") not in ENTRY_KINDS:
            raise ProtocolError("malformed listing line")
        name = decode_path(words[3])
        if not name or b"/" in name or b"\x00" in name or name in (b".", b".."):
            raise ProtocolError("listing holds a name that is not a plain file name")
        if len(name) > MAX_NAME:
            raise ProtocolError("listing holds a name longer than 255 bytes")
        entries.append(
            Entry(
                name=name,
                kind=words[0].decode("ascii"),
                size=_parse_int(words[1], "entry size"),
                mtime_ns=_parse_int(words[2], "entry mtime"),
            )
        )
    return entries


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


class ServerConnection(_Buffered):
    """The server's side of one connection: parse the request, frame the answer.

    States: ``request`` (waiting for the line), ``auth`` (a challenge was
    sent, waiting for the proof), ``respond`` (a request is in hand),
    ``done``. A legacy request can only be answered with raw bytes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.state = "request"
        self.request: Request | LegacyRequest | None = None
        #: The exact request line, what an auth MAC is computed over.
        self.request_line = b""

    @property
    def is_extended(self) -> bool:
        """Whether the peer spoke (or started to speak) the extended dialect."""
        return self.request_line.startswith(b"\x00") or self._buffer[:1] == b"\x00"

    def next_event(self) -> Request | LegacyRequest | AuthProof | _NeedData:
        if self.state == "request":
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
                self.state = "respond"
                return self.request
            parsed = parse_request_line(line)
            if isinstance(parsed, AuthProof):
                raise ProtocolError("AUTH before any request")
            self.request = parsed
            self.state = "respond"
            return parsed
        if self.state == "auth":
            line = self._take_line(MAX_REQUEST_LINE)
            if line is None:
                if self._eof:
                    raise ProtocolError("connection closed before the auth proof arrived")
                return NEED_DATA
            parsed = parse_request_line(line)
            if not isinstance(parsed, AuthProof):
                raise ProtocolError("expected AUTH after a challenge")
            self.state = "respond"
            return parsed
        raise ProtocolError(f"no event expected in state {self.state}")

    def send(self, response: Response) -> bytes:
        """Bytes of a response head; a 401 with a challenge waits for a proof."""
        if self.state != "respond" or not isinstance(self.request, Request):
            raise ProtocolError("no extended request to respond to")
        if response.status is Status.UNAUTHORIZED and response.challenge is not None:
            self.state = "auth"
        elif response.status is not Status.PROCESSING:
            self.state = "done"
        return encode_response_head(response)


class ClientConnection(_Buffered):
    """The client's side: send one request, parse the head, frame the body.

    States: ``head`` (waiting for the response head), ``challenged`` (a
    401 challenge arrived; send a proof to go on), ``body``, ``done``. In
    legacy mode there is no head: everything until the close is body.
    """

    def __init__(self, request: Request | LegacyRequest) -> None:
        super().__init__()
        self.request = request
        self.legacy = isinstance(request, LegacyRequest)
        self.state = "body" if self.legacy else "head"
        self.response: Response | None = None
        self.body_remaining: int | None = None  # None: until close (legacy)
        self.interim = 0
        self.received_any = False

    def request_bytes(self) -> bytes:
        if isinstance(self.request, LegacyRequest):
            return encode_legacy_request(self.request.path)
        return encode_request(self.request)

    def auth_bytes(self, mac: bytes) -> bytes:
        if self.state != "challenged":
            raise ProtocolError("no challenge to answer")
        self.state = "head"
        return encode_auth(mac)

    def receive_data(self, data: bytes) -> None:
        if data:
            self.received_any = True
        super().receive_data(data)

    def next_event(self) -> Response | Data | EndOfMessage | _NeedData:
        if self.state == "head":
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
            if response.status is Status.PROCESSING:
                self.interim += 1
                if self.interim > MAX_INTERIM:
                    raise ProtocolError("server kept saying it is still preparing")
                return response  # still in "head": the real one follows
            self._check_answers_request(response)
            self.response = response
            if response.status is Status.UNAUTHORIZED and response.challenge is not None:
                self.state = "challenged"
            elif response.status is Status.OK:
                self.state = "body"
                self.body_remaining = response.body_length
            else:
                self.state = "done"
            return response
        if self.state == "body":
            if self._buffer:
                chunk = bytes(self._buffer)
                self._buffer.clear()
                self.consume_body(len(chunk))
                return Data(chunk)
            if self.body_remaining == 0:
                self.state = "done"
                return EndOfMessage()
            if self._eof:
                if self.body_remaining is None:
                    self.state = "done"
                    return EndOfMessage()
                raise ShortBody(self.body_remaining)
            return NEED_DATA
        if self.state == "done":
            if self._buffer:
                raise ProtocolError("server sent more bytes than it announced")
            return EndOfMessage()
        return NEED_DATA

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
        """Hand over body bytes that arrived together with the head."""
        if self.state != "body":
            return b""
        chunk = bytes(self._buffer)
        self._buffer.clear()
        self.consume_body(len(chunk))
        return chunk

    def _check_answers_request(self, response: Response) -> None:
        request = self.request
        if response.status is not Status.OK or not isinstance(request, Request):
            return
        if request.verb is Verb.LIST:
            if response.entries is None:
                raise ProtocolError("listing response without an entry count")
        elif response.entries is not None or response.offset != request.offset:
            raise ProtocolError("response does not answer the request that was sent")


class LegacySilence(ProtocolError):
    """The server closed without a byte: the book's server failing on our request."""

    def __init__(self) -> None:
        super().__init__("server closed without answering (a legacy getfile server?)")


class ShortBody(ProtocolError):
    """The connection ended before all announced bytes arrived."""

    def __init__(self, missing: int) -> None:
        super().__init__(f"connection closed with {missing} bytes still to come")
        self.missing = missing
