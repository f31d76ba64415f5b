"""The async client API that the CLI and the TUI share.

``fetch`` downloads one file; ``list_folder`` lists a remote folder. Both run
the blocking transfer in a dedicated thread (see ``transfer``) and await it,
so callers get plain coroutines: cancel the task and the socket is shut
down, the ``.part`` is kept, and the coroutine raises ``CancelledError``.

Progress is sampled, not pushed: every ``interval`` seconds (0.1 by
default) ``on_progress`` gets a ``Progress`` snapshot, however fast the
bytes flow, and once more at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from getfile_core.address import Target
from getfile_core.client.destination import Destination
from getfile_core.client.transfer import (
    FetchResult,
    Options,
    TransferState,
    download,
)
from getfile_core.client.transfer import (
    list_folder as _list_folder,
)
from getfile_core.protocol import Entry

__all__ = ["FetchResult", "Options", "Progress", "Target", "fetch", "list_folder"]

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """A snapshot for display: counts, rate over the last few seconds, and ETA."""

    phase: str
    done: int
    total: int | None
    rate: float  # bytes per second, smoothed
    elapsed: float
    legacy: bool

    @property
    def eta(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None if self.total is None else 1.0
        return min(self.done / self.total, 1.0)


class RateMeter:
    """Bytes per second over a sliding window of samples (a few seconds)."""

    def __init__(self, window: float = 3.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float, done: int) -> float:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        first_time, first_done = self.samples[0]
        span = now - first_time
        return (done - first_done) / span if span > 0 else 0.0


async def _run_in_thread(
    work: Callable[[], T],
    state: TransferState,
    on_progress: Callable[[Progress], None] | None,
    interval: float,
) -> T:
    """Run blocking ``work`` in its own thread; sample progress; cancel cleanly."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def target() -> None:
        try:
            result = work()
        except BaseException as error:  # delivered to the awaiting coroutine
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(settle, lambda e=error: future.set_exception(e))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    thread = threading.Thread(target=target, name="getfile-transfer", daemon=True)
    meter = RateMeter()
    began = time.monotonic()

    def report() -> None:
        if on_progress is None:
            return
        now = time.monotonic()
        snapshot = Progress(
            phase=state.phase,
            done=state.done,
            total=state.total,
            rate=meter.sample(now, state.done),
            elapsed=now - began,
            legacy=state.legacy,
        )
        with contextlib.suppress(Exception):
            on_progress(snapshot)

    thread.start()
    try:
        while not future.done():
            report()
            await asyncio.wait({future}, timeout=interval)
        report()
        return future.result()
    except asyncio.CancelledError:
        state.cancel()
        # Let the thread notice, close its socket and keep the .part, then go.
        await asyncio.wait({future}, timeout=10)
        if future.done() and not future.cancelled():
            future.exception()  # mark retrieved
        state.phase = "cancelled"
        report()
        raise


async def fetch(
    target: Target,
    dest_dir: str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    options: Options | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    interval: float = 0.1,
    state: TransferState | None = None,
    name: str | None = None,
) -> FetchResult:
    """Download ``target`` into ``dest_dir`` as its sanitised basename (or as ``name``).

    ``name`` lets a caller save under another name (the TUI's "Rename" when the
    basename is taken); it is sanitised like a remote name, so it stays a
    plain name inside ``dest_dir``.

    Raises a ``GetfileError`` subclass on failure (never a bare OSError), or
    ``CancelledError`` when cancelled; in neither case does a file appear
    under the final name.
    """
    options = options or Options()
    state = state or TransferState()
    local = target.path if name is None else name.encode("utf-8", "surrogateescape")
    destination = Destination.for_remote(dest_dir, local, overwrite=overwrite, resume=resume)

    return await _run_in_thread(
        lambda: download(target, destination, options, state), state, on_progress, interval
    )


async def list_folder(
    target: Target, *, options: Options | None = None, max_entries: int = 10_000
) -> tuple[list[Entry], bool]:
    """Entries of a remote folder (sorted by name) and whether the list was cut short."""
    options = options or Options()
    state = TransferState()
    return await _run_in_thread(
        lambda: _list_folder(target, options, state, max_entries), state, None, 0.5
    )
