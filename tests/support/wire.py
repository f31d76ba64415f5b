"""Raw bytes on real sockets: send a request by hand, read what the server answers.

For tests that must say what a well-behaved client never would (a request
split in odd segments, a reset in mid-request), or that check the framing
of an answer byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from getfile_core import protocol
from getfile_core.protocol import Request, Response
from tests.support.files import MIB
from tests.support.waits import PATIENCE


def reset_on_close(sock: socket.socket) -> None:
    """SO_LINGER 0: ``close`` then sends RST, as a crashed or unplugged peer does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def exchange(
    port: int,
    chunks: list[bytes],
    ending: str = "half-close",
    timeout: float = 10.0,
    cap: int = 64 * 1024 * 1024,
) -> bytes:
    """Send ``chunks`` as separate segments, end as told, return what the server sent.

    ``ending``: ``half-close`` (shut our side, read to EOF), ``close`` (close
    at once), ``reset`` (RST at once). A server that neither answers nor
    closes within ``timeout`` fails the test: it hung.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            if chunk:
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server already gave up on us: allowed
        if ending == "reset":
            reset_on_close(sock)
            return b""
        if ending == "close":
            return b""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return read_to_eof(sock, cap)


def read_to_eof(sock: socket.socket, cap: int = 64 * 1024 * 1024) -> bytes:
    received = bytearray()
    while len(received) <= cap:
        try:
            data = sock.recv(256 * 1024)
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError("the server neither answered nor closed: it hung") from None
        if not data:
            break
        received += data
    return bytes(received)


def split_response(raw: bytes) -> tuple[protocol.Response, bytes]:
    """An extended answer as (head, body); a malformed head fails the test."""
    head, sep, body = raw.partition(b"\n\n")
    assert sep, f"no complete response head in {raw[:200]!r}"
    return protocol.parse_response_head(head), body


def extended_get(path: bytes, offset: int = 0) -> bytes:
    return protocol.encode_request(protocol.Request(protocol.Verb.GET, path, offset=offset))


async def raw_exchange(
    port: int, request: Request, *, max_body: int = 64 * MIB
) -> tuple[Response, bytes]:
    """One extended request over asyncio streams, framed by ``ClientConnection``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = protocol.ClientConnection(request)
    response: Response | None = None
    body = bytearray()
    try:
        writer.write(conn.request_bytes())
        async with asyncio.timeout(PATIENCE):
            while True:
                event = conn.next_event()
                if event is protocol.NEED_DATA:
                    conn.receive_data(await reader.read(256 * 1024))
                elif isinstance(event, Response):
                    response = event
                elif isinstance(event, protocol.Data):
                    body += event.data
                    assert len(body) <= max_body
                else:
                    break
    finally:
        writer.close()
    assert response is not None
    return response, bytes(body)
