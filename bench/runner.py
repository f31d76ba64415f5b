"""Run one client process, timed from spawn to exit, and check what it received."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import blake3

from bench.machine import prefault
from bench.peers import child_environment, peak_rss_mib

MiB = 1024 * 1024


@dataclass(frozen=True)
class Timed:
    """One whole-process run: wall seconds, peak RSS, and what went wrong if anything."""

    seconds: float
    peak_rss_mib: float
    error: str = ""
    #: The client's user + system CPU seconds (``wait4``): on a shared machine the
    #: steadiest figure, since other work moves wall time far more than CPU time.
    cpu_seconds: float = 0.0


def run_timed(argv: list[str], cwd: Path | None = None, warm: int = 0) -> Timed:
    """Spawn ``argv`` and wait for it; ``warm`` bytes of memory are prefaulted first."""
    if warm:
        prefault(warm)
    errors = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-stderr-{os.getpid()}"
    with open(errors, "w+b") as stderr:
        began = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        peak = _RssWatch(process.pid)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        peak.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        message = stderr.read().decode(errors="replace").strip()
    errors.unlink(missing_ok=True)
    error = "" if process.returncode == 0 else f"exit {process.returncode}: {message[-300:]}"
    return Timed(seconds, peak.mib, error, usage.ru_utime + usage.ru_stime)


class _RssWatch:
    """Samples a child's VmHWM every few ms while it runs.

    ``wait4``'s ru_maxrss cannot be used: a child spawned by this (large,
    prefaulted) process inherits the parent's high-water mark at exec.
    VmHWM is itself a peak, so sampling misses only the last few ms.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mib = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopped.wait(0.005):
            value = peak_rss_mib(self.pid)
            if value is not None:
                self.mib = max(self.mib, value)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(1)


def file_hash(path: Path) -> str:
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    if path.stat().st_size:
        hasher.update_mmap(path)
    return hasher.hexdigest()


def verify(received: Path, size: int, expected: str) -> str:
    """Empty when ``received`` is byte for byte the source (same size, same BLAKE3)."""
    if not received.exists():
        return "no file received"
    if received.stat().st_size != size:
        return f"received {received.stat().st_size} bytes of {size}"
    if file_hash(received) != expected:
        return "received bytes differ from the source"
    return ""


def source_file(folder: Path, size: int) -> tuple[str, str]:
    """A file of ``size`` random bytes (made once, reused); returns its name and hash."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"random-{size // MiB}MiB.bin" if size % MiB == 0 else f"random-{size}B.bin"
    path = folder / name
    if not path.exists() or path.stat().st_size != size:
        partial = path.with_suffix(".tmp")
        with open(partial, "wb") as out:
            left = size
            while left:
                block = os.urandom(min(left, 16 * MiB))
                out.write(block)
                left -= len(block)
        partial.replace(path)
    return name, file_hash(path)


def clear(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        entry.unlink()
