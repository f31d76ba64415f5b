"""A download that ends while the terminal is in the background rings and notifies."""

from __future__ import annotations

from pathlib import Path

from textual import events

from getfile_core import FileServer
from tests.support.tui import only_transfer, pilot_wait_until
from tui.app import GetfileApp
from tui.launch import Launch
from tui.settings import LoadedSettings, Settings

SIZE = (80, 24)


def app_with(server: FileServer, dest: Path, settings: Settings) -> GetfileApp:
    launch = Launch(host="127.0.0.1", port=str(server.port_bound), file="hello.txt",
                    dest=str(dest))  # fmt: skip
    return GetfileApp(launch, settings=LoadedSettings(settings, (), Path("config.toml")))


async def test_background_end_notifies(server: FileServer, dest: Path) -> None:
    app = app_with(server, dest, Settings(notify_after=0))
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(events.AppBlur())
        await pilot_wait_until(pilot, lambda: app.away.in_background, what="blur")
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: bool(app.transfers) and only_transfer(app).state == "done"
        )
        await pilot_wait_until(pilot, lambda: bool(app.away.sent), what="a notification")
    [sent] = app.away.sent
    assert sent.startswith("\a")
    assert "\x1b]9;getfile: hello.txt downloaded\a" in sent
    assert "\x1b]777;notify;getfile;hello.txt downloaded\a" in sent


async def test_foreground_or_turned_off_is_silent(server: FileServer, dest: Path) -> None:
    app = app_with(server, dest, Settings(notify_after=0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot_wait_until(
            pilot, lambda: bool(app.transfers) and only_transfer(app).state == "done"
        )
        await pilot.pause()
    assert app.away.sent == []
    quiet = app_with(server, dest / "..", Settings(notify_after=0, notify_osc=False))
    async with quiet.run_test(size=SIZE) as pilot:
        quiet.post_message(events.AppBlur())
        await pilot_wait_until(pilot, lambda: quiet.away.in_background, what="blur")
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: bool(quiet.away.sent), what="the bell")
    assert quiet.away.sent == ["\a"]
