"""Recent servers and bookmarks, one key away: pick one to fill Server and Port (and File's
folder, for a bookmark)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tui.text import plain


@dataclass(frozen=True)
class Place:
    """Where the form should point: a server, and for a bookmark a folder on it."""

    host: str
    port: int
    folder: str = ""
    label: str = ""
    #: A bookmark's token file (a path; the token itself is never stored by us).
    token_file: str | None = None


class RecentScreen(ModalScreen[Place | None]):
    """An option list of bookmarks, then recent servers; Enter picks, Esc closes."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, places: list[Place]) -> None:
        super().__init__()
        self.places = places

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Servers", classes="dialog-title")
            if not self.places:
                yield Label("None yet: the servers you download from are listed here.",
                            classes="dialog-text")  # fmt: skip
            # Host names and bookmark names came from files and users: plain text only.
            yield OptionList(*(Option(plain(p.label)) for p in self.places))
            yield Label("Enter fills the form; Esc closes.", classes="dialog-note")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.places[event.option_index])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
