"""Which receive path a large verified download takes here: tried on a real download, then kept.

Three ways to get a body into the file *and* hashed (``receive``), each
winning somewhere (``docs/performance.md``, issue 15):

- ``buffer``: ``recv_into`` a 1 MiB buffer, ``write`` it, hash it while it
  is still in cache. Two copies (socket -> buffer -> page cache), the second
  from L2. Cheapest in real downloads on both CPUs measured so far: this
  Xeon (AVX-512), 0.685 against 0.752 s of client CPU per GiB, and the
  issue's AVX2 EPYC, where the read-back below is the larger cost.
- ``splice``: socket -> pipe -> file inside the kernel (one copy), then the
  new pages are read back (``pread``) and hashed. Its one copy reads the
  sender's pages *and* writes new page cache, both missing the CPU cache;
  it wins where that copy is cheap (a source still in cache).
- ``splice-thread``: ``splice``, the read-back and hash in a second thread.
  More CPU in all, but off the copying thread's path: faster only where a
  core is idle (a remote sender on a 2-core client, or many cores).

Which wins depends on things no flag tells: the hash's speed against memory
bandwidth, where the sender's bytes sit, how the sender paces them, whether
a core is idle. The synthetic calibration this replaces (48 MiB from an
in-process ``sendfile`` thread) chose ``splice`` on this Xeon in every run,
while whole downloads from ``getfile serve`` chose ``buffer`` (and ran
1-12% faster with it): no stand-in sender tried reproduced a real one
(``docs/performance.md``). So the paths are compared on a real download:
the first verified body of ``TRIAL_BYTES`` or more is received in segments
that take turns (``trial``), each path's receiving thread timed on the same
stream from the same sender. The verdict is kept in
``platformdirs.user_cache_dir("getfile")/receive-verdicts.json`` for this
CPU model, kernel and blake3 version, apart for a sender on this machine
(``local``: it takes one of our cores) and elsewhere (``remote``). A trial
whose receiving thread mostly waited (a slow link, a rate limit) says
nothing about CPU cost and is not kept. Until a verdict, large bodies take
``buffer``, small ones ``splice``. ``GETFILE_RECEIVE=splice|buffer|splice-thread``
forces a path, ``GETFILE_RECEIVE=trial`` a new trial (tests, and anyone measuring).
"""

from __future__ import annotations

import _thread
import functools
import os
import socket
from pathlib import Path

SPLICE = "splice"
BUFFER = "buffer"
THREAD = "splice-thread"
CHOICES = (SPLICE, BUFFER, THREAD)
#: Not a path: "receive this body as a trial of every path" (``trial.TrialReceiver``).
TRIAL = "trial"
#: Bodies too small to read the cache for (at 1 and 64 MiB the paths measured the same).
DEFAULT = SPLICE
#: Large bodies before a verdict, and the path a trial's challengers must beat:
#: the cheaper one in whole downloads on both CPUs measured (this Xeon, issue 15's EPYC).
PRIOR = BUFFER
#: How much less CPU ``splice`` must spend in a trial to replace ``PRIOR``: alternating
#: 32 MiB segments here put splice up to 5% ahead in 3 of 18 trials, never more.
MARGIN = 0.10
#: Bodies at least this big use the kept verdict.
USE_FROM = 256 * 1024 * 1024
#: The trial: a warm-up segment, then ``ROUNDS`` rounds of one segment per path.
#: Segments alternating every 2-4 MiB measured ``splice`` cheaper, whole
#: downloads ``buffer`` (0.685 vs 0.752 s/GiB); from 32 MiB up, segments agree
#: with whole downloads (11 of 12 trials), as if each path needs to settle.
SEGMENT = 32 * 1024 * 1024
ROUNDS = 3
#: Bodies at least this big, without a verdict, are received as the trial (320 MiB).
TRIAL_BYTES = SEGMENT * (1 + ROUNDS * len(CHOICES))
#: How much faster (wall time, every round) the thread must be than the cheaper path.
THREAD_MARGIN = 0.10
#: The receiving thread must have been busy this share of the trial for it to count.
BUSY = 0.5
LOCAL = "local"
REMOTE = "remote"
CACHE_FILE = "receive-verdicts.json"  # "receive.json" held the old calibration's format
ENVIRONMENT = "GETFILE_RECEIVE"

_lock = _thread.allocate_lock()  # threading.Lock: a small download never imports threading
_chosen: dict[str, str] = {}  # place -> verdict, once read or tried in this process
_trying = False  # one trial at a time per process: concurrent ones would time each other


def choose(body_size: int | None, place: str = REMOTE) -> str:
    """The receive path for a verified body of ``body_size`` bytes (None: unknown).

    ``TRIAL`` means: no verdict yet for this machine and ``place``; receive
    this body as the trial (the caller then reports with ``settle``).
    """
    global _trying
    forced = os.environ.get(ENVIRONMENT, "")
    if forced in CHOICES:
        return forced
    if forced == TRIAL:
        with _lock:
            if not _trying:
                _trying = True
                return TRIAL
        return PRIOR
    if body_size is None or body_size < USE_FROM:
        return DEFAULT  # not worth even reading the cache (json, platformdirs: ~4 ms of start-up)
    with _lock:  # once per process and place: the cache file read (or the trial) included
        if place not in _chosen:
            kept = _load(place)
            if kept is not None:
                _chosen[place] = kept
        if place in _chosen:
            return _chosen[place]
        if _trying or body_size < TRIAL_BYTES:
            return PRIOR
        _trying = True
        return TRIAL


def settle(place: str, figures: dict | None) -> str | None:
    """End this process's trial: keep the verdict from ``figures`` (None: it did not finish)."""
    global _trying
    choice = prefer(figures) if figures is not None else None
    with _lock:
        _trying = False
        if choice is not None:
            _chosen[place] = choice
    if choice is not None:
        _keep(place, choice, figures)
    return choice


def prefer(figures: dict) -> str | None:
    """The verdict from a trial's per-round figures, or None if the trial proves nothing.

    ``figures``: ``{"cpu": {path: [s/GiB, one per round]}, "wall": {...}}``,
    CPU of the receiving thread. ``splice`` against ``buffer`` by their total
    CPU over the rounds (equal bytes each), less by ``MARGIN``; the thread by
    wall time, faster by ``THREAD_MARGIN`` in *every* round, since what it
    buys is time, paid in CPU.
    """
    cpu, wall = figures["cpu"], figures["wall"]
    spent = sum(cpu[SPLICE]) + sum(cpu[BUFFER])
    took = sum(wall[SPLICE]) + sum(wall[BUFFER])
    if not cpu[SPLICE] or took <= 0 or spent / took < BUSY:
        return None  # the receiver mostly waited for the link: no CPU verdict
    best = SPLICE if sum(cpu[SPLICE]) < sum(cpu[BUFFER]) * (1 - MARGIN) else BUFFER
    pairs = list(zip(wall[THREAD], wall[best], strict=True))
    faster = pairs and all(thread < other * (1 - THREAD_MARGIN) for thread, other in pairs)
    return THREAD if faster else best


def place_of(sock: socket.socket) -> str:
    """``local`` when the sender runs on this machine (it shares our cores), else ``remote``."""
    try:
        here, there = sock.getsockname()[0], sock.getpeername()[0]
    except (OSError, IndexError, TypeError):
        return REMOTE
    there = there.removeprefix("::ffff:")
    return LOCAL if there == here or there.startswith("127.") or there == "::1" else REMOTE


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


def kept_verdicts() -> dict:
    """This machine's kept verdicts (``{place: {"choice": ..., ...}}``); {} if none or damaged."""
    import json

    try:
        kept = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("machine") != machine_key():
        return {}
    return {place: kept[place] for place in (LOCAL, REMOTE) if isinstance(kept.get(place), dict)}


def _load(place: str) -> str | None:
    choice = kept_verdicts().get(place, {}).get("choice")
    return choice if choice in CHOICES else None


def _keep(place: str, choice: str, figures: dict) -> None:
    """Write the verdict beside the other place's (atomically; a read-only home keeps nothing)."""
    import contextlib
    import json
    import tempfile

    record = {"machine": machine_key(), **kept_verdicts()}
    record[place] = {"choice": choice, "trial_seconds_per_gib": figures}
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".receive-")
    except OSError:
        return  # a read-only home: tried again by the next process, still correct meanwhile
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(record, out)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
