"""Real links in the app (issue 9 §2, §4): the server pane's limits, rate limits, retries."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static, TabbedContent

from tests.tui.conftest import make_app, wait_until
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
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: pane.running, what="the local server")
        limits = pane.server.limits  # type: ignore[union-attr]
        assert (limits.stall_timeout, limits.max_transfers) == (2.5, 3)
        assert pane.query_one("#serve-stall", Input).disabled  # fixed while it runs
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not pane.running, what="the server to stop")


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
