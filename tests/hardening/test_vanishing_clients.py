"""Clients that vanish: by close, by reset, before the answer, mid-body, or by going silent.

Whatever way a client goes, the server must end up holding exactly what it
held before: no transfer slot, no task, no descriptor, no open file of the
served folder (the digest thread's private descriptor included).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from getfile_core.server.fileserver import AccessRecord, FileServer, ServerLimits
from tests.support import (
    MIB,
    extended_get,
    fds_under,
    open_fd_count,
    recording_task_failures,
    reset_on_close,
    wait_until,
)

SIZE = 64 * MIB  # far more than socket buffers hold, so the server is mid-send when we go


@pytest.fixture
def big_root(tmp_path: Path) -> Path:
    """A fresh file each test, so its digest is not cached and is computed while we vanish."""
    root = tmp_path / "served"
    root.mkdir()
    with open(root / "big.bin", "wb") as big:
        big.truncate(SIZE)
    return root


def vanish(port: int, request: bytes, how: str, after_bytes: int) -> int:
    """Ask, read ``after_bytes`` (0: read nothing), then leave by ``close`` or ``reset``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    received = 0
    try:
        sock.sendall(request)
        while received < after_bytes:
            data = sock.recv(256 * 1024)
            if not data:
                break
            received += len(data)
        if how == "reset":
            reset_on_close(sock)
    finally:
        sock.close()
    return received


async def settle_and_check(server: FileServer, root: Path, tasks: int, fds: int) -> None:
    await wait_until(lambda: server.active_transfers == 0, "transfer slot given back", 15)
    await wait_until(lambda: server.connections == 0, "connection forgotten", 15)
    await wait_until(lambda: not server.digests._pending, "digest thread finished", 15)
    await wait_until(lambda: len(asyncio.all_tasks()) <= tasks, "no task left", 15)
    await wait_until(lambda: open_fd_count() <= fds, "descriptors back to baseline", 15)
    assert fds_under(root) == [], "a served file is still open"
    assert not server._slots.locked()


REQUESTS = {"extended": extended_get(b"big.bin"), "legacy": b"big.bin\n"}


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("dialect", ["extended", "legacy"])
@pytest.mark.parametrize("when", ["before-answer", "mid-body"])
async def test_a_vanished_client_leaves_nothing_behind(
    big_root: Path, dialect: str, how: str, when: str
) -> None:
    records: list[AccessRecord] = []
    server = FileServer(big_root, "127.0.0.1", 0, on_access=records.append)
    with recording_task_failures() as failures:
        await server.start()
        try:
            tasks, fds = len(asyncio.all_tasks()), open_fd_count()
            after = 4 * MIB if when == "mid-body" else 0
            got = await asyncio.to_thread(vanish, server.port_bound, REQUESTS[dialect], how, after)
            if when == "mid-body":
                assert after <= got < SIZE, "the client did not leave mid-transfer"
            await settle_and_check(server, big_root, tasks, fds)
        finally:
            await server.stop(grace=1)
    assert failures.errors == []
    assert len(records) == 1
    assert records[0].sent < SIZE, records[0]


@pytest.mark.parametrize("dialect", ["extended", "legacy"])
async def test_a_client_that_stops_reading_is_dropped_after_the_stall_timeout(
    big_root: Path, dialect: str
) -> None:
    """The silent vanish (a pulled cable): no FIN, no RST, just no more reading."""
    records: list[AccessRecord] = []
    limits = ServerLimits(stall_timeout=1)
    server = FileServer(big_root, "127.0.0.1", 0, limits=limits, on_access=records.append)
    with recording_task_failures() as failures:
        await server.start()
        try:
            tasks, fds = len(asyncio.all_tasks()), open_fd_count()
            sock = socket.create_connection(("127.0.0.1", server.port_bound), timeout=10)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.sendall(REQUESTS[dialect])
                await wait_until(lambda: server.active_transfers == 1, "transfer began", 10)
                await wait_until(lambda: server.active_transfers == 0, "stalled dropped", 20)
                await wait_until(lambda: server.connections == 0, "connection forgotten", 10)
            finally:
                sock.close()
            await settle_and_check(server, big_root, tasks, fds)
        finally:
            await server.stop(grace=1)
    assert failures.errors == []
    assert [r.note for r in records] == ["timed out"]
