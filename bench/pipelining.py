"""Many small files: one pipelined connection against one connection per file.

    python -m bench.pipelining [--files 2000] [--size 4096] [--rounds 5]

Starts ``getfile serve`` on a fresh tree (FILES files of SIZE bytes in 20
folders) as its own process, then, interleaved round by round, fetches every
file with a raw client in three ways: one connection per file one after the
other, the same on 8 threads, and every request pipelined on kept
connections (version 2 ``keep``; a new connection when the server's
per-connection quota runs out). Every body is checked against the file's
BLAKE3 digest. Prints the medians as a Markdown table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import blake3

from bench.stats import spread, table
from getfile_core import protocol
from getfile_core.protocol import Request, Response, Verb

FOLDERS = 20


def make_tree(root: Path, files: int, size: int) -> dict[bytes, str]:
    """FILES random files under root/dNN/; their digests by request path."""
    digests = {}
    for n in range(files):
        folder = root / f"d{n % FOLDERS:02d}"
        folder.mkdir(exist_ok=True)
        data = os.urandom(size)
        (folder / f"f{n:05d}.bin").write_bytes(data)
        digests[f"d{n % FOLDERS:02d}/f{n:05d}.bin".encode()] = (
            "blake3:" + blake3.blake3(data).hexdigest()
        )
    return digests


def start_server(root: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "getfile_core", "serve", str(root), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"getfile://[^:]+:(\d+)/", line)
        if match:
            # Keep draining the access log so the server never blocks on it.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(match[1])
    raise RuntimeError("the server printed no start-up line")


# ---------------------------------------------------------------- the clients


def _read_answer(sock: socket.socket, conn: protocol.ClientConnection) -> tuple[Response, bytes]:
    head: Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is protocol.NEED_DATA:
            conn.receive_data(sock.recv(256 * 1024))
        elif isinstance(event, Response):
            head = event
        elif isinstance(event, protocol.Data):
            body += event.data
        elif isinstance(event, protocol.EndOfMessage):
            assert head is not None
            return head, bytes(body)
        elif isinstance(event, protocol.ConnectionClosed):
            raise ConnectionError("closed between answers")


def _check(path: bytes, head: Response, body: bytes, digests: dict[bytes, str]) -> None:
    digest = "blake3:" + blake3.blake3(body).hexdigest()
    if head.status is not protocol.Status.OK or digest != digests[path] != head.digest:
        raise AssertionError(f"{path!r}: {head.status} or a wrong body")


def one_connection_each(port: int, paths: list[bytes], digests: dict[bytes, str]) -> None:
    for path in paths:
        _fetch_alone(port, path, digests)


def _fetch_alone(port: int, path: bytes, digests: dict[bytes, str]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        conn = protocol.ClientConnection(Request(Verb.GET, path, version=2))
        sock.sendall(conn.request_bytes())
        head, body = _read_answer(sock, conn)
        _check(path, head, body, digests)


def one_connection_each_8_threads(port: int, paths: list[bytes], digests: dict[bytes, str]) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(_fetch_alone, port, p, digests) for p in paths]:
            future.result()


def pipelined(port: int, paths: list[bytes], digests: dict[bytes, str]) -> None:
    """Every request on kept connections, a new one whenever the server's quota runs out."""
    left = list(paths)
    while left:
        left = _pipeline_on_one(port, left, digests)


def _pipeline_on_one(port: int, paths: list[bytes], digests: dict[bytes, str]) -> list[bytes]:
    """Fetch what one connection takes; return the paths still to fetch."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        conn = protocol.ClientConnection(Request(Verb.GET, paths[0], version=2, keep=True))
        sock.sendall(conn.request_bytes())
        head, body = _read_answer(sock, conn)
        _check(paths[0], head, body, digests)
        rest = paths[1 : 1 + conn.can_pipeline]
        wire = b"".join(conn.pipeline(Request(Verb.GET, p, version=2, keep=True)) for p in rest)
        # Write while reading: the answers could fill the buffers before the
        # requests are all sent, and neither side would read.
        writer = threading.Thread(target=sock.sendall, args=(wire,))
        writer.start()
        for path in rest:
            head, body = _read_answer(sock, conn)
            _check(path, head, body, digests)
        writer.join()
    return paths[1 + len(rest) :]


CLIENTS: dict[str, Callable[[int, list[bytes], dict[bytes, str]], None]] = {
    "one connection per file": one_connection_each,
    "one connection per file, 8 threads": one_connection_each_8_threads,
    "pipelined (kept connections)": pipelined,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipelining", description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="getfile-pipelining-") as folder:
        root = Path(folder)
        digests = make_tree(root, args.files, args.size)
        paths = sorted(digests)
        proc, port = start_server(root)
        try:
            for client in CLIENTS.values():  # a warm-up: page cache and digest cache
                client(port, paths[:50], digests)
            times: dict[str, list[float]] = {name: [] for name in CLIENTS}
            for _ in range(args.rounds):
                for name, client in CLIENTS.items():
                    began = time.perf_counter()
                    client(port, paths, digests)
                    times[name].append(time.perf_counter() - began)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    base = sorted(times["one connection per file"])[len(times["one connection per file"]) // 2]
    rows = []
    for name, values in times.items():
        middle = sorted(values)[len(values) // 2]
        rows.append(
            [
                name,
                spread(values, 2),
                f"{args.files / middle:.0f}",
                f"{base / middle:.1f}x",
            ]
        )
    print(
        f"{args.files} files of {args.size} B over loopback, {args.rounds} interleaved rounds, "
        "every body verified"
    )
    print(table(["client", "seconds, median (min-max)", "files/s", "vs one per file"], rows))


if __name__ == "__main__":
    main()
