"""Many clients at once from one process: every body hashed, every latency kept.

Run as a subprocess by ``bench.concurrency`` so its CPU is accounted apart
from the bench's own. It speaks the extended request (and checks the head:
status, size, announced digest) or the legacy one, hashes every body with
BLAKE3 and compares it with the source's hash, and prints one JSON object:
``{"latencies": [...], "errors": [...], "wall": s}``.

    python -m bench.load PORT PATH SIZE HASH CLIENTS extended|legacy
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

import blake3

from getfile_core import protocol
from getfile_core.protocol import Request, Status, Verb

#: One receive buffer for all connections: the loop runs one callback at a
#: time and each callback hashes what arrived before the next receive.
SHARED = bytearray(256 * 1024)


class Fetch(asyncio.BufferedProtocol):
    """One download; the head is kept as bytes and parsed after the clock stops.

    The load generator shares the machine with the server it measures, so
    it does as little as it can while transfers run: split off the head,
    hash the body. Checking the head waits until every client is done.
    """

    def __init__(self, request: bytes, extended: bool, done: asyncio.Future[bytes]) -> None:
        self.request = request
        self.pending: bytearray | None = bytearray() if extended else None
        self.head = b""
        self.hasher = blake3.blake3()
        self.received = 0
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(SHARED)

    def buffer_updated(self, nbytes: int) -> None:
        data = memoryview(SHARED)[:nbytes]
        if self.pending is not None:
            if not self.pending and (end := SHARED.find(b"\n\n", 0, nbytes)) >= 0:
                self.head, data = bytes(data[:end]), data[end + 2 :]  # the usual case: no copy
            else:  # the head came in pieces
                self.pending += data
                end = self.pending.find(b"\n\n")
                if end < 0:
                    return
                self.head, data = bytes(self.pending[:end]), memoryview(self.pending)[end + 2 :]
            self.pending = None
        self.hasher.update(data)
        self.received += len(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is not None:
            self.done.set_exception(exc)
        else:
            self.done.set_result(b"")


async def one(port: int, path: str, size: int, extended: bool) -> tuple[float, Fetch]:
    loop = asyncio.get_running_loop()
    request = (
        protocol.encode_request(Request(Verb.GET, path.encode()))
        if extended
        else path.encode() + b"\n"
    )
    began = time.perf_counter()
    done: asyncio.Future[bytes] = loop.create_future()
    transport, fetch = await loop.create_connection(
        lambda: Fetch(request, extended, done), "127.0.0.1", port
    )
    try:
        await done
    finally:
        transport.close()
    return time.perf_counter() - began, fetch


def check(fetch: Fetch, size: int, digest: str, extended: bool) -> None:
    """Raise unless the client got the whole file, and (extended) a truthful head."""
    if extended:
        if not fetch.head:
            raise RuntimeError("no head")
        response = protocol.parse_response_head(fetch.head)
        if response.status is not Status.OK:
            raise RuntimeError(f"answer: {response.status.token}")
        if response.size != size or response.digest != f"blake3:{digest}":
            raise RuntimeError("head announces a different size or digest")
    if fetch.received != size:
        raise RuntimeError(f"received {fetch.received} of {size} bytes")
    if fetch.hasher.hexdigest() != digest:
        raise RuntimeError("body differs from the source")


async def main(argv: list[str]) -> dict[str, object]:
    port, path, size, digest, clients, mode = argv
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = int(clients) + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    began = time.perf_counter()
    extended = mode == "extended"
    jobs = [
        asyncio.wait_for(one(int(port), path, int(size), extended), 120)
        for _ in range(int(clients))
    ]
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    wall = time.perf_counter() - began
    latencies, errors = [], []
    for outcome in outcomes:
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            seconds, fetch = outcome
            check(fetch, int(size), digest, extended)
            latencies.append(seconds)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")
    return {"latencies": latencies, "errors": errors, "wall": wall}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))))
