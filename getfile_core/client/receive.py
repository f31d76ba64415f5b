"""The body of a download, from socket to ``.part``, with as few copies as the OS allows.

Measured on the project's 2-core VM (``docs/performance.md``), CPU seconds
the client spends per GiB: ``recv_into`` + ``os.write`` 0.55-0.68, plus
an inline BLAKE3 update 0.84; a second hashing thread fed by a ring of
buffers 1.0-1.1 (the data crosses cores, and both cores are already busy
with the sender and the receiver). What helps is copying less: on Linux a
plain TCP socket is *spliced* into the file through a pipe (socket pages go
to the pipe by reference, one kernel copy into the page cache: 0.48 s/GiB),
and the digest is computed from the file's freshly written pages, a window
at a time while they are still in cache (0.70-0.75 s/GiB with the digest,
about what an undigested ``recv`` + ``write`` costs, measured through a
mapping; now read with ``pread`` into a reused buffer, since a mapping of a
file others can truncate is a SIGBUS waiting to happen: see ``digest``).

Which path a large verified body takes on a plain TCP socket (splice,
``recv_into`` + hash while hot, or splice with a trailing hash thread) is
tried on the first large download and then kept, per machine: ``strategy``.

TLS sockets, other systems, and any socket ``os.splice`` refuses use the
portable path: ``recv_into`` a reused 1 MiB buffer, ``os.write``, and a
BLAKE3 update of that buffer. Both paths release the GIL in every call.

Both expect a *blocking* socket whose silence is bounded by ``SO_RCVTIMEO``
(a Python socket timeout would make it non-blocking, and splice would then
fail at once); a cancel shuts the socket down, which ends a blocked call.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Callable

import blake3

from getfile_core.client import strategy
from getfile_core.client.destination import write_all, write_failed
from getfile_core.digest import hash_written
from getfile_core.errors import (
    GetfileError,
    InterruptedError_,
    LocalFileError,
    TimeoutError_,
)

#: The receive buffer (portable path) and the pipe's capacity (splice path).
BUFFER = 1024 * 1024
#: Spliced bytes are hashed every this many bytes, soon after they were
#: written (in cache); 512 KiB to 4 MiB measured the same.
HASH_WINDOW = 2 * 1024 * 1024
#: ...read back in pieces this big, each hashed while it is in L2: pread + BLAKE3 of
#: page-cached data measured 0.275 s/GiB CPU with 512 KiB pieces, 0.299 with 2 MiB
#: (the project's Xeon, 2 MiB L2; 128 KiB-1 MiB all within 0.01 of 512 KiB).
HASH_PIECE = 512 * 1024

#: What a kernel or sandbox that will not splice this socket answers.
_NO_SPLICE = (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP)


class Receiver:
    """Moves body bytes from a socket into a file and keeps the digest up to date."""

    def __init__(
        self,
        sock: socket.socket,
        fd: int,
        hasher: blake3.blake3 | None,
        check_cancelled: Callable[[], None],
    ) -> None:
        self.sock = sock
        self.fd = fd
        self.hasher = hasher
        self.check_cancelled = check_cancelled

    def receive(self, want: int) -> int:
        """Move up to ``want`` (> 0) bytes into the file; 0 when the peer closed."""
        raise NotImplementedError

    def finish(self) -> None:
        """Bring the digest up to date with everything written."""

    def resume(self) -> None:
        """Carry on from the file's offset: another receiver wrote (and hashed) meanwhile."""

    def close(self) -> None:
        """Release what the receiver holds (never the socket or the file)."""

    def _receive_failed(self, error: OSError) -> GetfileError:
        self.check_cancelled()
        if isinstance(error, TimeoutError | BlockingIOError):
            return TimeoutError_("the server stopped sending")
        return InterruptedError_(f"connection lost: {error.strerror or error}")


class BufferReceiver(Receiver):
    """The portable path: ``recv_into`` one reused buffer, write it, hash it."""

    def __init__(
        self,
        sock: socket.socket,
        fd: int,
        hasher: blake3.blake3 | None,
        check_cancelled: Callable[[], None],
    ) -> None:
        super().__init__(sock, fd, hasher, check_cancelled)
        self.view = memoryview(bytearray(BUFFER))

    def receive(self, want: int) -> int:
        try:
            count = self.sock.recv_into(self.view, min(want, BUFFER))
        except OSError as error:
            raise self._receive_failed(error) from None
        self.check_cancelled()
        if count:
            chunk = self.view[:count]
            write_all(self.fd, chunk)
            if self.hasher is not None:
                self.hasher.update(chunk)
        return count


class SpliceReceiver(Receiver):
    """Linux, plain TCP: socket -> pipe -> file inside the kernel; hash from the page cache."""

    def __init__(
        self,
        sock: socket.socket,
        fd: int,
        hasher: blake3.blake3 | None,
        check_cancelled: Callable[[], None],
    ) -> None:
        super().__init__(sock, fd, hasher, check_cancelled)
        self.pipe_out, self.pipe_in = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.pipe_in, fcntl.F_SETPIPE_SZ, BUFFER)
            self.capacity = fcntl.fcntl(self.pipe_in, fcntl.F_GETPIPE_SZ)
        except OSError:  # a lower pipe-max-size: the default pipe works too
            self.capacity = 64 * 1024
        #: File offsets: where the next byte lands, and how far the digest got.
        self.position = self.hashed = self.start = os.lseek(fd, 0, os.SEEK_CUR)
        self.portable: BufferReceiver | None = None
        self.hash_buffer: memoryview | None = None

    def receive(self, want: int) -> int:
        if self.portable is not None:
            return self.portable.receive(want)
        try:
            count = os.splice(self.sock.fileno(), self.pipe_in, min(want, self.capacity))
        except OSError as error:
            if error.errno in _NO_SPLICE and self.position == self.start:
                portable = BufferReceiver(self.sock, self.fd, self.hasher, self.check_cancelled)
                self.portable = portable
                return portable.receive(want)
            raise self._receive_failed(error) from None
        self.check_cancelled()
        moved = 0
        while moved < count:
            try:
                moved += os.splice(self.pipe_out, self.fd, count - moved)
            except OSError as error:
                self.position += moved
                raise write_failed(error) from None
        self.position += count
        if self.hasher is not None and self.position - self.hashed >= HASH_WINDOW:
            self._hand_over()
        return count

    def resume(self) -> None:
        if self.portable is not None:
            self.portable.resume()
        self.position = self.hashed = self.start = os.lseek(self.fd, 0, os.SEEK_CUR)

    def _hand_over(self) -> None:
        """Hash the window written since the last one (here, in this thread)."""
        self.finish()

    def finish(self) -> None:
        if self.hasher is not None and self.position > self.hashed:
            if self.hash_buffer is None:
                self.hash_buffer = memoryview(bytearray(HASH_PIECE))
            hash_written(self.fd, self.hashed, self.position, self.hasher, self.hash_buffer)
            self.hashed = self.position

    def close(self) -> None:
        pipes, self.pipe_in, self.pipe_out = (self.pipe_in, self.pipe_out), -1, -1
        for fd in pipes:
            if fd >= 0:
                os.close(fd)


class ThreadedSpliceReceiver(SpliceReceiver):
    """Splice as above; a second thread trails the writer, reading back and hashing.

    Takes the hash (~0.28 s/GiB here) off the copying thread's path, which
    only pays where a core is idle: a remote sender, or more cores than the
    sender and the receiver need. On the project's 2-core VM under other
    work it measured the same as inline (``docs/performance.md``), so it is
    used only where ``strategy``'s trial measured it faster.
    At most ``AHEAD`` windows wait (they are in the page cache already).
    """

    AHEAD = 8

    def __init__(
        self,
        sock: socket.socket,
        fd: int,
        hasher: blake3.blake3 | None,
        check_cancelled: Callable[[], None],
    ) -> None:
        import queue
        import threading

        super().__init__(sock, fd, hasher, check_cancelled)
        self.windows: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=self.AHEAD)
        self.failure: OSError | None = None
        self.stopped = False  # closed: what is still queued is not worth hashing
        self.worker = threading.Thread(target=self._hash_loop, name="getfile-hash", daemon=True)
        self.worker.start()

    def receive(self, want: int) -> int:
        if self.failure is not None:
            self._raise_failure()
        return super().receive(want)

    def finish(self) -> None:
        """Hand the last window over and wait until the digest covers everything written."""
        self._hand_over()
        self.windows.join()
        if self.failure is not None:
            self._raise_failure()

    def _hand_over(self) -> None:
        if self.hasher is not None and self.position > self.hashed:
            if self.portable is not None:  # splice refused: the portable path hashes inline
                return
            self.windows.put((self.hashed, self.position))
            self.hashed = self.position

    def close(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.windows.put(None)
            self.worker.join()
        super().close()

    def _hash_loop(self) -> None:
        view = memoryview(bytearray(HASH_PIECE))
        while (window := self.windows.get()) is not None:
            try:
                if self.failure is None and not self.stopped and self.hasher is not None:
                    hash_written(self.fd, window[0], window[1], self.hasher, view)
            except OSError as error:
                self.failure = error
            finally:
                self.windows.task_done()
        self.windows.task_done()

    def _raise_failure(self) -> None:
        error = self.failure
        raise LocalFileError(f"cannot read back the file to hash it: {error}") from None


def open_receiver(
    sock: socket.socket,
    fd: int,
    hasher: blake3.blake3 | None,
    check_cancelled: Callable[[], None],
    size: int | None = None,
) -> Receiver:
    """The fastest receiver this socket, file and machine allow for ``size`` more bytes.

    Splice needs a plain TCP socket (not TLS) in blocking mode: with a
    Python timeout the descriptor is non-blocking and splice would fail at once.
    With a digest to keep, which path is cheapest depends on the machine:
    ``strategy.choose`` says which, from a trial on a real download (``trial``).
    """
    if not _can_splice(sock):
        return BufferReceiver(sock, fd, hasher, check_cancelled)
    if hasher is None:
        return make_receiver(strategy.SPLICE, sock, fd, hasher, check_cancelled)
    place = strategy.place_of(sock)
    choice = strategy.choose(size, place)
    if choice != strategy.TRIAL:
        return make_receiver(choice, sock, fd, hasher, check_cancelled)
    from getfile_core.client.trial import TrialReceiver

    def make(kind: str) -> Receiver:
        return make_receiver(kind, sock, fd, hasher, check_cancelled)

    return TrialReceiver(sock, fd, hasher, check_cancelled, make, place)


def make_receiver(
    choice: str,
    sock: socket.socket,
    fd: int,
    hasher: blake3.blake3 | None,
    check_cancelled: Callable[[], None],
) -> Receiver:
    """The receiver for ``choice`` (a ``strategy`` path); ``buffer`` where splice cannot be."""
    if choice != strategy.BUFFER and _can_splice(sock):
        kind = ThreadedSpliceReceiver if choice == strategy.THREAD else SpliceReceiver
        try:
            return kind(sock, fd, hasher, check_cancelled)
        except OSError:
            pass
    return BufferReceiver(sock, fd, hasher, check_cancelled)


def _can_splice(sock: socket.socket) -> bool:
    return hasattr(os, "splice") and type(sock) is socket.socket and sock.gettimeout() is None
