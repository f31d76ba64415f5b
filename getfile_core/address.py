"""``getfile://HOST[:PORT]/PATH`` (and ``getfiles://`` for TLS) as a value."""

from __future__ import annotations

from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

from getfile_core import DEFAULT_PORT
from getfile_core._values import FrozenValue, init_field
from getfile_core.errors import UsageError
from getfile_core.safe_text import printable

SCHEMES = {"getfile": False, "getfiles": True}
#: Besides letters, digits and ``_.-~``, the characters a path keeps as they are in a URL:
#: ``/`` and the few RFC 3986 path characters that no shell treats specially, so a URL
#: stays pasteable unquoted. Everything else (``%``, ``?``, ``#``, spaces, non-ASCII,
#: bytes that are not UTF-8) is percent-encoded.
URL_PATH_SAFE = "/:@+,="


class Target(FrozenValue):
    """Where a file lives: host, port, raw path bytes, and whether TLS is wanted.

    A plain frozen class, not a dataclass: ``getfile_core._values`` says why.
    """

    _fields = ("host", "port", "path", "tls")
    __slots__ = _fields
    host: str
    port: int
    path: bytes
    tls: bool

    def __init__(self, host: str, port: int, path: bytes, tls: bool = False) -> None:
        init_field(self, "host", host)
        init_field(self, "port", port)
        init_field(self, "path", path)
        init_field(self, "tls", tls)

    @property
    def display_path(self) -> str:
        return self.path.decode("utf-8", "backslashreplace")

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port``), as people read and type it."""
        return format_address(self.host, self.port)

    def url(self) -> str:
        """The exact URL: ``parse_url(target.url()) == target`` for any path bytes.

        The path is percent-encoded (``a%41.txt`` -> ``a%2541.txt``, ``x#y`` ->
        ``x%23y``), so this is what to save or hand to another program; for a
        person, show ``display_path`` (readable, through ``printable``).
        """
        scheme = "getfiles" if self.tls else "getfile"
        return f"{scheme}://{self.address}/{quote_from_bytes(self.path, safe=URL_PATH_SAFE)}"


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets (``[::1]:50001``): the one formatter
    for every place that shows where a server is (error lines, the TUI's title, the log)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_port(text: str | int, *, allow_any: bool = False) -> int:
    """A TCP port from user text: ``1``..``65535`` (``0``, "any free port", only with
    ``allow_any``, which makes sense for listening and never for connecting).

    ASCII digits only: ``int()`` would take ``"٣"`` or ``" 5 "``, which no
    other tool would read as a port. Raises ``UsageError`` with a one-line reason.
    """
    raw = str(text)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5):
        raise UsageError(f"not a port number: {raw!r}")
    port = int(raw)
    lowest = 0 if allow_any else 1
    if not lowest <= port <= 65535:
        raise UsageError(f"port must be {lowest}-65535: {port}")
    return port


def check_host(host: str) -> str:
    """``host`` if a resolver could take it; ``UsageError`` otherwise.

    The IDNA codec that ``socket.getaddrinfo`` applies refuses labels longer
    than 63 characters and empty labels (``a..b``) with a ``UnicodeError``,
    which would surface deep in a connection attempt as a traceback; control
    characters and spaces are no part of any host name.
    """
    if not host:
        raise UsageError("no host given")
    if not host.isprintable() or " " in host:
        raise UsageError(f"not a host name: {printable(host)}")
    if ":" not in host:  # an IPv6 literal is no IDNA name
        try:
            resolver_host(host)
        except UnicodeError:
            raise UsageError(
                f"not a valid host name: {printable(host, limit=80)} "
                "(each dot-separated part must be 1-63 characters)"
            ) from None
    return host


def resolver_host(host: str) -> bytes:
    """``host`` as ``socket.getaddrinfo`` is given it: bytes, so it never imports ``idna``.

    Given a ``str``, getaddrinfo encodes it with the IDNA codec, whose import
    (``encodings.idna``, ``stringprep``, ``unicodedata``) costs ~1 ms of every
    download's start-up even for ``127.0.0.1``. An ASCII name is checked as
    that codec checks it (labels of 1-63 characters, the last may be empty)
    and passed as is; only a non-ASCII name pays for the codec. Raises
    ``UnicodeError`` as the codec does.
    """
    if not host.isascii():
        return host.encode("idna")
    raw = host.encode("ascii")
    *labels, last = raw.split(b".")
    if len(last) >= 64 or not all(0 < len(label) < 64 for label in labels):
        raise UnicodeError("label empty or too long")
    return raw


def parse_url(url: str, *, default_port: int = DEFAULT_PORT) -> Target:
    """Parse a getfile URL. Percent-escapes in the path are decoded (``%25`` is ``%``).

    The path after the host's slash is sent as written, relative to the served
    folder: ``getfile://h/docs/a.txt`` asks for ``docs/a.txt``; a second slash
    (``getfile://h//srv/x``) asks for the absolute path ``/srv/x``.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"not a getfile URL (getfile://HOST[:PORT]/PATH): {printable(url)}")
    if parts.query or parts.fragment:
        raise UsageError(f"getfile URLs take no ?query or #fragment: {printable(url)}")
    host = parts.hostname
    if not host:
        raise UsageError(f"no host in {printable(url)}")
    check_host(host)
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"bad port in {printable(url)} (1-65535)") from None
    if port is None:
        port = default_port
    elif port == 0:
        # "Any free port" is for listening; a file is never there. (It used to mean 50001.)
        raise UsageError(f"port 0 in {printable(url)}: a server's port is 1-65535")
    path = unquote_to_bytes(parts.path[1:] if parts.path.startswith("/") else parts.path)
    return Target(host=host, port=port, path=path, tls=SCHEMES[parts.scheme])
