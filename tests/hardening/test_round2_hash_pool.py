"""Hashes that never end cannot starve listings (issue 10 #2, the shared-pool part).

Before, a file's hash ran on asyncio's default executor, which also runs
every LIST scan (and, with TLS, every file read): six GETs of never-hashed
files, each client hanging up at once, held all of its threads (2 cores:
six workers) and every listing waited for minutes. Now hashes have their own
small pool, so however many are queued, a LIST is answered at once and at
most that pool's few hashes run at a time.

The hash is held in-process: every hasher waits on a gate the test opens at
the end, so "a hash is still running" is a state, not a timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from getfile_core import protocol
from getfile_core.protocol import Request, Response, Status, Verb
from getfile_core.server import digests as digests_module
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import extended_get, wait_until

FILES = 8  # more than the default executor's six workers on two cores
SIZE = 8 * 1024 * 1024  # far above the inline-hash limit: hashed by a worker


class HeldHashers:
    """Hashers that block in ``update`` until ``gate`` is set; counts those blocked."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def __call__(self) -> _HeldHasher:
        return _HeldHasher(self)


class _HeldHasher:
    def __init__(self, held: HeldHashers) -> None:
        self._held = held
        self._inner = blake3.blake3()

    def update(self, data: memoryview) -> None:
        held = self._held
        with held.lock:
            held.running += 1
            held.most_at_once = max(held.most_at_once, held.running)
        try:
            if not held.gate.wait(30):  # bounded: never a hang
                raise OSError("test gate never opened")
        finally:
            with held.lock:
                held.running -= 1
        self._inner.update(data)

    def hexdigest(self) -> str:
        return self._inner.hexdigest()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldHashers]:
    hashers = HeldHashers()
    monkeypatch.setattr(digests_module, "new_hasher", hashers)
    yield hashers
    hashers.gate.set()


async def get_and_hang_up(port: int, name: bytes) -> bytes:
    """Ask for ``name`` in version 1 (the answer waits for the hash) and leave at once."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(extended_get(name))
        return await asyncio.wait_for(reader.read(64), 10)
    finally:
        writer.close()


async def list_root(port: int) -> Response:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = protocol.ClientConnection(Request(Verb.LIST, b"."))
    writer.write(conn.request_bytes())
    try:
        while not isinstance(event := conn.next_event(), Response):
            assert event is protocol.NEED_DATA, event
            data = await reader.read(64 * 1024)
            assert data, "closed before the listing's head"
            conn.receive_data(data)
        return event
    finally:
        writer.close()


async def test_hashes_held_forever_leave_listings_answered_at_once(
    tmp_path: Path, held: HeldHashers
) -> None:
    for index in range(FILES):
        with open(tmp_path / f"big{index}.bin", "wb") as big:
            big.truncate(SIZE)  # sparse: costs no disk
    server = FileServer(tmp_path, limits=ServerLimits(grace=1), on_access=None)
    await server.start()
    try:
        names = [f"big{index}.bin".encode() for index in range(FILES)]
        firsts = await asyncio.gather(*(get_and_hang_up(server.port_bound, n) for n in names))
        assert all(first.startswith(b"getfile/1 102 processing") for first in firsts), firsts
        await wait_until(lambda: held.running > 0, "a hash to be held", 10)
        head = await asyncio.wait_for(list_root(server.port_bound), 10)
        assert head.status is Status.OK and head.entries == FILES
        assert held.most_at_once <= 2, f"{held.most_at_once} hashes at once: not a small pool"
    finally:
        held.gate.set()
        await server.stop(grace=1)
