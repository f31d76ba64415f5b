"""A TCP relay that cuts or holds a download where a test says (a real socket, staged pace)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.wire import reset_on_close


@dataclass
class Plan:
    """What the proxy does to the next connection's server-to-client bytes."""

    #: Cut the connection after this many bytes (None: never).
    cut_at: int | None = None
    #: Cut with RST (SO_LINGER 0) instead of FIN.
    reset: bool = False
    #: Stop forwarding after this many bytes until ``release`` is called.
    hold_at: int | None = None


class CuttingProxy:
    """A TCP relay between a client and a server that cuts or holds where a test says.

    Only the server-to-client direction is metered: that is where a
    download can be interrupted. Each accepted connection takes the next
    queued ``Plan``; with none queued it asks ``planner`` (given the
    connection's number, from 0), and without one it relays faithfully.
    ``connections`` counts connections accepted, ``relayed`` the bytes handed
    to clients over all of them.
    """

    def __init__(self, upstream_port: int, planner: Callable[[int], Plan] | None = None) -> None:
        self.upstream_port = upstream_port
        self.planner = planner
        self.port = 0
        self.connections = 0
        self.relayed = 0
        self.plans: deque[Plan] = deque()
        self.holding = asyncio.Event()
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def release(self) -> None:
        self._released.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        plan = self._next_plan()
        writer.transport.set_write_buffer_limits(0)  # drain() means "all handed to the kernel"
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(120):
                up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                forward = asyncio.ensure_future(_pump(reader, upstream))
                try:
                    if await self._meter(up_reader, writer, upstream, plan):
                        await forward  # the server finished: wait for the client to hang up
                finally:
                    forward.cancel()
                    with contextlib.suppress(BaseException):
                        await forward
        except (OSError, asyncio.CancelledError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            for end in (writer, upstream):
                if end is not None:
                    end.transport.abort()

    def _next_plan(self) -> Plan:
        number = self.connections
        self.connections += 1
        if self.plans:
            return self.plans.popleft()
        return Plan() if self.planner is None else self.planner(number)

    async def _meter(
        self,
        up_reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
        plan: Plan,
    ) -> bool:
        """Relay as planned; True if the server ended the stream, False if we cut it."""
        sent = 0
        while True:
            if plan.hold_at is not None and sent >= plan.hold_at and not self._released.is_set():
                self.holding.set()
                await self._released.wait()
            want = 256 * 1024
            if plan.cut_at is not None:
                want = min(want, plan.cut_at - sent)
            if plan.hold_at is not None and not self._released.is_set():
                want = min(want, plan.hold_at - sent)
            data = await up_reader.read(want)
            if not data:
                if client.can_write_eof():
                    client.write_eof()
                await client.drain()
                return True
            client.write(data)
            await client.drain()
            sent += len(data)
            self.relayed += len(data)
            if plan.cut_at is not None and sent >= plan.cut_at:
                if plan.reset:
                    reset_on_close(client.get_extra_info("socket"))
                    client.transport.abort()
                else:
                    client.close()
                upstream.transport.abort()
                return False


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
