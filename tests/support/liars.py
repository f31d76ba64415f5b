"""Servers that lie on purpose, so the client's distrust can be proven on real sockets.

Also here, because the access-control tests share it: a ``Tap`` that
relays and records a real session.

A ``LyingServer`` listens on 127.0.0.1:0 and runs a *script* for every
connection it accepts, in its own thread. A script gets a ``Peer``: it reads
the request line like a real server would, then sends whatever lie the test
wants (too many bytes, too few, a forged head, a drip). Threads, not asyncio,
so the tests can drive the client with ``asyncio.run`` while the liar keeps
its own pace, and so a liar that blocks cannot stall the client's event loop.

Everything is bounded: the accept loop and each script stop when the server
stops, sockets are shut down to wake blocked calls, and threads are joined
with a timeout (a thread still alive after it fails the test).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

from getfile_core import protocol
from getfile_core.protocol import Entry, Response, Status
from tests.support.wire import reset_on_close

#: How long a liar waits for the client's request before giving up on it.
REQUEST_WAIT = 5.0


class Peer:
    """One accepted connection, seen from the lying server's side."""

    #: A liar speaks version 1 of the extended dialect unless told otherwise.
    version_2 = False

    def __init__(self, sock: socket.socket, stopping: threading.Event, heard: list[bytes]) -> None:
        self.sock = sock
        self.stopping = stopping
        self._heard = heard
        self._pending = b""

    def read_line(self, limit: int = 64 * 1024) -> bytes:
        """One line from the client (without the newline); b"" if it hung up first."""
        self.sock.settimeout(REQUEST_WAIT)
        data = self._pending
        while b"\n" not in data and len(data) < limit:
            try:
                more = self.sock.recv(4096)
            except OSError:
                return b""
            if not more:
                return b""
            data += more
        line, _, self._pending = data.partition(b"\n")
        if line.startswith(b"\x00getfile/2 ") and not self.version_2:
            # What a version-1 server answers; the client asks again, in version 1.
            self.send(b"getfile/1 505 unsupported-version\n\n")
            with contextlib.suppress(OSError):
                self.sock.close()
            return b""
        self._heard.append(line)
        return line

    def send(self, data: bytes) -> bool:
        """Send everything; False if the client is gone (that is its right)."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def drip(self, data: bytes, interval: float) -> None:
        """One byte every ``interval`` seconds until the data, the client or the test ends."""
        for index in range(len(data)):
            if not self.send(data[index : index + 1]) or self.stopping.wait(interval):
                return

    def hold(self, limit: float = 30.0) -> None:
        """Keep the connection open, sending nothing, until the client leaves or the test ends."""
        self.sock.settimeout(0.05)
        waited = 0.0
        while waited < limit and not self.stopping.is_set():
            try:
                if self.sock.recv(4096) == b"":
                    return
            except TimeoutError:
                waited += 0.05
            except OSError:
                return

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN, as a crashed or hostile peer does."""
        with contextlib.suppress(OSError):
            reset_on_close(self.sock)
        self.sock.close()


Script = Callable[[Peer], None]


class LyingServer:
    """Runs ``script`` for each connection; ``requests`` records every line clients sent."""

    def __init__(self, script: Script, ssl_context: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.requests: list[bytes] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        # A fallback only: ``stop`` wakes ``accept`` at once by shutting the listener down.
        self._listener.settimeout(0.5)
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, name="liar-accept")

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def __enter__(self) -> LyingServer:
        self._acceptor.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(timeout=5)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()
        alive = [t.name for t in threads if t.is_alive()] + (
            ["liar-accept"] if self._acceptor.is_alive() else []
        )
        assert not alive, f"lying server threads still running: {alive}"

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._run, args=(sock,), name="liar-conn")
            with self._lock:
                self._sockets.append(sock)
                self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            if self.ssl_context is not None:
                sock.settimeout(REQUEST_WAIT)
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                with self._lock:
                    self._sockets.append(sock)
            self.script(Peer(sock, self._stopping, self.requests))
        except OSError:
            pass  # a handshake the client broke off: its right
        finally:
            with contextlib.suppress(OSError):
                sock.close()


# ---------------------------------------------------------------- building lies


def head(
    size: int,
    *,
    digest: str | None = None,
    offset: int = 0,
    status: Status = Status.OK,
    **extra: str,
) -> bytes:
    """A well-formed response head; the lie is in the values the test picks."""
    return protocol.encode_response_head(
        Response(status, size=size, digest=digest, offset=offset, mtime_ns=0, extra=extra)
    )


def listing_head(body: bytes, entries: int, next_after: bytes | None = None) -> bytes:
    return protocol.encode_response_head(
        Response(Status.OK, size=len(body), entries=entries, next_after=next_after)
    )


def listing(names: list[bytes]) -> bytes:
    """A listing body holding ``names`` exactly as given (hostile ones included)."""
    return protocol.encode_listing([Entry(name=n, kind="file", size=1, mtime_ns=0) for n in names])


def answer(reply: bytes, then: str = "close") -> Script:
    """A script: read the request, send ``reply`` at once, then close, reset or hold."""

    def script(peer: Peer) -> None:
        if not peer.read_line():
            return
        if not peer.send(reply):
            return
        if then == "hold":
            peer.hold()
        elif then == "reset":
            peer.reset()

    return script


def answer_each(replies: Iterator[bytes]) -> Script:
    """A script that answers successive connections with successive replies (pagination)."""
    lock = threading.Lock()

    def script(peer: Peer) -> None:
        if not peer.read_line():
            return
        with lock:
            reply = next(replies, b"")
        peer.send(reply)

    return script


# ---------------------------------------------------------------- a tap on the wire


class Tap:
    """A loopback TCP relay in front of a real server that keeps every byte both ways.

    What a passive eavesdropper on the network would see: the tests search
    it for the secret.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.to_server = bytearray()
        self.to_client = bytearray()
        self._lock = threading.Lock()

        def relay(peer: Peer) -> None:
            upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=REQUEST_WAIT)
            pump = threading.Thread(target=self._pump, args=(upstream, peer.sock, self.to_client))
            pump.start()
            try:
                self._pump(peer.sock, upstream, self.to_server)
            finally:
                pump.join(timeout=REQUEST_WAIT)
                upstream.close()

        self.server = LyingServer(relay)

    @property
    def port(self) -> int:
        return self.server.port

    def _pump(self, source: socket.socket, sink: socket.socket, record: bytearray) -> None:
        source.settimeout(REQUEST_WAIT)
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                with self._lock:
                    record += data
                sink.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def __enter__(self) -> Tap:
        self.server.__enter__()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.stop()
