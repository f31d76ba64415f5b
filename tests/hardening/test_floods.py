"""Slow-loris and floods: idle sockets and crowds must not take the server down.

Nothing here measures speed. "A real client still downloads" is shown by
the client's own short patience (a few seconds without a byte fails it)
while every idle connection is provably still held; "memory stays bounded"
by the resident size of a server process under a thousand connections.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from getfile_core.client.api import fetch
from getfile_core.client.state import Options
from getfile_core.protocol import Status
from getfile_core.server.fileserver import AccessRecord, FileServer, ServerLimits
from tests.support import (
    MIB,
    ServerProcess,
    exchange,
    extended_get,
    raise_fd_limit,
    recording_task_failures,
    reset_on_close,
    rss_of,
    split_response,
    target_for,
    wait_until,
    wait_until_sync,
)

LORIS = 500
FLOOD = 1000
MAX_TRANSFERS = 4
#: Patience of the "real client": fails if the server leaves it without a byte this long.
PATIENT_CLIENT = Options(connect_timeout=5, timeout=5)


def open_idle(port: int, count: int, first_bytes: list[bytes]) -> list[socket.socket]:
    """Connections that send the start of a request and never its end."""
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(first_bytes[index % len(first_bytes)])
        sockets.append(sock)
    return sockets


def close_all(sockets: list[socket.socket], *, reset: bool = False) -> None:
    for sock in sockets:
        if reset:
            reset_on_close(sock)
        sock.close()


async def test_500_unfinished_requests_do_not_stop_a_download(root: Path, dest: Path) -> None:
    # The server sizes its connection cap to the descriptor limit it starts with.
    raise_fd_limit(2 * ServerLimits().max_connections + 1024)
    server = FileServer(root, "127.0.0.1", 0, on_access=None)
    await server.start()
    halves = [b"sub/da", b"\x00getfile/1 GET sub/da", b"\x00get", b"h"]
    idle: list[socket.socket] = []
    try:
        assert server.connection_cap > LORIS
        idle = await asyncio.to_thread(open_idle, server.port_bound, LORIS, halves)
        await wait_until(lambda: server.connections >= LORIS, "all idle sockets accepted", 30)
        result = await asyncio.wait_for(
            fetch(target_for(server, "sub/data.bin"), str(dest), options=PATIENT_CLIENT), 60
        )
        assert (dest / "data.bin").read_bytes() == (root / "sub" / "data.bin").read_bytes()
        assert result.digest is not None
        assert server.connections >= LORIS, "the idle sockets were dropped, not withstood"
    finally:
        await asyncio.to_thread(close_all, idle)
        await wait_until(lambda: server.connections == 0, "idle sockets closed", 20)
        await server.stop(grace=1)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle_until_dropped(port: int, count: int, rounds: int) -> list[bool]:
    """Send one byte per socket per round (never a newline); report who the server cut."""
    sockets = open_idle(port, count, [b"x", b"\x00getfile/1 GET "])
    dropped = [False] * count
    pace = threading.Event()
    try:
        for _ in range(rounds):
            for index, sock in enumerate(sockets):
                if not dropped[index]:
                    try:
                        sock.sendall(b"a")
                    except OSError:
                        dropped[index] = True
                    else:
                        dropped[index] = closed_by_server(sock)
            if all(dropped):
                break
            pace.wait(0.05)  # the attacker's pace, not a synchronisation
    finally:
        close_all(sockets)
    return dropped


async def test_a_trickled_request_is_cut_at_the_request_deadline(root: Path) -> None:
    """Slow-loris that keeps sending: the deadline is for the whole line, not per byte."""
    records: list[AccessRecord] = []
    server = FileServer(
        root, "127.0.0.1", 0, limits=ServerLimits(request_timeout=1), on_access=records.append
    )
    await server.start()
    try:
        dropped = await asyncio.to_thread(trickle_until_dropped, server.port_bound, 20, 400)
        assert all(dropped), f"{dropped.count(False)} trickling sockets were never cut"
        await wait_until(lambda: server.connections == 0, "trickling sockets closed", 10)
    finally:
        await server.stop(grace=1)
    assert len(records) == 20
    assert [r.status for r in records] == ["timeout"] * 20


async def read_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    try:
        return await reader.read(-1)
    except ConnectionError:
        return b""
    finally:
        writer.close()


async def one_client(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    return await read_all(reader, writer)


class PeakSampler:
    """Largest resident size a process reaches while a test runs (sampled every 5 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_of(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            try:
                self.peak = max(self.peak, rss_of(self.pid))
            except (OSError, AssertionError):
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return max(self.peak, rss_of(self.pid))


async def test_a_thousand_connections_beyond_the_limit_are_told_busy_or_queued(
    tmp_path: Path,
) -> None:
    raise_fd_limit(2 * ServerLimits().max_connections + 1024)
    root = tmp_path / "served"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello, crowd\n")
    with open(root / "big.bin", "wb") as big:
        big.truncate(256 * MIB)  # sparse: costs no disk, never fits in socket buffers
    server = ServerProcess(
        root,
        "--max-transfers",
        str(MAX_TRANSFERS),
        "--request-timeout",
        "120",
        "--stall-timeout",
        "120",
        "--quiet",
        log=tmp_path / "serve.log",
    )
    server.start()
    holders: list[socket.socket] = []
    rss_before = rss_peak = 0
    try:
        # Fill every transfer slot with a reader that never reads.
        for _ in range(MAX_TRANSFERS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(extended_get(b"big.bin"))
            # A cold 256 MiB file may take over a second to hash: ``102 processing``
            # heads come first then (bounded by the socket's timeout and 64 KiB).
            head = b""
            while b"getfile/1 200 ok" not in head and len(head) < 64 * 1024:
                chunk = sock.recv(512)
                if not chunk:
                    break
                head += chunk
            assert b"getfile/1 200 ok" in head, head
            holders.append(sock)
        busy, _ = split_response(await one_client(server.port, extended_get(b"hello.txt")))
        assert busy.status is Status.BUSY
        rss_before = rss_of(server.pid)
        sampler = PeakSampler(server.pid)

        extended = [
            asyncio.ensure_future(one_client(server.port, extended_get(b"hello.txt")))
            for _ in range(FLOOD // 2)
        ]
        legacy = [
            asyncio.ensure_future(one_client(server.port, b"hello.txt\n"))
            for _ in range(FLOOD // 2)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*extended), 60)
        for answer in answers:
            response, body = split_response(answer)
            assert response.status is Status.BUSY and body == b""
        assert server.alive()
        assert not any(task.done() for task in legacy), "a legacy client was not queued"

        close_all(holders, reset=True)  # free the slots: the queue drains
        holders = []
        served = await asyncio.wait_for(asyncio.gather(*legacy), 60)
        assert served == [b"hello, crowd\n"] * (FLOOD // 2)
        rss_peak = sampler.stop()

        # Still up, still serving the normal way.
        response, body = split_response(await one_client(server.port, extended_get(b"hello.txt")))
        assert response.status is Status.OK and body == b"hello, crowd\n"
        assert server.alive()
    finally:
        close_all(holders)
        server.stop()
    assert "Traceback" not in server.log_text()
    # A thousand connections may cost memory, but a bounded amount: 64 KiB each is generous.
    assert rss_peak - rss_before < FLOOD * 64 * 1024, (rss_before, rss_peak)


async def test_flood_leaves_no_crashed_task_in_process(root: Path) -> None:
    """The same crowd against an in-process server, where crashed tasks can be seen."""
    raise_fd_limit(2 * ServerLimits().max_connections + 1024)
    server = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(max_transfers=2), on_access=None)
    with recording_task_failures() as failures:
        await server.start()
        try:
            requests = [extended_get(b"sub/data.bin"), b"sub/data.bin\n", extended_get(b"nope")]
            answers = await asyncio.wait_for(
                asyncio.gather(
                    *(one_client(server.port_bound, requests[i % 3]) for i in range(300))
                ),
                60,
            )
            await wait_until(lambda: server.connections == 0, "all connections closed", 20)
        finally:
            await server.stop(grace=1)
    data = (root / "sub" / "data.bin").read_bytes()
    for index, answer in enumerate(answers):
        if index % 3 == 1:
            assert answer == data  # legacy: queued, then served
        else:
            response, body = split_response(answer)
            assert response.status in (Status.OK, Status.BUSY, Status.NOT_FOUND)
            assert body in (data, b"")
    assert failures.errors == []
    assert server.active_transfers == 0


async def test_more_connections_than_descriptors_are_refused_not_hung(tmp_path: Path) -> None:
    """A server whose descriptor limit is below ``--max-connections`` (1024 is a common
    default, the cap is 2048): the surplus must be turned away at once, because a full
    descriptor table makes accept() fail and then nobody at all gets in."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello, crowd\n")
    server = ServerProcess(root, "--quiet", nofile=256, log=tmp_path / "serve.log").start()
    idle: list[asyncio.StreamWriter] = []

    async def connect_and_stall(index: int) -> asyncio.StreamWriter:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write([b"hel", b"\x00get"][index % 2])
        return writer

    try:
        # All at once: a full (small) accept queue delays a connect, it does not lose it.
        idle = await asyncio.wait_for(
            asyncio.gather(*(connect_and_stall(i) for i in range(300))), 60
        )
        # Beyond what fits: refused or served, but answered at once; a hang fails here.
        hello = [extended_get(b"hello.txt")]
        answer = await asyncio.to_thread(exchange, server.port, hello, "half-close", 5.0)
        assert answer == b"" or split_response(answer)[0].status is Status.OK
        for writer in idle:
            writer.transport.abort()
        idle = []
        answers: list[bytes] = []

        def served_again() -> bool:  # once the server has seen the crowd go
            answers.append(exchange(server.port, hello, "half-close", 10.0))
            return answers[-1] != b""

        await asyncio.to_thread(
            wait_until_sync, served_again, "served again after the crowd left", 15
        )
        response, body = split_response(answers[-1])
        assert response.status is Status.OK and body == b"hello, crowd\n"
        assert server.alive()
    finally:
        for writer in idle:
            writer.transport.abort()
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log and "Too many open files" not in log, log[-2000:]
