"""The servers one segmented download takes its bytes from: the first URL and its mirrors.

The first source is the reference: its size and whole-file digest are what
the finished file must match. A mirror is used only once it has shown the
same size and the same digest (from its head, or, when it has not hashed
the file yet, from a zero-length range's trailer), so no byte of a
different file is ever written; one that differs, cannot send ranges or
cannot be reached is dropped with one line and the download goes on from
the others.
"""

from __future__ import annotations

import threading

from getfile_core import protocol
from getfile_core._values import FrozenValue, Value, init_field
from getfile_core.address import Target
from getfile_core.client.body import read_trailer
from getfile_core.client.session import Session, printable, raise_for_status
from getfile_core.client.state import Options, TransferState
from getfile_core.errors import ProtocolError
from getfile_core.protocol import LATEST, Request, Response, Status, Verb


class Head(FrozenValue):
    """What a source said about the file: enough to plan ranges and compare sources."""

    _fields = ("size", "mtime_ns", "digest", "version")
    __slots__ = _fields
    size: int
    mtime_ns: int | None
    #: None: not hashed yet (a version-2 head with a trailer).
    digest: str | None
    version: int

    def __init__(self, size: int, mtime_ns: int | None, digest: str | None, version: int) -> None:
        init_field(self, "size", size)
        init_field(self, "mtime_ns", mtime_ns)
        init_field(self, "digest", digest)
        init_field(self, "version", version)


class NoRanges(Exception):
    """The server cannot send byte ranges (legacy, or a version-1 getfile server)."""

    def __init__(self, why: str, *, legacy: bool = False) -> None:
        super().__init__(why)
        self.why = why
        #: It answered a getfile request with silence: the book's server (ask it its way).
        self.legacy = legacy


class Source(Value):
    """One server: its place in the list, its URL, and whether it is still used.

    Equal only to itself (it holds its own lock).
    """

    _fields = ("index", "target", "head", "alive")
    __slots__ = (*_fields, "checking")
    index: int
    target: Target
    head: Head | None
    alive: bool

    def __init__(
        self, index: int, target: Target, head: Head | None = None, alive: bool = True
    ) -> None:
        self.index = index
        self.target = target
        self.head = head
        self.alive = alive
        #: Held while the first of its connections checks it; the others wait.
        self.checking = threading.Lock()

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def label(self) -> str:
        return printable(self.target.address)

    @property
    def primary(self) -> bool:
        return self.index == 0


def probe(target: Target, options: Options, state: TransferState) -> Head:
    """Ask for the file's head (and close): size, mtime, digest, and whether ranges work.

    The request is an empty range (``offset=0 length=0``): a plain ``GET``
    would start the body, and a window's worth of it (256 KiB on a long
    path) would cross the link for nothing before the close. A version-1
    server answers ``505``, and a range cannot be asked in version 1: that
    is the sign (``check_head``), and no second connection is opened.
    """
    request = Request(Verb.GET, target.path, offset=0, length=0, version=LATEST)
    session = Session(target, options, state)
    try:
        return check_head(session, request)[0]
    finally:
        session.close()


class Opening(Value):
    """The first source's first connection, its head read and its body not yet."""

    _fields = ("head", "session", "response")
    __slots__ = _fields
    head: Head
    session: Session
    response: Response

    def __init__(self, head: Head, session: Session, response: Response) -> None:
        self.head = head
        self.session = session
        self.response = response


def open_whole(target: Target, options: Options, state: TransferState) -> Opening:
    """Ask for the whole file from offset 0 and read the head; the body is the caller's.

    What a fresh segmented download starts with, instead of ``probe``: the
    first range's bytes come on the connection that brings the size, so the
    other connections start one round trip (plus a connection) earlier, and
    the first one is already moving bytes (aria2 starts the same way). The
    cost: when that connection reaches the end of its piece and closes, what
    the server had already sent beyond it (about a window) crossed for
    nothing. A version-1 server is recognised as in ``probe`` (its answer
    has no version 2); the caller closes ``session`` whatever happens.
    """
    request = Request(Verb.GET, target.path, offset=0, version=LATEST)
    return open_with(request, target, options, state)


def open_with(request: Request, target: Target, options: Options, state: TransferState) -> Opening:
    """A new session that sent ``request`` and read its head (``check_head``); the session
    is closed if that fails, and is the caller's to close otherwise."""
    session = Session(target, options, state)
    try:
        head, response = check_head(session, request)
    except BaseException:
        session.close()
        raise
    return Opening(head, session, response)


def check_head(session: Session, request: Request) -> tuple[Head, Response]:
    """Send ``request`` and read its head: a version-2 answer with a size and a digest.

    (The range it answers, ``offset``/``length`` or a ``slice``'s, is checked
    against the request by the protocol itself: ``check_answers_request``.)
    """
    try:
        response = session.open(request, downgrade=False)
    except protocol.LegacySilence:
        raise NoRanges("a legacy server", legacy=True) from None
    except ProtocolError:
        asked = session.conn.request if session.conn is not None else None
        if isinstance(asked, Request) and asked.version < 2:
            raise NoRanges("a version-1 getfile server") from None
        raise
    assert response is not None
    if response.status is Status.UNSUPPORTED_VERSION and response.version < request.version:
        raise NoRanges("a version-1 getfile server")  # no second connection to ask in version 1
    raise_for_status(response)
    if response.size is None:
        raise ProtocolError("the server announced no size")
    if response.version < 2:
        raise NoRanges("a version-1 getfile server")
    if response.digest is None and not response.trailer:
        raise ProtocolError("the server announced no digest: refusing an unverifiable file")
    head = Head(response.size, response.mtime_ns, response.digest, response.version)
    return head, response


def fetch_digest(target: Target, size: int, options: Options, state: TransferState) -> str:
    """The whole file's digest and no body: a zero-length range at the end of the file.

    The server answers at once if it has the digest, else after hashing the
    file (``hashed`` lines keep the connection alive meanwhile).
    """
    session = Session(target, options, state)
    try:
        request = Request(Verb.GET, target.path, offset=size, length=0, version=LATEST)
        response = session.open(request)
        assert response is not None
        raise_for_status(response)
        check_range(response, size, size, 0)
        if response.digest is not None:
            return response.digest
        name = printable(target.display_path.rsplit("/", 1)[-1])
        return read_trailer(session, name, size)
    finally:
        session.close()


def check_range(response: Response, size: int, offset: int, length: int) -> None:
    """A range's head must describe the same file and exactly the range asked."""
    if response.size != size:
        raise ProtocolError(
            f"the file's size changed on the server ({response.size} bytes, not {size})"
        )
    if response.offset != offset or response.length != length:
        raise ProtocolError("server sent a different byte range than asked")
    if response.digest is None and not response.trailer:
        raise ProtocolError("the server announced no digest: refusing an unverifiable file")


def differs(size: int, their_size: int, digest: str | None, their_digest: str | None) -> str:
    """Why a mirror's file is not the first source's ("" when, as far as known, it is the same)."""
    if their_size != size:
        return f"different file (size {their_size}, not {size})"
    if digest is not None and their_digest is not None and their_digest != digest:
        return f"different file (digest {printable(their_digest)[:20]}…)"
    return ""
