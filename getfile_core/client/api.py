"""The async client API that the CLI and the TUI share.

``fetch`` downloads one file; ``list_folder`` lists a remote folder. Both run
the blocking transfer in a dedicated thread (see ``get``) and await it,
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
from getfile_core.client.get import download
from getfile_core.client.listing import list_folder as _list_folder
from getfile_core.client.state import (
    FetchResult,
    Options,
    Phase,
    RateMeter,
    RetryNotice,
    TransferState,
)
from getfile_core.protocol import Entry

__all__ = ["FetchResult", "Options", "Progress", "Target", "fetch", "list_folder"]

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """A snapshot for display: counts, rate over the last few seconds, and ETA."""

    phase: Phase
    done: int
    total: int | None
    rate: float  # bytes per second, smoothed
    elapsed: float
    legacy: bool
    #: Set while waiting to retry: which attempt, after how long, and why.
    retry: RetryNotice | None = None
    #: What the client waits for, for a person ("" when nothing).
    note: str = ""
    #: Connections moving bytes now (``Options.segments``, mirrors); 0 outside a segmented body.
    connections: int = 0

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


class _Observer:
    """The event loop's side of a running transfer: retry notices and progress snapshots.

    Retry notices come from the transfer thread through a queue and are
    handed to ``on_retry`` here, on the loop, like progress. An exception
    from either callback is not swallowed (a bug in a handler must show).
    """

    def __init__(
        self,
        state: TransferState,
        on_progress: Callable[[Progress], None] | None,
        on_retry: Callable[[RetryNotice], None] | None,
    ) -> None:
        self.state = state
        self.on_progress = on_progress
        self.on_retry = on_retry
        self.notices: deque[RetryNotice] = deque()
        self.wake = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.meter = RateMeter()
        self.began = time.monotonic()

    def tell_retry(self, notice: RetryNotice) -> None:
        """Called in the transfer thread."""
        self.notices.append(notice)
        with contextlib.suppress(RuntimeError):  # loop closed: nobody to tell
            self.loop.call_soon_threadsafe(self.wake.set)

    def report(self) -> None:
        while self.notices:
            notice = self.notices.popleft()
            if self.on_retry is not None:
                self.on_retry(notice)
        if self.on_progress is None:
            return
        state, now = self.state, time.monotonic()
        self.on_progress(
            Progress(
                phase=state.phase,
                done=state.done,
                total=state.total,
                rate=self.meter.sample(now, max(0, state.done - state.resumed_from)),
                elapsed=now - self.began,
                legacy=state.legacy,
                retry=state.retry,
                note=state.note,
                connections=state.connections,
            )
        )

    async def pause(self, future: asyncio.Future[T], interval: float) -> None:
        """Until the next sample is due, the work ends, or a retry notice arrives."""
        self.wake.clear()
        waker = asyncio.ensure_future(self.wake.wait())
        await asyncio.wait({future, waker}, timeout=interval, return_when="FIRST_COMPLETED")
        waker.cancel()


async def _run_in_thread(
    work: Callable[[Callable[[RetryNotice], None]], T],
    state: TransferState,
    on_progress: Callable[[Progress], None] | None,
    interval: float,
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> T:
    """Run blocking ``work`` in its own thread; sample progress; cancel cleanly.

    ``work`` gets the function to report retries with. When a callback
    raises, the transfer is cancelled and the exception propagates.
    """
    observer = _Observer(state, on_progress, on_retry)
    loop = observer.loop
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def target() -> None:
        try:
            result = work(observer.tell_retry)
        except BaseException as error:  # delivered to the awaiting coroutine
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(settle, lambda e=error: future.set_exception(e))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=target, name="getfile-transfer", daemon=True).start()
    try:
        while not future.done():
            observer.report()
            await observer.pause(future, interval)
        observer.report()
        return future.result()
    except asyncio.CancelledError:
        await _stop(state, future)
        observer.report()  # the last snapshot: the transfer says "cancelled"
        raise
    except BaseException:  # a callback raised: stop the transfer, let the bug show
        await _stop(state, future)
        raise


async def _stop(state: TransferState, future: asyncio.Future[T]) -> None:
    """Cancel the transfer; let its thread notice, close its socket and keep the .part."""
    state.cancel()
    await asyncio.wait({future}, timeout=10)
    if future.done() and not future.cancelled():
        future.exception()  # mark retrieved


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
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> FetchResult:
    """Download ``target`` into ``dest_dir`` as its sanitised basename (or as ``name``).

    ``name`` lets a caller save under another name (the TUI's "Rename" when the
    basename is taken); it is sanitised like a remote name, so it stays a
    plain name inside ``dest_dir``. ``on_retry`` is called (on the event loop)
    before each backoff wait; see ``Options.retries``.

    Raises a ``GetfileError`` subclass on failure (never a bare OSError), or
    ``CancelledError`` when cancelled; in neither case does a file appear
    under the final name.
    """
    options = options or Options()
    state = state or TransferState()
    local = target.path if name is None else name.encode("utf-8", "surrogateescape")
    destination = Destination.for_remote(dest_dir, local, overwrite=overwrite, resume=resume)

    return await _run_in_thread(
        lambda tell_retry: download(target, destination, options, state, tell_retry),
        state,
        on_progress,
        interval,
        on_retry,
    )


async def list_folder(
    target: Target, *, options: Options | None = None, max_entries: int = 10_000
) -> tuple[list[Entry], bool]:
    """Entries of a remote folder (sorted by name) and whether the list was cut short."""
    options = options or Options()
    state = TransferState()
    return await _run_in_thread(
        lambda _tell_retry: _list_folder(target, options, state, max_entries), state, None, 0.5
    )
