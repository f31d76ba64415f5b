"""Silent TLS connections beyond ``--max-connections`` are closed at once (issue 10 #3).

Before, asyncio ran the handshake before the server's handler saw the
connection, so a connection waiting for its ClientHello was not counted:
1130 silent ones used all 1024 descriptors (then asyncio logged a traceback
for every failed accept). ``test_server_tls_handshakes.py`` shows pending
handshakes are counted and cut after the request timeout; this shows the
cap applies to them: with the request timeout far away (30 s), the ones
beyond the cap are closed at once, and the rest stay open.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from pathlib import Path

from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.tls import server_context
from tests.support.certs import make_cert_set

CAP = 10
SILENT = 2 * CAP


def closed_within(socks: list[socket.socket], seconds: float, want: int) -> set[socket.socket]:
    """The sockets whose peer closed them, waiting up to ``seconds`` for ``want`` of them."""
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + seconds
    while len(closed) < want and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([s for s in socks if s not in closed], [], [], left)
        for sock in readable:
            try:
                data = sock.recv(1)
            except ConnectionResetError:
                data = b""
            assert data == b"", data  # a TLS server says nothing before our ClientHello
            closed.add(sock)
    return closed


async def test_silent_tls_connections_beyond_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    certs = make_cert_set(tmp_path / "certs")
    (tmp_path / "served").mkdir()
    context = server_context(str(certs.good.cert), str(certs.good.key))
    limits = ServerLimits(grace=1, request_timeout=30, max_connections=CAP)
    server = FileServer(tmp_path / "served", limits=limits, ssl_context=context, on_access=None)
    await server.start()
    silent: list[socket.socket] = []
    try:
        for _ in range(SILENT):
            silent.append(socket.create_connection(("127.0.0.1", server.port_bound), timeout=10))
        # In a thread: the server runs on this test's event loop.
        closed = await asyncio.to_thread(closed_within, silent, 10, SILENT - CAP)
        assert len(closed) == SILENT - CAP, f"{len(closed)} of {SILENT - CAP} closed"
        rest = [s for s in silent if s not in closed]
        assert not await asyncio.to_thread(closed_within, rest, 0.5, 1)  # counted, still open
    finally:
        for sock in silent:
            sock.close()
        await server.stop(grace=1)
