"""Whole-file digests: computed once per file, on their own small pool, stoppable.

A first download whose body starts the file is hashed from the very
buffers the sender reads and sends (``start_fed``: one read of the file,
see ``sending.Sender._send_read``); the pool hashes whatever that sender
does not (a range further in, the rest once it is ``release``d: the
reader left, or another client wants the digest at disk speed). A cold
50 GiB file costs minutes of CPU and disk, so every computation is:

* **bounded**: it runs on a pool of ``HASH_WORKERS`` threads of its own, not
  asyncio's default executor (which LIST scans and TLS reads use: six
  hung-up GETs there once froze listings for minutes);
* **shared**: one computation per file, whoever asks; its result is kept
  even when the client that started it has gone, so the next one is free;
* **stoppable**: checked between 1 MiB chunks, so ``stop()`` ends it within
  milliseconds (Python's exit joins pool threads: an unstoppable hash made
  SIGTERM wait for the whole file).

The key is (device, inode, size, mtime_ns, ctime_ns): ``rsync -t --inplace``
or ``touch -r`` can rewrite a file keeping its size and mtime, but never its
ctime.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections import OrderedDict

import blake3

from getfile_core.digest import CHUNK, format_digest, new_hasher

#: Threads hashing at once, whatever the number of clients: each reads one
#: file at disk speed; more would only make the disks seek.
HASH_WORKERS = 2
#: Files this small are hashed inline on the event loop (well under a millisecond).
INLINE_LIMIT = 256 * 1024

Key = tuple[int, int, int, int, int]


def file_key(info: os.stat_result) -> Key:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class HashStopped(Exception):
    """The server stopped (or the file vanished) before the hash finished."""


class Computation:
    """One file being hashed: its progress, its result, its stop switch."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd  # a private duplicate, closed by the worker
        self.size = size
        self.hashed = 0
        self.stop = threading.Event()
        self.future: asyncio.Future[str] | None = None
        #: The sender feeds this computation the bytes it sends (on the event
        #: loop) until it is released; then the pool hashes whatever is left.
        self.fed = False
        self.hasher: blake3.blake3 | None = None
        self._lock = threading.Lock()
        self._started = False

    def feed(self, data: memoryview) -> None:
        """Hash the next bytes of the file, read by the sender (event loop only)."""
        assert self.fed and self.hasher is not None
        self.hasher.update(data)
        self.hashed += len(data)

    def close_if_never_run(self) -> None:
        """Close the descriptor of a computation the pool dropped before running it."""
        with self._lock:
            if self._started:
                return
            self._started = True
        os.close(self.fd)

    def run(self) -> str:
        with self._lock:
            if self._started:
                raise HashStopped("hashing stopped before it began")
            self._started = True
        try:
            hasher = self.hasher if self.hasher is not None else new_hasher()
            buffer = bytearray(min(CHUNK, max(self.size - self.hashed, 1)))
            view = memoryview(buffer)
            while self.hashed < self.size:
                if self.stop.is_set():
                    raise HashStopped("hashing stopped")
                want = min(len(buffer), self.size - self.hashed)
                got = os.preadv(self.fd, [view[:want]], self.hashed)
                if got <= 0:
                    raise OSError(f"file shrank while hashing ({self.hashed} of {self.size} bytes)")
                hasher.update(view[:got])
                self.hashed += got
            return format_digest(hasher)
        finally:
            os.close(self.fd)


class DigestCache:
    """Digests of recently served files, and the computations still running."""

    def __init__(self, max_entries: int = 4096, workers: int = HASH_WORKERS) -> None:
        self._done: OrderedDict[Key, str] = OrderedDict()
        self._pending: dict[Key, Computation] = {}
        self._max = max_entries
        self._workers = workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def known(self, info: os.stat_result) -> str | None:
        """The digest if it is cached (a small file not yet hashed is ``None`` too)."""
        key = file_key(info)
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        return None

    def is_quick(self, info: os.stat_result) -> bool:
        """Whether ``digest`` answers without waiting for a worker (cached, or a small file)."""
        return info.st_size <= INLINE_LIMIT or file_key(info) in self._done

    def start(self, fd: int, info: os.stat_result) -> Computation:
        """The computation for this file, started now unless one is already running."""
        key = file_key(info)
        running = self._pending.get(key)
        if running is not None:
            if running.fed:  # another client waits: hash at disk speed, not its reader's
                self.release(running)
            return running
        # A private duplicate: the requester may close its descriptor (client
        # gone) while the hash still runs, and the result is still wanted.
        computation = Computation(os.dup(fd), info.st_size)
        future = asyncio.get_running_loop().run_in_executor(self._hash_pool(), computation.run)
        self._track(key, computation, future)
        return computation

    def start_fed(self, fd: int, info: os.stat_result) -> Computation:
        """Like ``start``, but the caller feeds the bytes it sends until ``release``.

        A first download reads each chunk once, hashes it and sends that same
        buffer, instead of ``sendfile`` plus a second ``pread`` pass on the pool.
        If a computation already runs for this file, that one is returned (not fed).
        """
        key = file_key(info)
        running = self._pending.get(key)
        if running is not None:
            return running
        computation = Computation(os.dup(fd), info.st_size)
        computation.fed, computation.hasher = True, new_hasher()
        self._track(key, computation, asyncio.get_running_loop().create_future())
        return computation

    def release(self, computation: Computation) -> None:
        """The feeder is done: finish the digest, or let the pool hash the rest."""
        if not computation.fed:
            return
        computation.fed = False
        outer = computation.future
        assert outer is not None and computation.hasher is not None
        if outer.done():  # stopped meanwhile
            return
        if computation.hashed >= computation.size:
            computation.close_if_never_run()
            outer.set_result(format_digest(computation.hasher))
            return
        try:
            inner = asyncio.get_running_loop().run_in_executor(self._hash_pool(), computation.run)
        except RuntimeError:  # the pool shut down: the server is stopping
            computation.close_if_never_run()
            outer.set_exception(HashStopped("hashing stopped"))
            return
        inner.add_done_callback(lambda f: _pass_on(f, outer, computation))

    def _hash_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers, thread_name_prefix="getfile-hash"
            )
        return self._pool

    def _track(self, key: Key, computation: Computation, future: asyncio.Future[str]) -> None:
        computation.future = future
        self._pending[key] = computation
        future.add_done_callback(lambda f, k=key, c=computation: self._finished(k, c, f))

    def _finished(self, key: Key, computation: Computation, future: asyncio.Future[str]) -> None:
        self._pending.pop(key, None)
        if future.cancelled():
            computation.close_if_never_run()
        elif future.exception() is None:
            self._remember(key, future.result())

    def _remember(self, key: Key, value: str) -> None:
        self._done[key] = value
        self._done.move_to_end(key)
        if len(self._done) > self._max:
            self._done.popitem(last=False)

    def progress(self, info: os.stat_result) -> int | None:
        """Bytes hashed so far of a running computation (None: none running)."""
        running = self._pending.get(file_key(info))
        return None if running is None else running.hashed

    async def digest(self, fd: int, info: os.stat_result) -> str:
        """The file's digest, waiting for (or starting) the shared computation."""
        value = self.known(info)
        if value is not None:
            return value
        if info.st_size <= INLINE_LIMIT:
            computation = Computation(os.dup(fd), info.st_size)
            value = computation.run()
            self._remember(file_key(info), value)
            return value
        future = self.start(fd, info).future
        assert future is not None
        # Shielded: a client that leaves stops waiting, not the computation.
        return await asyncio.shield(future)

    def stop(self) -> None:
        """Stop every computation at its next chunk, and the pool with them."""
        for computation in list(self._pending.values()):
            computation.stop.set()
            if computation.fed and computation.future is not None:
                computation.fed = False
                computation.close_if_never_run()
                if not computation.future.done():
                    computation.future.set_exception(HashStopped("hashing stopped"))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _pass_on(
    inner: asyncio.Future[str], outer: asyncio.Future[str], computation: Computation
) -> None:
    """The pool's result (or failure) becomes the shared computation's."""
    if inner.cancelled():
        computation.close_if_never_run()
    if outer.done():
        return
    if inner.cancelled():
        outer.set_exception(HashStopped("hashing stopped before it began"))
    elif inner.exception() is not None:
        outer.set_exception(inner.exception())
    else:
        outer.set_result(inner.result())
