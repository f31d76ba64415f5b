"""Real links in the app (issue 9 §2, §4): the server pane's limits, rate limits, retries."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from textual.widgets import Input, Static, TabbedContent

from getfile_core import FetchResult, FileServer, RetryNotice, TransferState
from tests.support import CuttingProxy, Plan
from tests.support.tui import make_app, only_transfer, pilot_wait_until, transfer_reaches
from tui.screens.rate_prompt import RateScreen
from tui.transfers import State
from tui.widgets.server_pane import ServerPane

SIZE = (80, 24)


async def test_server_pane_limits_reach_the_server(root: Path, tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        pane = app.query_one(ServerPane)
        pane.query_one("#serve-root", Input).value = str(root)
        pane.query_one("#serve-stall", Input).value = "2.5"
        pane.query_one("#serve-max", Input).value = "3"
        pane.query_one("#serve-rate", Input).value = "500K"
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server")
        limits = pane.server.limits  # type: ignore[union-attr]
        assert (limits.rate, limits.stall_timeout, limits.max_transfers) == (500 * 1024, 2.5, 3)
        status = pane.query_one("#server-status", Static)
        await pilot_wait_until(pilot, lambda: "500 KiB/s each" in str(status.content))
        assert pane.query_one("#serve-stall", Input).disabled  # fixed while it runs
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: not pane.running, what="the server to stop")


async def test_server_pane_takes_none_as_no_limit(root: Path, tmp_path: Path) -> None:
    """As f4/f5 and the settings do: ``none`` (any case) is no limit, not a bad rate."""
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        pane.query_one("#serve-root", Input).value = str(root)
        pane.query_one("#serve-rate", Input).value = " None "
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: pane.running, what="the local server")
        assert pane.server.limits.rate is None  # type: ignore[union-attr]
        await pilot.press("ctrl+s")
        await pilot_wait_until(pilot, lambda: not pane.running, what="the server to stop")


async def test_server_pane_refuses_a_bad_limit(root: Path, tmp_path: Path) -> None:
    app = make_app(dest=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(ServerPane)
        pane.query_one("#serve-root", Input).value = str(root)
        for field, bad, reason in [
            ("#serve-rate", "fast", "Limit: a rate"),
            ("#serve-stall", "0", "Stall: seconds"),
        ]:
            pane.query_one(field, Input).value = bad
            await pilot.press("ctrl+s")
            assert not pane.running
            assert app.query_one(TabbedContent).active == "server-tab"
            assert app.focused is pane.query_one(field, Input)
            assert reason in str(pane.query_one("#server-status", Static).content)
            pane.query_one(field, Input).value = "" if field == "#serve-rate" else "30"


def log_text(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(app.log_history)


def row_of(app):  # type: ignore[no-untyped-def]
    return app.transfer_list.row(only_transfer(app).id)


def row_cell(app, name: str) -> str:  # type: ignore[no-untyped-def]
    row = row_of(app)
    return "" if row is None else str(row.cell(name).content)


def row_words(app) -> str:  # type: ignore[no-untyped-def]
    row = app.transfer_list.row(only_transfer(app).id)
    return "" if row is None else str(row.cell("reason").content)


async def test_a_cut_link_shows_a_retry_countdown_then_completes(
    server: FileServer, root: Path, dest: Path
) -> None:
    """Closed, not reset: a reset makes the client's kernel drop what it had not handed
    over yet, so where the bar stops would vary (it showed 8% once in ~8 runs)."""
    body = os.urandom(2 * 1024 * 1024)
    (root / "big.bin").write_bytes(body)
    proxy = await CuttingProxy(server.port_bound).start()
    proxy.plans.append(Plan(cut_at=512 * 1024, reset=False))  # the first connection dies
    try:
        app = make_app(host="127.0.0.1", port=proxy.port, file="big.bin", dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            # Bytes arrived: the bar stays where it stopped, the countdown and the attempt
            # take Rate and ETA (the whole row used to turn into the reason).
            await pilot_wait_until(
                pilot,
                lambda: app.transfers and row_cell(app, "rate") == "retry 1 s",
                what="the countdown on the row",
            )
            assert row_cell(app, "eta") == "1/10" and row_cell(app, "bar").endswith(("24%", "25%"))
            assert not row_of(app).has_class("-words")
            assert "big.bin: retrying in 1 s (1/10): " in log_text(app)  # and the log says why
            await transfer_reaches(pilot, app, "done", timeout=20)
            # The row is done before its log lines are drawn (messages): leaving now would
            # tear the log down under them.
            await pilot_wait_until(pilot, lambda: "digest verified" in log_text(app), "the log")
    finally:
        await proxy.close()
    assert (dest / "big.bin").read_bytes() == body
    assert "2 connections" in log_text(app)


def waiting_fetch(delay: float, started: asyncio.Event, dest: Path):  # type: ignore[no-untyped-def]
    """A fetch that fails once and waits ``delay`` s to retry, as the client does, using the
    client's own ``TransferState`` (its ``retry_now`` and ``cancel`` end the wait)."""

    async def fetch(_target: Any, folder: str, *, state: TransferState, **kwargs: Any) -> Any:
        notice = RetryNotice(2, 10, delay, "connection reset by peer")
        state.begin_retry(notice)
        kwargs["on_retry"](notice)
        started.set()
        try:
            await asyncio.to_thread(state.backoff, delay)
        except asyncio.CancelledError:
            state.cancel()
            raise
        return FetchResult(str(dest / "f.bin"), 3, "blake3:" + "0" * 64, False, 0, 0.1, 3)

    return fetch


async def test_retry_now_ends_the_wait_and_cancel_stops_it(dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=1, file="f.bin", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        started = asyncio.Event()
        app.downloads.fetcher = waiting_fetch(60.0, started, dest)
        await pilot.press("enter")
        await pilot_wait_until(pilot, started.is_set)
        await pilot_wait_until(pilot, lambda: row_words(app).startswith("retrying in 60 s (2/10)"))
        await pilot_wait_until(pilot, lambda: row_words(app).startswith("retrying in 59 s (2/10)"))
        assert str(app.transfer_list.row(only_transfer(app).id).cell("state").content) == (
            "retrying"
        )
        await pilot.press("ctrl+r")  # now, not in a minute
        await transfer_reaches(pilot, app, "done")
        assert "f.bin: retrying now" in log_text(app)

        started.clear()
        await pilot.press("ctrl+r")  # a done row: nothing to retry; start another instead
        app.form.set_values(file="g.bin")
        await pilot.press("ctrl+g")
        await pilot_wait_until(pilot, started.is_set)
        newest = list(app.transfers.values())[-1]
        await pilot_wait_until(pilot, lambda: newest.state is State.RETRYING)
        await pilot.press("ctrl+x")
        await pilot_wait_until(pilot, lambda: newest.state is State.CANCELLED)


async def test_global_rate_limit_set_with_a_key_slows_downloads(
    server: FileServer, root: Path, dest: Path
) -> None:
    (root / "slow.bin").write_bytes(os.urandom(768 * 1024))
    app = make_app(host="127.0.0.1", port=server.port_bound, file="slow.bin", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, RateScreen))
        await pilot.press(*"fast", "enter")  # refused, the dialog stays and says why
        assert isinstance(app.screen, RateScreen)
        await pilot.press(*["backspace"] * 4, *"256K", "enter")
        await pilot_wait_until(pilot, lambda: not isinstance(app.screen, RateScreen))
        assert app.downloads.rate_limit.rate == 256 * 1024
        assert "limit 256 KiB/s" in str(app.transfer_list.border_title)
        began = time.monotonic()
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: app.transfers and only_transfer(app).active)
        await pilot.press("f5")  # this one alone: at most 1 MiB/s (the global limit still applies)
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, RateScreen))
        await pilot.press(*"1M", "enter")
        await transfer_reaches(pilot, app, "done", timeout=30)
        took = time.monotonic() - began
        assert only_transfer(app).limit.rate == 1024 * 1024
    assert took >= 2.0  # 768 KiB at 256 KiB/s: 3 s, less a burst and the first chunk
    assert "global rate limit: 256 KiB/s" in log_text(app)
    assert "slow.bin: rate limit 1.00 MiB/s" in log_text(app)
