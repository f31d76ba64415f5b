"""Helpers for driving the app: bounded waits, an app factory, and a peer that stalls.

A stalling peer is how a test gets a download that is reliably *in
progress* (to cancel it, or to quit while it runs): it answers like the
book's server, sends a first block, then sends nothing more until the test
ends. It is a real loopback socket; only its pace is staged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tui.app import GetfileApp
from tui.launch import Launch

FIXED_TIME = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: log stamps that never change
#: The client reads whole 1 MiB buffers (MSG_WAITALL), so its counters move a MiB at a time.
STALL_FIRST_BLOCK = 1024 * 1024


async def wait_until(
    pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if condition():
            return
        if time.monotonic() > deadline:
            break
        await pilot.pause(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def make_app(
    *,
    host: str = "",
    port: int | str = "",
    file: str = "",
    dest: Path | str = "",
    serve: Path | str | None = None,
) -> GetfileApp:
    launch = Launch(
        host=host,
        port=str(port),
        file=file,
        dest=str(dest),
        serve=None if serve is None else str(serve),
    )
    return GetfileApp(launch, clock=lambda: FIXED_TIME)


async def answering_lister(*_args: object, **_kwargs: object) -> list[object]:
    """A listing from a server that is there, for tests that need only its presence
    (the app asks about a file already there only once the server answers)."""
    return []


def only_transfer(app: GetfileApp):  # type: ignore[no-untyped-def]
    assert len(app.transfers) == 1, app.transfers
    return next(iter(app.transfers.values()))


class StallingLegacyPeer:
    """Speaks the book's protocol: no answer to our extended request, then raw bytes.

    It sends ``STALL_FIRST_BLOCK`` bytes of the file and then holds the
    connection open, silent, until ``release()`` (or the test's end).
    """

    def __init__(self) -> None:
        self.release_event = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.legacy_requests: list[bytes] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line.startswith(b"\x00"):
                return  # our extended request: the book's server finds no such file and closes
            self.legacy_requests.append(line.strip())
            writer.write(b"x" * STALL_FIRST_BLOCK)
            await writer.drain()
            await asyncio.wait_for(self.release_event.wait(), 60)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def release(self) -> None:
        self.release_event.set()

    async def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def stalling_peer() -> AsyncIterator[tuple[StallingLegacyPeer, int]]:
    peer = StallingLegacyPeer()
    port = await peer.start()
    try:
        yield peer, port
    finally:
        await peer.stop()
