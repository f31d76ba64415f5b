"""A response's body and what follows it, from the socket into the ``.part``.

The hot loop (``copy_body``) moves bytes with a ``receive.Receiver`` (splice
or ``recv_into``), at the rate limit's pace when there is one, and refuses a
server that trickles; ``read_trailer`` waits for a version-2 digest;
``expect_close`` catches a server that sends more than it announced.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

import blake3

from getfile_core import protocol
from getfile_core.client import session as session_module
from getfile_core.client.destination import write_all
from getfile_core.client.receive import BUFFER, open_receiver
from getfile_core.client.session import PaceFloor, Session, hashing_note, printable, recv
from getfile_core.errors import IntegrityError, ProtocolError, TooSlowError


def copy_body(session: Session, fd: int, hasher: blake3.blake3 | None) -> None:
    """Everything the head announced (legacy: until the close) into ``fd``, hashed on the way."""
    sock, conn, state, options = session.sock, session.conn, session.state, session.options
    assert sock is not None and conn is not None
    limit = options.rate_limit
    leftover = conn.take_buffered()  # body bytes that came with the head
    if leftover:
        write_all(fd, memoryview(leftover))
        if hasher is not None:
            hasher.update(leftover)
        state.done += len(leftover)
        if limit is not None:  # they count against the limit too
            state.pause(limit.reserve(len(leftover)))
    _bound_silence(sock, options.timeout)
    remaining = conn.body_remaining  # None for legacy: until the server closes
    receiver = open_receiver(sock, fd, hasher, state.check_cancelled, remaining)
    pace = PaceFloor(options.timeout, state.done)
    try:
        while remaining is None or remaining > 0:
            want = BUFFER if remaining is None else min(BUFFER, remaining)
            if limit is not None:
                want = limit.chunk(want)
            count = receiver.receive(want)
            if count == 0:
                if remaining is None:
                    break
                raise protocol.ShortBody(remaining)
            state.done += count
            if count < PaceFloor.MIN_BYTES:  # only a trickle arrived: too slow a server?
                pace.check(state.done)
            if remaining is not None:
                remaining -= count
                conn.consume_body(count)
            if limit is not None:
                state.pause(limit.reserve(count))
        receiver.finish()
    finally:
        receiver.close()


def read_trailer(session: Session, name: str, size: int | None) -> str:
    """Version 2: the whole file's digest, after the body; the server may still be hashing.

    Each ``hashed:`` line is a sign of life (the silence timeout starts
    again) and a note for people; the wait as a whole is bounded like a
    version-1 server's ``102`` heads (``MAX_PREPARE_SECONDS``).
    """
    sock, conn, state = session.sock, session.conn, session.state
    assert sock is not None and conn is not None
    sock.settimeout(session.options.timeout)
    began = time.monotonic()
    while True:
        event = conn.next_event()
        if isinstance(event, protocol.HashProgress):
            state.note = hashing_note(name, event.hashed, size)
            continue
        if isinstance(event, protocol.Trailer):
            state.note = ""
            if event.digest is None:
                reason = printable(event.error) or "no reason given"
                raise IntegrityError(
                    f"the server could not vouch for what it sent: {reason} (partial file removed)"
                )
            return event.digest
        if time.monotonic() - began > session_module.MAX_PREPARE_SECONDS:
            raise TooSlowError("server still hashing after the body; giving up")
        conn.receive_data(recv(sock, state))


def _bound_silence(sock: socket.socket, timeout: float) -> None:
    """A blocking socket (splice needs one) whose silence SO_RCVTIMEO still bounds."""
    if isinstance(sock, _ssl_socket_type()):
        return
    sock.settimeout(None)
    seconds = int(timeout)
    micros = int((timeout - seconds) * 1e6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))


def expect_close(sock: socket.socket) -> None:
    """After the announced bytes the server must close; more data means it lied."""
    sock.settimeout(min(5.0, max(0.5, sock.gettimeout() or 5.0)))
    try:
        extra = sock.recv(1)
    except (TimeoutError, BlockingIOError, OSError):
        return
    if extra:
        raise ProtocolError("server sent more bytes than it announced (partial file removed)")


def _ssl_socket_type() -> type:
    ssl = sys.modules.get("ssl")
    return ssl.SSLSocket if ssl is not None else type(None)
