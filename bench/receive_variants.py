"""Receive strategies side by side: CPU seconds per GiB and MB/s of one client process.

Throwaway-sized, kept so each figure in docs/performance.md ("What was tried")
can be measured again on another machine. One minimal sendfile server (legacy
request), then for each round every variant in its own process, interleaved;
each variant copies the whole file into a fresh file under OUT and hashes it
with BLAKE3 (except ``plain``), and reports its own ``getrusage`` and wall time.

    python -m bench.receive_variants FILE OUT [--rounds 5] [--variants a b ...]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import blake3

from bench.peers import MINIMAL_SERVER, PYTHON
from bench.stats import median
from getfile_core.digest import hash_written

KiB = 1024
MiB = 1024 * KiB


def _connect(port: int, name: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(name.encode() + b"\n")
    return sock


def plain(sock: socket.socket, fd: int, size: int) -> str:
    view = memoryview(bytearray(MiB))
    while count := sock.recv_into(view):
        os.write(fd, view[:count])
    return ""


def recv_hash(buffer: int, *, hash_first: bool = False, lowat: int = 0, threads: int = 1):
    """``recv_into`` + write + hash; ``hash_first`` swaps the last two, ``lowat`` sets
    ``SO_RCVLOWAT`` (each recv waits for that many bytes: fewer, larger calls),
    ``threads`` is BLAKE3's own ``max_threads`` (-1: ``AUTO``)."""

    def run(sock: socket.socket, fd: int, size: int) -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if threads < 0 else threads)
        view = memoryview(bytearray(buffer))
        if lowat:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
        while count := sock.recv_into(view):
            chunk = view[:count]
            if hash_first:
                hasher.update(chunk)
                os.write(fd, chunk)
            else:
                os.write(fd, chunk)
                hasher.update(chunk)
        return hasher.hexdigest()

    return run


def recv_fill_hash(buffer: int):
    """Fill the buffer (several recv_into) before one write and one hash: fewer, larger calls."""

    def run(sock: socket.socket, fd: int, size: int) -> str:
        hasher = blake3.blake3()
        view = memoryview(bytearray(buffer))
        while True:
            filled = 0
            while filled < buffer:
                count = sock.recv_into(view[filled:])
                if not count:
                    break
                filled += count
            if not filled:
                break
            chunk = view[:filled]
            os.write(fd, chunk)
            hasher.update(chunk)
            if filled < buffer:
                break
        return hasher.hexdigest()

    return run


def _splice_windows(sock: socket.socket, fd: int, window: int, on_window, pipe: int = MiB) -> None:
    """Splice the socket into ``fd`` through a pipe; ``on_window(start, end)`` per window."""
    pipe_out, pipe_in = os.pipe2(os.O_CLOEXEC)
    fcntl.fcntl(pipe_in, fcntl.F_SETPIPE_SZ, pipe)
    position = hashed = 0
    while count := os.splice(sock.fileno(), pipe_in, pipe):
        moved = 0
        while moved < count:
            moved += os.splice(pipe_out, fd, count - moved)
        position += count
        if position - hashed >= window:
            on_window(hashed, position)
            hashed = position
    on_window(hashed, position)


def splice_pread(window: int, piece: int | None = None, pipe: int = MiB):
    """Splice, and every ``window`` read back and hash in ``piece``-sized preads."""

    def run(sock: socket.socket, fd: int, size: int) -> str:
        hasher = blake3.blake3()
        buf = memoryview(bytearray(piece or window))
        _splice_windows(
            sock, fd, window, lambda a, b: hash_written(fd, a, b, hasher, buf), pipe=pipe
        )
        return hasher.hexdigest()

    return run


def splice_thread(window: int):
    """Splice in this thread; a second thread trails it, reading back and hashing each window."""

    def run(sock: socket.socket, fd: int, size: int) -> str:
        hasher = blake3.blake3()
        ranges: queue.Queue = queue.Queue(maxsize=8)

        def hash_loop() -> None:
            buf = memoryview(bytearray(window))
            while (item := ranges.get()) is not None:
                hash_written(fd, item[0], item[1], hasher, buf)

        worker = threading.Thread(target=hash_loop)
        worker.start()
        _splice_windows(sock, fd, window, lambda a, b: ranges.put((a, b)))
        ranges.put(None)
        worker.join()
        return hasher.hexdigest()

    return run


def recv_thread_hash(buffer: int, slots: int = 4):
    """recv_into a ring of buffers; a second thread hashes each one after it is written."""

    def run(sock: socket.socket, fd: int, size: int) -> str:
        hasher = blake3.blake3()
        ring = [memoryview(bytearray(buffer)) for _ in range(slots)]
        free: queue.Queue = queue.Queue()
        full: queue.Queue = queue.Queue()
        for view in ring:
            free.put(view)

        def hash_loop() -> None:
            while (item := full.get()) is not None:
                view, count = item
                hasher.update(view[:count])
                free.put(view)

        worker = threading.Thread(target=hash_loop)
        worker.start()
        while True:
            view = free.get()
            count = sock.recv_into(view)
            if not count:
                break
            os.write(fd, view[:count])
            full.put((view, count))
        full.put(None)
        worker.join()
        return hasher.hexdigest()

    return run


VARIANTS = {
    "plain": plain,
    "recv-64k": recv_hash(64 * KiB),
    "recv-128k": recv_hash(128 * KiB),
    "recv-256k": recv_hash(256 * KiB),
    "recv-512k": recv_hash(512 * KiB),
    "recv-1m": recv_hash(MiB),
    "recv-2m": recv_hash(2 * MiB),
    "recv-1m-hash-first": recv_hash(MiB, hash_first=True),
    "recv-1m-mt2": recv_hash(MiB, threads=2),
    "recv-2m-mt2": recv_hash(2 * MiB, threads=2),
    "recv-1m-mtauto": recv_hash(MiB, threads=-1),
    "recv-256k-hash-first": recv_hash(256 * KiB, hash_first=True),
    "recv-512k-hash-first": recv_hash(512 * KiB, hash_first=True),
    "recv-1m-lowat-256k": recv_hash(MiB, lowat=256 * KiB),
    "recv-1m-lowat-512k": recv_hash(MiB, lowat=512 * KiB),
    "recv-512k-lowat-256k": recv_hash(512 * KiB, lowat=256 * KiB),
    "fill-256k": recv_fill_hash(256 * KiB),
    "fill-1m": recv_fill_hash(MiB),
    "splice-2m": splice_pread(2 * MiB),
    "splice-256k": splice_pread(256 * KiB),
    "splice-2m-512k": splice_pread(2 * MiB, 512 * KiB),
    "splice-2m-512k-pipe256k": splice_pread(2 * MiB, 512 * KiB, 256 * KiB),
    "splice-2m-512k-pipe4m": splice_pread(2 * MiB, 512 * KiB, 4 * MiB),
    "thread-256k": recv_thread_hash(256 * KiB),
    "thread-1m": recv_thread_hash(MiB),
    "splice-thread-2m": splice_thread(2 * MiB),
}


def child(variant: str, port: int, name: str, out: str) -> None:
    fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    began = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    sock = _connect(port, name)
    digest = VARIANTS[variant](sock, fd, 0)
    os.close(fd)
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - began
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{wall:.4f} {cpu:.4f} {digest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2], args.child[3])
        return
    size = args.file.stat().st_size
    expected = blake3.blake3(args.file.read_bytes()).hexdigest()
    server = subprocess.Popen(
        [PYTHON, str(MINIMAL_SERVER), str(args.file.parent), "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline().split()[-1])
        walls: dict[str, list[float]] = {v: [] for v in args.variants}
        cpus: dict[str, list[float]] = {v: [] for v in args.variants}
        for round_ in range(args.rounds + 1):
            order = args.variants[round_ % len(args.variants) :]
            order += args.variants[: round_ % len(args.variants)]
            for variant in order:
                out = args.out / f"variant-{variant}"
                argv = [PYTHON, "-m", "bench.receive_variants", "x", "x", "--child"]
                argv += [variant, str(port), args.file.name, str(out)]
                line = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                wall, cpu, digest = [*line.split(), ""][:3]
                out.unlink()
                if digest and digest != expected:
                    sys.exit(f"{variant}: wrong digest")
                if round_:  # round 0 warms up
                    walls[variant].append(float(wall))
                    cpus[variant].append(float(cpu))
        gib = size / 2**30
        print(f"{size / MiB:g} MiB, {args.rounds} rounds, load {os.getloadavg()[0]:.2f}")
        print("| variant | CPU s/GiB median (min) | MB/s median (max) |")
        print("|---|---|---|")
        for variant in args.variants:
            cpu = [c / gib for c in cpus[variant]]
            rates = [size / 1e6 / w for w in walls[variant]]
            print(
                f"| {variant} | {median(cpu):.3f} ({min(cpu):.3f}) "
                f"| {median(rates):.0f} ({max(rates):.0f}) |"
            )
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
