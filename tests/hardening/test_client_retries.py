"""The client retries a lost link by itself and resumes, through a relay that resets connections.

The relay sends RST (SO_LINGER 0) after a set number of bytes on the
connections a test names, and counts every byte it relays: a client that
resumes moves about the file's size in all; one that restarted each time
would never finish (every connection is cut before the end). Backoff waits
are shortened with ``retry_cap`` or replaced (monkeypatched) by long ones
where a test needs the wait to be ended by ``cancel`` or ``retry_now``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client import retry as retry_module
from getfile_core.client.api import Progress, fetch
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.retry import backoff_delay
from getfile_core.client.state import Options, Phase, RetryNotice, TransferState
from getfile_core.errors import (
    ForbiddenError,
    IntegrityError,
    InterruptedError_,
    NotFoundError,
    RemoteError,
    UnauthorizedError,
)
from getfile_core.ratelimit import RateLimit
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import (
    MIB,
    CuttingProxy,
    Plan,
    digest_bytes,
    ok_head,
    scripted_server,
    wait_until,
)

SIZE = 12 * MIB + 12345
EVERY = 2 * MIB
#: Short backoff so a test with several cuts takes well under a second of waiting.
QUICK = Options(connect_timeout=5, timeout=10, retry_cap=0.05)
#: Any bounded wait in these tests: a hang fails here instead of stalling the suite.
BOUND = 60


def cutting(cut_at: Callable[[int], int | None], reset: bool) -> Callable[[int], Plan]:
    """Connection ``i`` is cut after ``cut_at(i)`` server bytes (None: never), by RST or FIN.

    RST is what a dropped NAT entry or a crashed middlebox sends: the bytes
    still in the client's receive buffer are lost.
    """
    return lambda number: Plan(cut_at=cut_at(number), reset=reset)


@pytest.fixture
def big(root: Path) -> bytes:
    data = os.urandom(SIZE)
    (root / "big.bin").write_bytes(data)
    return data


@contextlib.asynccontextmanager
async def serving(
    root: Path, cut_at: Callable[[int], int | None], *, reset: bool = True
) -> AsyncIterator[CuttingProxy]:
    server = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    await server.start()
    relay = await CuttingProxy(server.port_bound, cutting(cut_at, reset)).start()
    try:
        yield relay
    finally:
        await relay.close()
        await server.stop(grace=1)


def every_connection(_index: int) -> int:
    return EVERY


def first_connection(index: int) -> int | None:
    return EVERY if index == 0 else None


@pytest.mark.parametrize("reset", [True, False], ids=["RST", "FIN"])
async def test_a_link_cut_every_2_mib_completes_by_resuming(
    root: Path, dest: Path, big: bytes, reset: bool
) -> None:
    notices: list[RetryNotice] = []
    threads: set[int] = set()

    def on_retry(notice: RetryNotice) -> None:
        threads.add(threading.get_ident())
        notices.append(notice)

    async with serving(root, every_connection, reset=reset) as relay:
        target = Target("127.0.0.1", relay.port, b"big.bin")
        async with asyncio.timeout(BOUND):
            result = await fetch(target, str(dest), options=QUICK, on_retry=on_retry)
    assert (dest / "big.bin").read_bytes() == big
    assert not (dest / ("big.bin" + PART_SUFFIX)).exists()
    # Every connection was cut before the end, so only resuming can have finished it.
    assert relay.connections >= SIZE // EVERY + 1
    assert result.attempts == relay.connections == len(notices) + 1
    if reset:
        # An RST throws away what sat in the client's receive buffer (up to a few MiB on
        # loopback), so each connection delivers part of its 2 MiB; but every one adds.
        assert relay.connections <= 3 * SIZE // EVERY, relay.connections
    else:
        # Resumed, not restarted: what crossed the relay is the file once, plus heads.
        assert SIZE <= relay.relayed <= SIZE + relay.connections * 1024, relay.relayed
    assert result.digest is not None and result.resumed_from == 0
    assert threads == {threading.get_ident()}, "on_retry must run on the event loop"
    assert all(n.attempts == QUICK.retries and n.delay <= QUICK.retry_cap for n in notices)
    assert all("connection" in n.reason for n in notices), notices


async def test_with_retries_off_a_reset_fails_as_before_and_keeps_the_part(
    root: Path, dest: Path, big: bytes
) -> None:
    options = Options(connect_timeout=5, timeout=10, retries=0)
    async with serving(root, every_connection) as relay:
        target = Target("127.0.0.1", relay.port, b"big.bin")
        with pytest.raises(InterruptedError_) as caught:
            async with asyncio.timeout(BOUND):
                await fetch(target, str(dest), options=options)
    assert relay.connections == 1
    assert "connection" in str(caught.value)
    kept = (dest / ("big.bin" + PART_SUFFIX)).read_bytes()
    assert 0 < len(kept) <= EVERY and big.startswith(kept)
    assert not (dest / "big.bin").exists()


REFUSALS = {
    "not found": (b"getfile/1 404 not-found\nmessage: no such file\n\n", NotFoundError),
    "forbidden": (b"getfile/1 403 forbidden\n\n", ForbiddenError),
    "unauthorized": (b"getfile/1 401 unauthorized\n\n", UnauthorizedError),
    "is a folder": (b"getfile/1 409 is-a-directory\n\n", RemoteError),
    "bad request": (b"getfile/1 400 bad-request\n\n", RemoteError),
    "integrity": (ok_head(b"x" * 1000, digest=digest_bytes(b"y")) + b"x" * 1000, IntegrityError),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
async def test_refusals_are_never_retried(refusal: str, dest: Path) -> None:
    reply, error = REFUSALS[refusal]
    asked = 0

    async def answer(_line: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal asked
        asked += 1
        writer.write(reply)

    async with scripted_server(answer) as port:
        with pytest.raises(error):
            async with asyncio.timeout(BOUND):
                await fetch(Target("127.0.0.1", port, b"f.bin"), str(dest), options=QUICK)
    assert asked == 1


@pytest.fixture
def long_backoff(monkeypatch: pytest.MonkeyPatch) -> float:
    """Every backoff a minute long: only ``cancel`` or ``retry_now`` can end it within BOUND."""
    minute = 60.0
    monkeypatch.setattr(retry_module, "backoff_delay", lambda _attempt, _cap: minute)
    return minute


async def test_cancel_during_the_backoff_wait_returns_promptly_and_keeps_the_part(
    root: Path, dest: Path, big: bytes, long_backoff: float
) -> None:
    state = TransferState()
    waiting = asyncio.Event()
    async with serving(root, first_connection) as relay:
        target = Target("127.0.0.1", relay.port, b"big.bin")
        task = asyncio.ensure_future(
            fetch(target, str(dest), options=QUICK, state=state, on_retry=lambda _n: waiting.set())
        )
        async with asyncio.timeout(BOUND / 2):
            await waiting.wait()
        assert state.phase is Phase.RETRYING and state.retry is not None
        assert state.retry.delay == long_backoff
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(BOUND / 4):  # well under the minute of backoff
                await task
    assert state.phase is Phase.CANCELLED
    assert relay.connections == 1
    kept = (dest / ("big.bin" + PART_SUFFIX)).read_bytes()
    assert kept and big.startswith(kept)


async def test_retry_now_ends_the_wait_and_the_progress_shows_the_retry(
    root: Path, dest: Path, big: bytes, long_backoff: float
) -> None:
    state = TransferState()
    seen: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        if progress.phase is Phase.RETRYING and not seen:
            seen.append(progress)
            state.retry_now()

    async with serving(root, first_connection) as relay:
        target = Target("127.0.0.1", relay.port, b"big.bin")
        async with asyncio.timeout(BOUND / 4):  # well under the minute of backoff
            result = await fetch(
                target, str(dest), options=QUICK, state=state, on_progress=on_progress
            )
    assert (dest / "big.bin").read_bytes() == big
    assert result.attempts == 2 and relay.connections == 2
    (progress,) = seen
    assert progress.retry is not None and progress.retry.attempt == 1
    assert progress.retry.delay == long_backoff
    assert state.phase is Phase.DONE and state.retry is None


async def test_a_legacy_server_is_asked_again_from_the_start(
    root: Path, dest: Path, legacy_server: int
) -> None:
    data = (root / "sub" / "data.bin").read_bytes()
    # Connection 0 is the extended probe the book's server answers with silence;
    # connection 1 is the legacy download, reset after 100 000 bytes.
    cut = cutting(lambda i: 100_000 if i == 1 else None, reset=True)
    relay = await CuttingProxy(legacy_server, cut).start()
    try:
        target = Target("127.0.0.1", relay.port, b"sub/data.bin")
        async with asyncio.timeout(BOUND):
            result = await fetch(target, str(dest), options=QUICK)
    finally:
        await relay.close()
    assert result.legacy and result.digest is None
    assert (dest / "data.bin").read_bytes() == data
    assert relay.connections == 3 and result.attempts == 2


async def test_a_server_that_never_lets_the_download_progress_is_given_up(dest: Path) -> None:
    """Each connection brings a little and is cut: counted as failures, so it ends."""
    body = os.urandom(200_000)
    asked = 0

    async def cut(line: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal asked
        asked += 1
        offset = int(line.rsplit(b"offset=", 1)[1]) if b"offset=" in line else 0
        head = ok_head(body[offset:], digest=digest_bytes(body), size=len(body))
        if offset:
            head = head.replace(b"\n\n", f"\noffset: {offset}\n\n".encode(), 1)
        writer.write(head + body[offset : offset + 1000])

    options = Options(connect_timeout=5, timeout=10, retry_cap=0.01, retries=4)
    async with scripted_server(cut) as port:
        with pytest.raises(InterruptedError_):
            async with asyncio.timeout(BOUND):
                await fetch(Target("127.0.0.1", port, b"f.bin"), str(dest), options=options)
    assert asked == 5
    assert (dest / ("f.bin" + PART_SUFFIX)).read_bytes() == body[:5000]


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    assert [backoff_delay(n, 30.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(200, 30.0) == 30.0


async def test_a_server_restarting_mid_download_is_waited_for(
    root: Path, dest: Path, big: bytes
) -> None:
    """Cut by the server's stop, refused while it is down, resumed once it is back."""
    first = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(grace=0), on_access=None)
    await first.start()
    port = first.port_bound
    # A small send buffer (accepted sockets inherit it): the kernel's buffers on both ends
    # (up to ~4 + 6 MiB on loopback) could otherwise hold the whole rest of the file when
    # the stop lands, and the download would end without a cut (the likely cause of one
    # failure in a loaded CI run: no refused retry came).
    assert first._server is not None
    for listener in first._server.sockets:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    # Slow enough (4 MiB/s, about 3 s in all) that the stop lands mid-way.
    options = Options(timeout=10, retry_cap=0.2, rate_limit=RateLimit(4 * MIB))
    state = TransferState()
    refused: list[RetryNotice] = []
    task = asyncio.ensure_future(
        fetch(
            Target("127.0.0.1", port, b"big.bin"),
            str(dest),
            options=options,
            state=state,
            on_retry=refused.append,
        )
    )
    second: FileServer | None = None
    try:
        await wait_until(lambda: state.done >= 2 * MIB, "the first 2 MiB")
        await first.stop(grace=0)
        await wait_until(
            lambda: any("refused" in n.reason for n in refused), "a retry refused while down"
        )
        second = FileServer(root, "127.0.0.1", port, limits=ServerLimits(grace=1), on_access=None)
        await second.start()
        async with asyncio.timeout(BOUND):
            result = await task
    finally:
        task.cancel()
        if second is not None:
            await second.stop(grace=1)
    assert (dest / "big.bin").read_bytes() == big
    assert result.attempts >= 3 and result.resumed_from == 0
