"""Driving the app in tests: an app with a fixed clock, its one transfer, a wait on the pilot.

Kept out of ``tests.support``'s re-exports so that tests which never touch
the app never import Textual.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from tui.app import GetfileApp
from tui.launch import Launch

FIXED_TIME = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: log stamps that never change
#: How often the app gets to run between polls of a condition.
APP_TICK = 0.02


async def pilot_wait_until(
    pilot: Pilot, predicate: Callable[[], bool], what: str = "", timeout: float = 10.0
) -> None:
    """Let the app run until ``predicate()`` holds; fail after ``timeout`` seconds.

    Same order as ``tests.support.wait_until`` after the pilot; it pauses
    through the pilot (not ``asyncio.sleep``) so the app's timers and
    refreshes run between polls.
    """
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / APP_TICK) + 1):
        if predicate():
            return
        if time.monotonic() > deadline:
            break
        await pilot.pause(APP_TICK)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


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


async def transfer_reaches(pilot: Pilot, app: GetfileApp, state: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Let the app run until its one transfer is in ``state``; return that transfer."""
    await pilot_wait_until(
        pilot,
        lambda: bool(app.transfers) and only_transfer(app).state == state,
        what=f"the transfer to be {state}",
        timeout=timeout,
    )
    return only_transfer(app)
