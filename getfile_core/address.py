"""``getfile://HOST[:PORT]/PATH`` (and ``getfiles://`` for TLS) as a value."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from getfile_core import DEFAULT_PORT
from getfile_core.errors import UsageError

SCHEMES = {"getfile": False, "getfiles": True}


@dataclass(frozen=True)
class Target:
    """Where a file lives: host, port, raw path bytes, and whether TLS is wanted."""

    host: str
    port: int
    path: bytes
    tls: bool = False

    @property
    def display_path(self) -> str:
        return self.path.decode("utf-8", "backslashreplace")

    def url(self) -> str:
        scheme = "getfiles" if self.tls else "getfile"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.display_path}"


def parse_url(url: str, *, default_port: int = DEFAULT_PORT) -> Target:
    """Parse a getfile URL. Percent-escapes in the path are decoded (``%25`` is ``%``).

    The path after the host's slash is sent as written, relative to the served
    folder: ``getfile://h/docs/a.txt`` asks for ``docs/a.txt``; a second slash
    (``getfile://h//srv/x``) asks for the absolute path ``/srv/x``.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"not a getfile URL (getfile://HOST[:PORT]/PATH): {url}")
    if parts.query or parts.fragment:
        raise UsageError(f"getfile URLs take no ?query or #fragment: {url}")
    host = parts.hostname
    if not host:
        raise UsageError(f"no host in {url}")
    try:
        port = parts.port or default_port
    except ValueError:
        raise UsageError(f"bad port in {url}") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"port must be 1-65535 in {url}")
    path = unquote_to_bytes(parts.path[1:] if parts.path.startswith("/") else parts.path)
    return Target(host=host, port=port, path=path, tls=SCHEMES[parts.scheme])
