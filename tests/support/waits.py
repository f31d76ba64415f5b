"""The one way a test waits: poll a condition, bounded, and say what never happened.

One argument order everywhere, ``(predicate, what, timeout=PATIENCE)``: the
sync ``wait_until_sync`` for threads and plain tests, the async
``wait_until`` for tests on the event loop (it yields to the loop between
polls, so an in-process server keeps running). Nothing sleeps to
synchronise; a wait that runs out fails the test with ``what``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

#: Generous bound for anything that should take well under a second.
PATIENCE = 20.0
#: How often a condition is polled: fine enough that a wait ends within a tick.
TICK = 0.01


def _check(what: object, timeout: object) -> None:
    # The helpers this replaced took (predicate, timeout, what): catch the old order at once.
    if not isinstance(what, str) or isinstance(timeout, str | bool):
        raise TypeError("call as wait_until(predicate, what, timeout)")


def wait_until_sync(predicate: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    """Poll ``predicate`` from this thread until it holds; fail with ``what`` after ``timeout``."""
    _check(what, timeout)
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: a sleep that is plainly a bounded poll
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        tick.wait(TICK)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    """Poll ``predicate`` on the event loop until it holds; fail with ``what`` after ``timeout``."""
    _check(what, timeout)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(TICK)
