"""Where things listen: a port nothing listens on, and a target on a test server."""

from __future__ import annotations

import socket

from getfile_core.address import Target
from getfile_core.server.fileserver import FileServer


def unused_port() -> int:
    """A loopback port that was just bound and closed, so nothing listens on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def target_for(server: FileServer, path: str | bytes) -> Target:
    """The download target for ``path`` on an in-process server (the ``server`` fixture)."""
    raw = path.encode() if isinstance(path, str) else path
    return Target("127.0.0.1", server.port_bound, raw)
