"""The rate a transfer shows counts bytes moved now, not bytes found on disk (a resume)."""

from __future__ import annotations

import asyncio

from getfile_core.client.api import RateMeter, _Observer
from getfile_core.client.state import TransferState


def test_rate_is_bytes_over_the_window() -> None:
    meter = RateMeter(window=3.0)
    assert meter.sample(10.0, 0) == 0.0
    assert meter.sample(11.0, 1000) == 1000.0
    assert meter.sample(12.0, 3000) == 1500.0
    # Samples older than the window are dropped: 15 - 12 = 3 s of 3000 more bytes.
    assert meter.sample(15.0, 6000) == 1000.0


def test_a_count_that_goes_down_starts_the_window_again() -> None:
    meter = RateMeter()
    meter.sample(0.0, 0)
    meter.sample(1.0, 5_000_000)
    assert meter.sample(2.0, 0) == 0.0  # a new attempt: no negative or stale rate
    assert meter.sample(3.0, 1000) == 1000.0


def test_a_resumed_part_does_not_read_as_a_burst() -> None:
    """Sampled once while connecting, then after a resume from 1 GiB: the rate is what moved."""
    seen = []

    async def scenario() -> None:
        state = TransferState()
        observer = _Observer(state, seen.append, None)
        observer.report()  # connecting: nothing on disk yet
        state.resumed_from = state.done = 1 << 30  # the .part found, the server agreed
        await asyncio.sleep(0.01)  # real time must pass between two samples
        observer.report()
        state.done += 4096
        await asyncio.sleep(0.01)
        observer.report()

    asyncio.run(scenario())
    assert [progress.done for progress in seen] == [0, 1 << 30, (1 << 30) + 4096]
    assert seen[1].rate == 0.0
    assert 0 < seen[2].rate < 4096 / 0.01 + 1
