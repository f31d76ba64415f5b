"""Which receive path a verified download takes on this machine: measured once, then kept.

Two ways to get a body into the file *and* hashed, each winning on some CPUs
(``docs/performance.md``):

- ``splice``: socket -> pipe -> file inside the kernel (one copy), then the
  new pages are read back (``pread``) and hashed. On the project's Xeon
  (AVX-512, BLAKE3 ~7 GB/s) it cost 0.71 s of client CPU per GiB against
  0.78 for ``buffer``.
- ``buffer``: ``recv_into`` a 1 MiB buffer, ``write`` it, hash it while it
  is still in cache. Where hashing is slower (AVX2: BLAKE3 ~2.8 GB/s, issue
  15) the read-back of the page cache is the larger cost, and this wins.
- ``splice-thread``: ``splice``, with the read-back and hash in a second
  thread trailing the copy. More CPU in all, but off the copying thread's
  path: faster only where a core is idle (on the 2-core VM it is not).

``splice`` and ``buffer`` are compared by the receiving thread's CPU time
(other processes' load moves it less than wall time); ``splice-thread`` by
wall time against the winner, since what it buys is time, paid in CPU: it
must be faster in every round, by the same margin.

Which one is faster depends on the CPU's hash speed against its memory
bandwidth, so it is not guessed from flags: the first large verified
download (``CALIBRATE_FROM`` bytes or more) runs both over a loopback TCP
connection inside this process (``CALIBRATION_BYTES`` each, three times, ~0.3-1 s)
and compares them as below; a challenger must win by ``MARGIN``. The answer is kept in
``platformdirs.user_cache_dir("getfile")/receive.json`` for this CPU model,
kernel and blake3 version; until then, and for small files, ``splice``.
``GETFILE_RECEIVE=splice|buffer`` overrides it (tests, and anyone measuring).
"""

from __future__ import annotations

import _thread
import functools
import os
import socket
import time
from pathlib import Path

from getfile_core.errors import GetfileError

SPLICE = "splice"
BUFFER = "buffer"
THREAD = "splice-thread"
CHOICES = (SPLICE, BUFFER, THREAD)
#: Bodies at least this big use (and if needed, first measure) the machine's choice.
CALIBRATE_FROM = 256 * 1024 * 1024
#: Bytes each path receives per calibration round (two rounds each, alternating).
CALIBRATION_BYTES = 48 * 1024 * 1024
#: How much cheaper (CPU) ``buffer`` must measure to be chosen over ``splice``.
MARGIN = 0.10
#: The sender's file, sent over and over (page-cached, like a server's repeat download).
SOURCE_BYTES = 8 * 1024 * 1024
CACHE_FILE = "receive.json"
ENVIRONMENT = "GETFILE_RECEIVE"

_lock = _thread.allocate_lock()  # threading.Lock: a small download never imports threading
_chosen: str | None = None


def choose(body_size: int | None) -> str:
    """The receive path for a verified body of ``body_size`` bytes (None: unknown)."""
    forced = os.environ.get(ENVIRONMENT, "")
    if forced in CHOICES:
        return forced
    if body_size is None or body_size < CALIBRATE_FROM:
        return SPLICE  # not worth even reading the cache (json, platformdirs: ~4 ms of start-up)
    global _chosen
    with _lock:  # once per process: the cache file read (or the calibration) included
        if _chosen is None:
            _chosen = _load() or _calibrate_and_keep()
        return _chosen


@functools.cache
def machine_key() -> str:
    """What the answer depends on: the CPU, the kernel, the hash's implementation."""
    import platform

    import blake3

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    version = getattr(blake3, "__version__", "?")
    return f"{model} | {platform.release()} | blake3 {version}"


def cache_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("getfile")) / CACHE_FILE


def _load() -> str | None:
    import json

    try:
        kept = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("machine") != machine_key():
        return None
    choice = kept.get("choice")
    return choice if choice in CHOICES else None


def _calibrate_and_keep() -> str:
    import json
    import tempfile

    try:
        costs = calibrate()
    except (OSError, GetfileError):
        return SPLICE  # not written down: the next process measures again
    choice = prefer(costs)
    record = {"machine": machine_key(), "choice": choice, "seconds_per_gib": costs}
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".receive-")
        with os.fdopen(fd, "w") as out:
            json.dump(record, out)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home: measured again next time, still correct
    return choice


def prefer(measured: dict) -> str:
    """From ``calibrate``'s figures: a challenger must win by ``MARGIN`` (less is noise)."""
    cpu, rounds = measured["cpu"], measured["rounds"]
    best = BUFFER if cpu[BUFFER] < cpu[SPLICE] * (1 - MARGIN) else SPLICE
    # Wall time is what other work moves most: the thread must win every round.
    pairs = list(zip(rounds[THREAD], rounds[best], strict=True))
    faster = pairs and all(thread < other * (1 - MARGIN) for thread, other in pairs)
    return THREAD if faster else best


def calibrate(nbytes: int | None = None, rounds: int = 3) -> dict:
    """Seconds per GiB per path: ``cpu`` (receiving thread) and ``wall``, the best of
    ``rounds``, and ``rounds``: each round's wall time, per path."""
    nbytes = nbytes or CALIBRATION_BYTES
    import tempfile

    cpu = dict.fromkeys(CHOICES, float("inf"))
    wall = dict.fromkeys(CHOICES, float("inf"))
    walls: dict[str, list[float]] = {choice: [] for choice in CHOICES}
    where = _scratch_dir()
    with tempfile.TemporaryFile(dir=where) as source:
        os.write(source.fileno(), os.urandom(SOURCE_BYTES))
        for round_ in range(rounds):
            shift = round_ % len(CHOICES)  # none always first
            for choice in CHOICES[shift:] + CHOICES[:shift]:
                with tempfile.TemporaryFile(dir=where) as scratch:  # fresh, as a download's
                    spent, took = _one_run(choice, source.fileno(), scratch.fileno(), nbytes)
                cpu[choice] = min(cpu[choice], spent * 2**30 / nbytes)
                wall[choice] = min(wall[choice], took * 2**30 / nbytes)
                walls[choice].append(took * 2**30 / nbytes)
    return {"cpu": cpu, "wall": wall, "rounds": walls}


def _scratch_dir() -> str | None:
    """Beside the cache (the user's disk, like downloads), else the system's temp folder."""
    try:
        folder = cache_path().parent
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    except OSError:
        return None


def _one_run(choice: str, source: int, fd: int, nbytes: int) -> tuple[float, float]:
    """Receive ``nbytes`` from a ``sendfile`` thread over loopback: (thread CPU s, wall s).

    As from a getfile server: the sender's pages come from the page cache,
    and the receiver writes a new file.
    """
    import threading  # not at the top: a small download never loads it

    from getfile_core.client.receive import (
        BufferReceiver,
        SpliceReceiver,
        ThreadedSpliceReceiver,
    )
    from getfile_core.digest import new_hasher

    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = socket.create_connection(listener.getsockname(), timeout=10)
        listener.settimeout(10)
        conn, _ = listener.accept()
    sender = threading.Thread(target=_send, args=(conn, source, nbytes), daemon=True)
    sender.start()
    with sock:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _ten_seconds())
        kinds = {SPLICE: SpliceReceiver, BUFFER: BufferReceiver, THREAD: ThreadedSpliceReceiver}
        receiver = kinds[choice](sock, fd, new_hasher(), lambda: None)
        began, started = time.thread_time(), time.perf_counter()
        try:
            got = 0
            while got < nbytes and (count := receiver.receive(nbytes - got)):
                got += count
            receiver.finish()
        finally:
            receiver.close()
        spent, took = time.thread_time() - began, time.perf_counter() - started
    sender.join(10)
    if got < nbytes:
        raise OSError("calibration: the loopback sender stopped early")
    return spent, took


def _send(conn: socket.socket, source: int, nbytes: int) -> None:
    with conn:
        sent = 0
        try:
            while sent < nbytes:
                offset = sent % SOURCE_BYTES
                count = min(nbytes - sent, SOURCE_BYTES - offset)
                sent += os.sendfile(conn.fileno(), source, offset, count)
        except OSError:
            return


def _ten_seconds() -> bytes:
    import struct

    return struct.pack("ll", 10, 0)
