"""The app's collaborators on their own: no app, no screen, no socket.

Each is built the way ``GetfileApp`` builds it, with fakes for the callables
it is given (the log, ``push_screen``, ``notify``), and asked the questions the
app's keys ask it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import getfile_core
from getfile_core import Target
from tui.actions import delegate
from tui.away import AwayNotifier
from tui.downloads import DownloadController
from tui.persist import SavedQueue
from tui.places import MAX_TOKEN_BYTES, Places
from tui.screens.recent import Place
from tui.settings import Settings
from tui.text import MAX_SHOWN, printable
from tui.transfer_tools import TransferTools
from tui.transfers import State, Transfer

TARGET = Target("files.example.org", 50001, b"docs/report.pdf")


class Said:
    """The log, the toasts and the dialogs, as lists (a dialog is answered by ``answer``)."""

    def __init__(self, answer: object = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self.toasts: list[str] = []
        self.dialogs: list[object] = []
        self.answer = answer

    def log(self, text: str, level: str = "info") -> None:
        self.lines.append((text, level))

    def notify(self, text: str, **_kwargs: object) -> None:
        self.toasts.append(text)

    def ask(self, screen: object, answered: Any = None) -> None:
        self.dialogs.append(screen)
        if answered is not None:
            answered(self.answer)


class NoRows:
    """A transfer list with nothing selected (the tools then take the newest that fits)."""

    def __init__(self) -> None:
        self.limit: float | None = -1.0

    def selected_transfer(self) -> None:
        return None

    def show_limit(self, rate: float | None) -> None:
        self.limit = rate


def controller() -> DownloadController:
    return DownloadController(None, lambda _message: None, lambda _work, _what: None)  # type: ignore[arg-type]


def tools_for(downloads: DownloadController, said: Said, rows: NoRows) -> TransferTools:
    return TransferTools(downloads, lambda: rows, said.ask, said.notify, said.log)  # type: ignore[arg-type, return-value]


def finished(name: str = "report.pdf") -> Transfer:
    transfer = Transfer(target=TARGET, folder="/nowhere", name=name)
    transfer.restore(State.DONE, "", size=3, received=3)
    return transfer


def test_transfer_tools_say_when_there_is_nothing_to_act_on() -> None:
    said, downloads = Said(), controller()
    tools = tools_for(downloads, said, NoRows())
    tools.cancel()
    tools.retry()
    tools.limit_transfer()
    tools.verify()
    assert said.toasts == [
        "Nothing to cancel.",
        "Nothing to retry.",
        "No running download to limit.",
        "No finished download to verify.",
    ]
    assert said.dialogs == []


def test_deliver_only_in_a_browser_session() -> None:
    said, downloads = Said(), controller()
    downloads.adopt(finished())
    tools_for(downloads, said, NoRows()).deliver()
    assert said.toasts == ["Only in a browser session (getfile-tui --web)."]


def test_the_global_limit_reaches_the_controller_and_the_title() -> None:
    said, downloads, rows = Said(answer=256 * 1024.0), controller(), NoRows()
    tools_for(downloads, said, rows).limit_rate()  # the dialog answers 256 KiB/s
    assert downloads.rate_limit.rate == 256 * 1024
    assert rows.limit == 256 * 1024
    said.answer = False  # Esc: nothing changes
    tools_for(downloads, said, rows).limit_rate()
    assert downloads.rate_limit.rate == 256 * 1024


def test_a_bookmark_token_file_too_long_is_refused(tmp_path: Path) -> None:
    said, tokens = Said(), {}
    places = Places(None, lambda: None, tokens, said.ask, said.log)  # type: ignore[arg-type, return-value]
    secret = tmp_path / "token"
    secret.write_bytes(b"x" * (MAX_TOKEN_BYTES + 1))
    places._read_token(Place("h", 7, "", "h:7", str(secret)))
    assert tokens == {}
    assert said.lines == [(f"token file {secret}: empty or too long", "error")]
    secret.write_bytes(b"s3cret\n")
    places._read_token(Place("::1", 7, "", "[::1]:7", str(secret)))
    assert tokens == {"[::1]:7": b"s3cret"}  # keyed as Transfer.where: format_address


def test_places_remember_the_servers_asked() -> None:
    said = Said()
    places = Places(None, lambda: None, {}, said.ask, said.log)  # type: ignore[arg-type, return-value]
    places.remember("far.example", 7)
    places.remember("near.example", 8)
    assert [(s.host, s.port) for s in places.history.recent][:2] == [
        ("near.example", 8),
        ("far.example", 7),
    ]


def test_saved_queue_without_a_store_does_nothing() -> None:
    said, downloads = Said(), controller()
    queue = SavedQueue(None, downloads, said.log)
    queue.restore(resume=True)
    queue.changed()
    queue.save()
    queue.freeze()
    queue.close()
    assert said.lines == [] and downloads.transfers == {}


@pytest.mark.parametrize("looked_away", [False, True])
def test_away_notifier_writes_to_the_terminal_only_when_looked_away(looked_away: bool) -> None:
    now = [0.0]
    written: list[str] = []
    settings = Settings(notify_osc=False)  # the bell alone: one known sequence
    away = AwayNotifier(settings, write=written.append, clock=lambda: now[0])
    away.in_background = looked_away
    transfer = Transfer(target=TARGET, folder="/nowhere", name="report.pdf")
    away.changed(transfer)  # queued: it begins now
    now[0] = 60.0  # longer than notify_after (10 s)
    transfer.restore(State.DONE, "", size=3, received=3)
    away.changed(transfer)
    assert written == (["\a"] if looked_away else [])
    assert away.sent == written


def test_delegate_routes_a_key_to_its_collaborator() -> None:
    class Owner:
        def __init__(self) -> None:
            self.calls: list[str] = []
            self.tools = self

        def cancel(self) -> str:
            self.calls.append("cancel")
            return "done"

    action = delegate("tools", "cancel")
    owner = Owner()
    assert action(owner) == "done" and owner.calls == ["cancel"]
    assert action.__name__ == "action_cancel"


def test_the_app_prints_text_by_the_library_rule_within_its_bound() -> None:
    hostile = "a\x1b]2;owned\x07\u202eb\udcff\n"
    assert printable(hostile) == getfile_core.printable(hostile)
    assert printable(b"\xff") == "\\xff"
    assert len(printable("x" * 10 * MAX_SHOWN)) == MAX_SHOWN
