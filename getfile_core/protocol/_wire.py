"""Bytes to events and back: request lines, response heads, trailers and listings."""

from __future__ import annotations

import re
from urllib.parse import quote_from_bytes, unquote_to_bytes

from getfile_core.errors import ProtocolError
from getfile_core.protocol._errors import UnsupportedVersion
from getfile_core.protocol._events import (
    _STATUS_BY_TOKEN,
    ENTRY_KINDS,
    LATEST,
    MAGIC,
    MAX_HEAD,
    MAX_HEADER_LINES,
    MAX_LIST_BODY,
    MAX_LIST_ENTRIES,
    MAX_NAME,
    MAX_REQUEST_LINE,
    SUPPORTED,
    VERSION,
    AuthProof,
    Entry,
    HashProgress,
    Request,
    Response,
    Status,
    Trailer,
    Verb,
)
from getfile_core.protocol._slices import parse_slice

_SAFE = b"/-._~!$&'()*+,;=:@"
_TOKEN = re.compile(rb"[!-~]+")  # visible ASCII, no space

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
    if request.version not in SUPPORTED:
        raise ProtocolError(f"protocol version {request.version} is not supported")
    parts = [MAGIC + str(request.version).encode(), request.verb.value.encode()]
    if request.keep and request.version < 2:
        raise ProtocolError("a persistent connection (keep) needs protocol version 2")
    if request.verb is Verb.PING:
        if request.version < 2:
            raise ProtocolError("PING needs protocol version 2")
        return b" ".join([*parts, *([b"keep=1"] if request.keep else [])]) + b"\n"
    parts.append(encode_path(request.path))
    if request.verb is Verb.GET and request.offset:
        parts.append(b"offset=%d" % request.offset)
    if request.length is not None:
        if request.verb is not Verb.GET or request.version < 2:
            raise ProtocolError("a byte range (length) needs a version 2 GET")
        parts.append(b"length=%d" % request.length)
    if request.slice is not None:
        if request.verb is not Verb.GET or request.version < 2:
            raise ProtocolError("a slice needs a version 2 GET")
        if request.offset or request.length is not None:
            raise ProtocolError("a slice is asked instead of offset and length, not with them")
        parts += request.slice.words()
    if request.verb is Verb.LIST:
        if request.after is not None:
            parts.append(b"after=" + encode_path(request.after))
        if request.limit != MAX_LIST_ENTRIES:
            parts.append(b"limit=%d" % request.limit)
    if request.keep:
        parts.append(b"keep=1")
    line = b" ".join(parts) + b"\n"
    if len(line) > MAX_REQUEST_LINE:
        raise ProtocolError("request is longer than the protocol allows")
    return line


def encode_legacy_request(path: bytes) -> bytes:
    if b"\n" in path or b"\x00" in path:
        raise ProtocolError("a legacy request path cannot contain a newline or NUL")
    return path + b"\n"


def encode_auth(mac: bytes, version: int = VERSION) -> bytes:
    return MAGIC + str(version).encode() + b" AUTH " + mac.hex().encode() + b"\n"


def proof_subject(sequence: int, request_line: bytes) -> bytes:
    """What a token proof covers, with the connection's challenge: the request and its place.

    The first request of a connection (``sequence`` 0) is proved over its
    line alone, exactly as in version 1. Every later request on a persistent
    connection is proved over ``sequence NUL line``: a proof cannot be
    replayed for another request, nor for the same request at another place
    on the connection, nor on another connection (whose challenge differs).
    A request line starts with NUL and a sequence with a digit, so the two
    forms never collide.
    """
    if sequence < 0:
        raise ProtocolError("a request's place on its connection is never negative")
    if sequence == 0:
        return request_line
    return b"%d\x00" % sequence + request_line


def _header_value(value: str) -> str:
    # Messages are for people; keep them on one line and free of control bytes.
    return "".join(ch if ch.isprintable() else " " for ch in value)[:1024]


def encode_response_head(response: Response) -> bytes:
    status = response.status
    if response.version not in SUPPORTED:
        raise ProtocolError(f"protocol version {response.version} is not supported")
    lines = [f"getfile/{response.version} {int(status)} {status.token}"]
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
    if response.length is not None:
        lines.append(f"length: {response.length}")
    if response.trailer:
        lines.append("trailer: digest")
    if response.hashed is not None:
        lines.append(f"hashed: {response.hashed}")
    if response.keep is not None:
        if response.version < 2:
            raise ProtocolError("a persistent connection (keep) needs protocol version 2")
        lines.append(f"keep: {response.keep}")
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
    if version not in SUPPORTED:
        raise UnsupportedVersion(version)
    if len(words) < 2:
        raise ProtocolError("request has no verb")
    verb = words[1]
    if verb == b"AUTH":
        if len(words) != 3 or not re.fullmatch(rb"[0-9a-f]{64}", words[2]):
            raise ProtocolError("AUTH takes one 64-digit lowercase hex MAC")
        return AuthProof(bytes.fromhex(words[2].decode("ascii")))
    if verb == b"PING" and version >= 2:
        if len(words) == 3 and words[2] == b"keep=1":
            return Request(Verb.PING, b"", version=version, keep=True)
        if len(words) != 2:
            raise ProtocolError("PING takes nothing but keep=1")
        return Request(Verb.PING, b"", version=version)
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
    keep = False
    if b"keep" in params and version >= 2:
        if params.pop(b"keep") != b"1":
            raise ProtocolError("keep takes the value 1")
        keep = True
    if verb == b"GET":
        return _get_request(path, params, version, keep)
    unknown = set(params) - {b"after", b"limit"}
    if unknown:
        raise ProtocolError("unknown LIST parameter")
    after = decode_path(params[b"after"]) if b"after" in params else None
    limit = MAX_LIST_ENTRIES
    if b"limit" in params:
        limit = _parse_int(params[b"limit"], "limit", MAX_LIST_ENTRIES)
        if limit < 1:
            raise ProtocolError("limit must be at least 1")
    return Request(Verb.LIST, path, after=after, limit=limit, version=version, keep=keep)


_GET_PARAMS = {1: {b"offset"}, 2: {b"offset", b"length", b"slice", b"floor"}}


def _get_request(path: bytes, params: dict[bytes, bytes], version: int, keep: bool) -> Request:
    if set(params) - _GET_PARAMS[version]:
        raise ProtocolError("unknown GET parameter")
    offset = _parse_int(params[b"offset"], "offset") if b"offset" in params else 0
    length = _parse_int(params[b"length"], "length") if b"length" in params else None
    piece = None
    if b"slice" in params:
        if b"offset" in params or length is not None:
            raise ProtocolError("slice is asked instead of offset and length, not with them")
        piece = parse_slice(params[b"slice"], params.get(b"floor"))
    elif b"floor" in params:
        raise ProtocolError("floor goes with slice only")
    return Request(
        Verb.GET, path, offset=offset, version=version, length=length, keep=keep, slice=piece
    )


def parse_response_head(head: bytes) -> Response:
    """Parse a complete head: status line and headers, without the blank line."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("response head is not UTF-8") from None
    lines = text.split("\n")
    if len(lines) > MAX_HEADER_LINES:
        raise ProtocolError("response head has too many lines")
    # [0-9], not \d: \d also matches other scripts' digits, which int() accepts.
    match = re.fullmatch(r"getfile/([0-9]{1,4}) ([0-9]{3}) ([a-z-]{1,32})", lines[0])
    if not match:
        raise ProtocolError("malformed status line")
    version = int(match[1])
    if version not in SUPPORTED:
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
    return _response_from_headers(status, headers, version)


def _parse_mtime(value: str) -> int:
    sec, dot, frac = value.partition(".")
    if not dot or len(frac) != 9:
        raise ProtocolError("mtime must be seconds.nanoseconds")
    return _parse_int(sec, "mtime") * 1_000_000_000 + _parse_int(frac, "mtime")


def _response_from_headers(status: Status, headers: dict[str, str], version: int) -> Response:
    known = {"message", "size", "mtime", "digest", "offset", "challenge", "entries", "next"}
    known |= {"length", "trailer", "hashed", "keep"}
    size = _parse_int(headers["size"], "size") if "size" in headers else None
    offset = _parse_int(headers["offset"], "offset") if "offset" in headers else 0
    length = _parse_int(headers["length"], "length") if "length" in headers else None
    hashed = _parse_int(headers["hashed"], "hashed") if "hashed" in headers else None
    keep = _parse_int(headers["keep"], "keep") if "keep" in headers else None
    digest = headers.get("digest")
    if digest is not None:
        _check_digest(digest)
    trailer = headers.get("trailer")
    if trailer is not None and trailer != "digest":
        raise ProtocolError("unknown trailer")
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
        if length is not None and (entries is not None or offset + length > size):
            raise ProtocolError("range beyond the announced size")
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
        length=length,
        trailer=trailer is not None,
        hashed=hashed,
        keep=keep,
        version=version,
    )


def _check_digest(digest: str) -> None:
    if not re.fullmatch(r"[a-z0-9-]{1,16}:[0-9a-f]{16,128}", digest):
        raise ProtocolError("malformed digest")


def pong() -> Response:
    """The answer to ``PING``: always ``getfile/2 200 ok``, ``size: 0``, nothing else."""
    return Response(Status.OK, size=0, version=LATEST)


# ---------------------------------------------------------------- trailers (version 2)


def encode_hash_progress(hashed: int) -> bytes:
    return b"hashed: %d\n" % hashed


def encode_trailer(trailer: Trailer) -> bytes:
    """The trailer's last line and the blank line: ``digest: …`` or ``error: …``."""
    if (trailer.digest is None) == (not trailer.error):
        raise ProtocolError("a trailer carries a digest or an error, not both or neither")
    if trailer.digest is not None:
        _check_digest(trailer.digest)
        return f"digest: {trailer.digest}\n\n".encode("ascii")
    return f"error: {_header_value(trailer.error) or 'failed'}\n\n".encode()


def parse_trailer_line(line: bytes) -> HashProgress | Trailer | None:
    """One trailer line (without its LF): progress, the final line, or ``None`` to ignore."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("trailer is not UTF-8") from None
    key, sep, value = text.partition(": ")
    if not sep or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", key) or not value.isprintable():
        raise ProtocolError("malformed trailer line")
    if key == "hashed":
        return HashProgress(_parse_int(value, "hashed"))
    if key == "digest":
        _check_digest(value)
        return Trailer(digest=value)
    if key == "error":
        return Trailer(error=value)
    return None  # unknown lines are ignored, as unknown headers are


# ---------------------------------------------------------------- listings


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
