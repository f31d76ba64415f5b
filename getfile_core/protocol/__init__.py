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

Version 2 of the extended dialect starts the body at once: when the server
has not hashed the file yet, the head says ``trailer: digest`` and the
digest of the whole file follows the body in a trailer block. It also adds
byte ranges (``length=N``; ``slice=K/N`` when the size is not known
yet), a ``PING`` for load balancers' health checks,
and persistent connections: a request with ``keep=1`` leaves the connection
open for more, which a client may send without waiting (pipelining).
A request's version chooses the answer's: version-1 clients see nothing new.
"""

from __future__ import annotations

from getfile_core._lazy import lazy_exports
from getfile_core.protocol._client import ClientConnection, ClientState
from getfile_core.protocol._errors import (
    LegacySilence,
    MissingTrailer,
    ShortBody,
    UnsupportedVersion,
)
from getfile_core.protocol._events import (
    ENTRY_KINDS,
    LATEST,
    MAGIC,
    MAX_HEAD,
    MAX_HEADER_LINES,
    MAX_INTERIM,
    MAX_KEEP_REQUESTS,
    MAX_LEGACY_LINE,
    MAX_LIST_BODY,
    MAX_LIST_ENTRIES,
    MAX_NAME,
    MAX_REQUEST_LINE,
    MAX_SERVER_BUFFER,
    MAX_TRAILER_LINE,
    MAX_TRAILER_LINES,
    NEED_DATA,
    SUPPORTED,
    VERSION,
    AuthProof,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Entry,
    Event,
    HashProgress,
    LegacyRequest,
    Request,
    Response,
    Status,
    Trailer,
    Verb,
)
from getfile_core.protocol._slices import MAX_SLICES, Slice
from getfile_core.protocol._wire import (
    decode_listing,
    decode_path,
    encode_auth,
    encode_hash_progress,
    encode_legacy_request,
    encode_listing,
    encode_path,
    encode_request,
    encode_response_head,
    encode_trailer,
    parse_request_line,
    parse_response_head,
    parse_trailer_line,
    pong,
    proof_subject,
)

__all__ = [
    "ENTRY_KINDS",
    "LATEST",
    "MAGIC",
    "MAX_HEAD",
    "MAX_HEADER_LINES",
    "MAX_INTERIM",
    "MAX_KEEP_REQUESTS",
    "MAX_LEGACY_LINE",
    "MAX_LIST_BODY",
    "MAX_LIST_ENTRIES",
    "MAX_NAME",
    "MAX_REQUEST_LINE",
    "MAX_SERVER_BUFFER",
    "MAX_SLICES",
    "MAX_TRAILER_LINE",
    "MAX_TRAILER_LINES",
    "NEED_DATA",
    "SUPPORTED",
    "VERSION",
    "AuthProof",
    "ClientConnection",
    "ClientState",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Entry",
    "Event",
    "HashProgress",
    "LegacyRequest",
    "LegacySilence",
    "MissingTrailer",
    "Request",
    "Response",
    "ServerConnection",
    "ServerState",
    "ShortBody",
    "Slice",
    "Status",
    "Trailer",
    "UnsupportedVersion",
    "Verb",
    "decode_listing",
    "decode_path",
    "encode_auth",
    "encode_hash_progress",
    "encode_legacy_request",
    "encode_listing",
    "encode_path",
    "encode_request",
    "encode_response_head",
    "encode_trailer",
    "parse_request_line",
    "parse_response_head",
    "parse_trailer_line",
    "pong",
    "proof_subject",
]

# The server's side is imported on first use: a client never loads it.
__getattr__, _ = lazy_exports(__name__, {"ServerConnection": "._server", "ServerState": "._server"})

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from getfile_core.protocol._server import ServerConnection, ServerState
