"""The protocol's vocabulary: versions, bounds, statuses, verbs and the events."""

from __future__ import annotations

import enum

from getfile_core._values import FrozenValue, init_field
from getfile_core.protocol._slices import Slice

#: The version a ``Request`` speaks unless told otherwise (the one every
#: getfile server understands); clients opt in to ``LATEST``.
VERSION = 1
#: The newest version this module speaks, and all it speaks.
LATEST = 2
SUPPORTED = (1, 2)
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
#: Longest trailer line, and most lines a trailer may hold (progress lines
#: once a second while the server finishes hashing: an hour of them).
MAX_TRAILER_LINE = 1024
MAX_TRAILER_LINES = MAX_INTERIM + 64
#: Version 2 persistent connections: requests one connection may carry
#: unless the server says fewer (its ``keep: N`` header counts them down).
MAX_KEEP_REQUESTS = 1000
#: Most bytes a server's ``ServerConnection`` holds: it reads (at most 64 KiB
#: at a time) only when no whole request is buffered, so pipelined requests
#: beyond this wait in TCP's buffers, and a flood of tiny requests costs the
#: server no memory (TCP flow control is the pipelining depth).
MAX_SERVER_BUFFER = 64 * 1024 + MAX_REQUEST_LINE


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
    #: Version 2: "are you a getfile server and alive?", answered without
    #: touching any file, authentication or slot (for HAProxy's tcp-check).
    PING = "PING"


# ---------------------------------------------------------------- events
#
# Plain frozen classes (``getfile_core._values``), not ``@dataclass(frozen=True)``:
# importing ``dataclasses`` and building these ten cost 10 ms of a 1 MiB
# ``getfile get`` whose whole process is meant to take ~30 ms (docs/performance.md).
# ``event.replace(version=2)`` is what ``dataclasses.replace`` was.


class LegacyRequest(FrozenValue):
    """The book's request: a raw path, answered by raw bytes and a close."""

    _fields = ("path",)
    __slots__ = _fields
    path: bytes

    def __init__(self, path: bytes) -> None:
        init_field(self, "path", path)


class Request(FrozenValue):
    """An extended request. ``path`` is raw bytes: POSIX names need not be UTF-8."""

    _fields = ("verb", "path", "offset", "after", "limit", "version", "length", "keep", "slice")
    __slots__ = _fields
    verb: Verb
    path: bytes
    offset: int
    #: LIST only: continue after this name (the ``next`` of the previous page).
    after: bytes | None
    limit: int
    version: int
    #: Version 2 GET only: send just this many bytes from ``offset`` (a byte
    #: range, for segmented downloads). ``None``: to the end of the file.
    length: int | None
    #: Version 2: keep the connection open after the answer for more requests
    #: (``keep=1`` on the wire). Without it the server closes after answering.
    keep: bool
    #: Version 2 GET only (``slice=K/N floor=F``): the server picks the range,
    #: ``Slice.span`` of the file's size; excludes ``offset`` and ``length``.
    slice: Slice | None

    def __init__(
        self,
        verb: Verb,
        path: bytes,
        offset: int = 0,
        after: bytes | None = None,
        limit: int = MAX_LIST_ENTRIES,
        version: int = VERSION,
        length: int | None = None,
        keep: bool = False,
        slice: Slice | None = None,
    ) -> None:
        init_field(self, "verb", verb)
        init_field(self, "path", path)
        init_field(self, "offset", offset)
        init_field(self, "after", after)
        init_field(self, "limit", limit)
        init_field(self, "version", version)
        init_field(self, "length", length)
        init_field(self, "keep", keep)
        init_field(self, "slice", slice)


class AuthProof(FrozenValue):
    """The client's answer to a challenge: HMAC of the challenge and the request line."""

    _fields = ("mac",)
    __slots__ = _fields
    mac: bytes

    def __init__(self, mac: bytes) -> None:
        init_field(self, "mac", mac)


class Response(FrozenValue):
    """A response head. For GET the body is ``size - offset`` bytes of the file.

    For LIST the body is ``size`` bytes of listing lines (see ``encode_listing``).
    """

    _fields = (
        "status",
        "message",
        "size",
        "mtime_ns",
        "digest",
        "offset",
        "challenge",
        "entries",
        "next_after",
        "extra",
        "version",
        "length",
        "trailer",
        "hashed",
        "keep",
    )
    __slots__ = _fields
    status: Status
    message: str
    size: int | None
    mtime_ns: int | None
    digest: str | None
    offset: int
    #: 401 only: the nonce the client must prove knowledge of the token against.
    challenge: bytes | None
    #: LIST only: how many entries the body holds, and the cursor of the next page.
    entries: int | None
    next_after: bytes | None
    extra: dict[str, str]
    #: The protocol version of the head (``ServerConnection.send`` sets the request's).
    version: int
    #: Version 2 GET ok: the body is this range's length (``None``: to the end).
    length: int | None
    #: Version 2 GET ok: the digest comes in a trailer after the body.
    trailer: bool
    #: 102 only: bytes of the file hashed so far (of ``size``).
    hashed: int | None
    #: Version 2, answering a ``keep`` request: the connection goes on after
    #: this exchange, for at most this many more requests (0: this is the last).
    #: ``None``: the server closes after this exchange.
    keep: int | None

    def __init__(
        self,
        status: Status,
        message: str = "",
        size: int | None = None,
        mtime_ns: int | None = None,
        digest: str | None = None,
        offset: int = 0,
        challenge: bytes | None = None,
        entries: int | None = None,
        next_after: bytes | None = None,
        extra: dict[str, str] | None = None,
        version: int = VERSION,
        length: int | None = None,
        trailer: bool = False,
        hashed: int | None = None,
        keep: int | None = None,
    ) -> None:
        init_field(self, "status", status)
        init_field(self, "message", message)
        init_field(self, "size", size)
        init_field(self, "mtime_ns", mtime_ns)
        init_field(self, "digest", digest)
        init_field(self, "offset", offset)
        init_field(self, "challenge", challenge)
        init_field(self, "entries", entries)
        init_field(self, "next_after", next_after)
        init_field(self, "extra", {} if extra is None else extra)
        init_field(self, "version", version)
        init_field(self, "length", length)
        init_field(self, "trailer", trailer)
        init_field(self, "hashed", hashed)
        init_field(self, "keep", keep)

    @property
    def body_length(self) -> int:
        """Bytes that follow the head (zero for any status but ok)."""
        if self.status is not Status.OK or self.size is None:
            return 0
        if self.entries is not None:
            return self.size
        return self.size - self.offset if self.length is None else self.length


class Data(FrozenValue):
    _fields = ("data",)
    __slots__ = _fields
    data: bytes

    def __init__(self, data: bytes) -> None:
        init_field(self, "data", data)


class HashProgress(FrozenValue):
    """Version 2 trailer: the server is still hashing; ``hashed`` bytes so far."""

    _fields = ("hashed",)
    __slots__ = _fields
    hashed: int

    def __init__(self, hashed: int) -> None:
        init_field(self, "hashed", hashed)


class Trailer(FrozenValue):
    """Version 2: what follows the body: the whole file's digest, or why there is none."""

    _fields = ("digest", "error")
    __slots__ = _fields
    digest: str | None
    error: str

    def __init__(self, digest: str | None = None, error: str = "") -> None:
        init_field(self, "digest", digest)
        init_field(self, "error", error)


class EndOfMessage(FrozenValue):
    """The body is complete (extended: all announced bytes; legacy: the server closed)."""

    __slots__ = ()


class ConnectionClosed(FrozenValue):
    """A persistent connection ended cleanly between two exchanges (a half-close or EOF)."""

    __slots__ = ()


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()

Event = (
    LegacyRequest
    | Request
    | AuthProof
    | Response
    | Data
    | HashProgress
    | Trailer
    | EndOfMessage
    | ConnectionClosed
)


class Entry(FrozenValue):
    """One line of a listing. ``name`` is raw bytes, exactly as on the server's disk."""

    _fields = ("name", "kind", "size", "mtime_ns")
    __slots__ = _fields
    name: bytes
    kind: str  # "file", "dir" or "other"
    size: int
    mtime_ns: int

    def __init__(self, name: bytes, kind: str, size: int, mtime_ns: int) -> None:
        init_field(self, "name", name)
        init_field(self, "kind", kind)
        init_field(self, "size", size)
        init_field(self, "mtime_ns", mtime_ns)


ENTRY_KINDS = ("file", "dir", "other")
