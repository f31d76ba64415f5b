"""The link emulator (tests/support/links.py) does what its tests and the bench rely on.

Each shaping is checked by a lower bound that a relay ignoring it would
miss by a wide margin (loopback moves these sizes in milliseconds), and by
the bytes arriving intact and counted. Timings are shaped so a broken
emulator shows in about a second.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from getfile_core.address import Target
from getfile_core.client.api import fetch
from getfile_core.server.fileserver import FileServer
from tests.support.links import KiB, Link, LinkEmulator, MiB

PATIENCE = 20.0


async def serve(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def sender(payload: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable]:
    """A target that sends ``payload`` to each connection, then closes it."""

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(payload)
            await writer.drain()
            writer.close()
        except OSError:
            writer.transport.abort()

    return handle


async def counter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A target that reads to EOF, then answers with the number of bytes it got."""
    total = 0
    while data := await reader.read(64 * KiB):
        total += len(data)
    writer.write(str(total).encode())
    await writer.drain()
    writer.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(64 * KiB):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def target() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Callable[..., Awaitable[None]]) -> int:
        server, port = await serve(handler)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.close()


async def download(port: int, host: str = "127.0.0.1") -> tuple[bytes, float]:
    """Everything the relay passes on one connection, and how long it took."""
    began = time.monotonic()
    async with asyncio.timeout(PATIENCE):
        reader, writer = await asyncio.open_connection(host, port)
        data = await reader.read(-1)
        writer.close()
    return data, time.monotonic() - began


async def test_a_plain_link_passes_bytes_both_ways_intact_and_counts_them(target) -> None:
    payload = os.urandom(3 * MiB + 17)
    async with LinkEmulator(await target(echo)) as relay:
        async with asyncio.timeout(PATIENCE):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            sending = asyncio.ensure_future(_send_and_close(writer, payload))
            echoed = await reader.read(-1)
            await sending
    assert echoed == payload
    stats = relay.stats()
    assert (stats.connections, stats.resets) == (1, 0)
    assert stats.bytes_up == stats.bytes_down == len(payload)


async def _send_and_close(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(payload)
    await writer.drain()
    writer.write_eof()


async def test_the_rate_cap_holds_towards_the_client(target) -> None:
    size, rate = 256 * KiB, 512 * KiB
    payload = os.urandom(size)
    async with LinkEmulator(await target(sender(payload)), Link(rate=rate)) as relay:
        data, seconds = await download(relay.port)
    assert data == payload
    assert seconds >= 0.98 * size / rate, f"{size} B in {seconds:.3f} s beats {rate} B/s"
    assert relay.stats().bytes_down == size


async def test_the_rate_cap_holds_towards_the_target(target) -> None:
    size, rate = 256 * KiB, 512 * KiB
    async with LinkEmulator(await target(counter), Link(rate=rate)) as relay:
        began = time.monotonic()
        async with asyncio.timeout(PATIENCE):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            await _send_and_close(writer, os.urandom(size))
            answer = await reader.read(-1)
        seconds = time.monotonic() - began
    assert answer == str(size).encode()
    assert seconds >= 0.98 * size / rate, f"{size} B in {seconds:.3f} s beats {rate} B/s"
    assert relay.stats().bytes_up == size


async def test_the_total_rate_is_shared_by_every_connection(target) -> None:
    # Two connections at once, 256 KiB each, through a 512 KiB/s shared cap:
    # together they need 1 s; a cap per connection would let both finish in 0.5 s.
    size, rate = 256 * KiB, 512 * KiB
    payload = os.urandom(size)
    async with LinkEmulator(await target(sender(payload)), Link(total_rate=rate)) as relay:
        began = time.monotonic()
        both = await asyncio.gather(download(relay.port), download(relay.port))
        seconds = time.monotonic() - began
    assert [data for data, _ in both] == [payload, payload]
    assert seconds >= 0.98 * 2 * size / rate, f"2 x {size} B in {seconds:.3f} s beats {rate} B/s"
    assert relay.stats().bytes_down == 2 * size


async def test_a_relay_can_listen_on_another_loopback_address(target) -> None:
    # Mirrors in the bench are relays on 127.0.0.2, 127.0.0.3 … (aria2c counts per host);
    # a relay still bound to 127.0.0.1 would refuse this connection.
    payload = os.urandom(64 * KiB)
    async with LinkEmulator(await target(sender(payload)), host="127.0.0.2") as relay:
        data, _ = await download(relay.port, "127.0.0.2")
    assert data == payload
    assert relay.stats().connections == 1


async def test_delay_adds_at_least_both_one_way_delays_to_a_round_trip(target) -> None:
    delay = 0.1
    async with LinkEmulator(await target(echo), Link(delay=delay)) as relay:
        async with asyncio.timeout(PATIENCE):
            reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
            trips = []
            for _ in range(3):
                began = time.monotonic()
                writer.write(b"x")
                await writer.drain()
                assert await reader.readexactly(1) == b"x"
                trips.append(time.monotonic() - began)
            writer.close()
    assert min(trips) >= 2 * delay, f"round trips {trips} shorter than 2 x {delay} s"


async def test_the_window_bounds_throughput_on_a_delayed_path(target) -> None:
    # 1 MiB through a 64 KiB window, 50 ms each way: 16 windows need 15 round
    # trips of acknowledgements (1.5 s); without the window it takes ~50 ms.
    size, window, delay = MiB, 64 * KiB, 0.05
    payload = os.urandom(size)
    link = Link(delay=delay, window=window)
    async with LinkEmulator(await target(sender(payload)), link) as relay:
        data, seconds = await download(relay.port)
    assert data == payload
    floor = (size // window - 1) * 2 * delay
    assert seconds >= floor, f"{size} B in {seconds:.3f} s: the {window} B window was exceeded"


async def test_resets_come_after_every_n_bytes_and_are_counted(target) -> None:
    every = 100_000
    payload = os.urandom(MiB)
    async with LinkEmulator(await target(sender(payload)), Link(reset_every=every)) as relay:
        for _ in range(2):
            async with asyncio.timeout(PATIENCE):
                reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
                received = b""
                with pytest.raises(ConnectionResetError):
                    while data := await reader.read(64 * KiB):
                        received += data
                writer.close()
            assert received == payload[:every]
    stats = relay.stats()
    assert (stats.connections, stats.resets, stats.bytes_down) == (2, 2, 2 * every)


async def test_a_connection_idle_past_the_timeout_is_closed(target) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    async with LinkEmulator(await target(silent), idle_timeout=0.5) as relay:
        data, seconds = await download(relay.port)
    assert data == b""
    assert seconds >= 0.5


def test_the_context_manager_runs_its_own_loop_for_synchronous_code() -> None:
    size, rate = 128 * KiB, 256 * KiB
    payload = os.urandom(size)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(PATIENCE)

        def send_once() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(payload)

        feeder = threading.Thread(target=send_once, daemon=True)
        feeder.start()
        with LinkEmulator(listener.getsockname()[1], Link(rate=rate)) as relay:
            began = time.monotonic()
            with socket.create_connection(("127.0.0.1", relay.port), timeout=PATIENCE) as client:
                received = bytearray()
                while data := client.recv(64 * KiB):
                    received += data
            seconds = time.monotonic() - began
            stats = relay.stats()
        feeder.join(PATIENCE)
    assert bytes(received) == payload
    assert seconds >= 0.98 * size / rate
    assert (stats.connections, stats.bytes_down) == (1, size)
    assert stats.first_connected is not None and began <= stats.first_connected


def test_bad_link_settings_are_refused() -> None:
    for bad in ({"rate": 0}, {"delay": -1}, {"window": 0}, {"reset_every": 0}, {"total_rate": 0}):
        with pytest.raises(ValueError):
            Link(**bad)


async def test_the_target_meets_the_links_segment_size_not_loopbacks(target) -> None:
    seen: list[int] = []

    async def note_mss(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    port = await target(note_mss)
    for link, wanted in ((Link(), None), (Link.network(64 * KiB), 1448)):
        async with LinkEmulator(port, link) as relay:
            data, _ = await download(relay.port)
        assert data == b"ok"
        if wanted is None:
            assert seen[-1] > 16 * KiB, f"loopback's segments are ~64 KiB, not {seen[-1]}"
        else:
            assert seen[-1] <= wanted


async def test_a_getfile_download_through_a_shaped_link_arrives_whole(
    server: FileServer, root, dest
) -> None:
    """The relay speaks TCP well enough for the real client and server (half-closes and all)."""
    source = (root / "sub" / "data.bin").read_bytes()
    rate = 512 * KiB
    link = Link.network(rate, delay=0.01)
    async with LinkEmulator(server.port_bound, link) as relay:
        began = time.monotonic()
        async with asyncio.timeout(PATIENCE):
            await fetch(Target("127.0.0.1", relay.port, b"sub/data.bin"), str(dest))
        seconds = time.monotonic() - began
    assert (dest / "data.bin").read_bytes() == source
    stats = relay.stats()
    assert (stats.connections, stats.resets) == (1, 0)
    assert stats.bytes_down > len(source)  # the body and the response head
    assert seconds >= 0.98 * len(source) / rate
