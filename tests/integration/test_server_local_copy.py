"""Large bodies for a client on this machine go by copy, a bounded number at once.

``sending.CopySlots`` says why (over loopback a copy leaves the bytes hot
for the client; ``sendfile`` hands it cold page cache). What must hold
whatever the path: every byte arrives, a body that finds every slot taken
still goes (by ``sendfile``), a slot always comes back, and only peers on
this machine qualify.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.server.sending import COPY_MIN, CopySlots, on_this_machine
from tests.support import MIB, extended_get, split_response, wait_until, write_random


class CountedSlots(CopySlots):
    def __init__(self, slots: int) -> None:
        super().__init__(slots)
        self.taken = 0

    def take(self) -> bool:
        took = super().take()
        self.taken += took
        return took


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    write_random(root / "big.bin", COPY_MIN + MIB)
    write_random(root / "under.bin", COPY_MIN - 1)
    return root


async def started(root: Path, copies: CopySlots) -> FileServer:
    server = FileServer(root, limits=ServerLimits(grace=1))
    server.copies = copies
    await server.start()
    return server


def fetch(port: int, name: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(extended_get(name))
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
    return split_response(bytes(received))[1]


async def test_a_large_body_goes_by_copy_and_one_beyond_the_slots_by_sendfile(
    served: Path,
) -> None:
    copies = CountedSlots(slots=1)
    server = await started(served, copies)
    expected = (served / "big.bin").read_bytes()
    try:
        holder = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", server.port_bound))
        holder.settimeout(20)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        holder.sendall(extended_get(b"big.bin"))  # then reads nothing: the slot stays taken
        await wait_until(lambda: copies.free == 0, "the first body to take the one slot", 10)
        second = await asyncio.to_thread(fetch, server.port_bound, b"big.bin")
        assert second == expected  # went while the slot was taken: by sendfile
        assert copies.taken == 1
        received = bytearray()
        while len(received) < len(expected) + 1:
            chunk = await asyncio.to_thread(holder.recv, 1 << 20)
            if not chunk:
                break
            received += chunk
        holder.close()
        assert split_response(bytes(received))[1] == expected  # the copied one, whole
        await wait_until(lambda: copies.free == 1, "the slot to come back", 10)
    finally:
        await server.stop(grace=1)


async def test_a_body_under_the_threshold_keeps_sendfile(served: Path) -> None:
    copies = CountedSlots(slots=8)
    server = await started(served, copies)
    try:
        body = await asyncio.to_thread(fetch, server.port_bound, b"under.bin")
    finally:
        await server.stop(grace=1)
    assert body == (served / "under.bin").read_bytes()
    assert copies.taken == 0 and copies.free == 8


class Transport:
    """Just the two addresses ``on_this_machine`` reads."""

    def __init__(self, peer: object, local: object) -> None:
        self.extra = {"peername": peer, "sockname": local}

    def get_extra_info(self, name: str) -> object:
        return self.extra[name]


@pytest.mark.parametrize(
    ("peer", "local", "local_peer"),
    [
        (("127.0.0.1", 40000), ("127.0.0.1", 50001), True),
        (("127.8.9.10", 40000), ("127.0.0.1", 50001), True),
        (("::1", 40000, 0, 0), ("::1", 50001, 0, 0), True),
        (("::ffff:127.0.0.1", 40000, 0, 0), ("::", 50001, 0, 0), True),
        (("10.0.0.5", 40000), ("10.0.0.5", 50001), True),  # our own address
        (("10.0.0.6", 40000), ("10.0.0.5", 50001), False),
        (("2001:db8::1", 40000, 0, 0), ("2001:db8::2", 50001, 0, 0), False),
        ("/run/getfile.sock", "/run/getfile.sock", False),  # not an IP peer
        (None, None, False),
    ],
)
def test_only_a_peer_on_this_machine_qualifies(
    peer: object, local: object, local_peer: bool
) -> None:
    assert on_this_machine(Transport(peer, local)) is local_peer  # type: ignore[arg-type]
