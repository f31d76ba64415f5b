"""Asks for a short name (a bookmark's): Enter keeps it, Esc gives up."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from tui.text import plain

MAX_NAME = 64


class NameScreen(ModalScreen[str | None]):
    """Dismissed with the name typed (stripped, printable, 1-64 characters) or ``None``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, what: str) -> None:
        super().__init__()
        self.title_text, self.what = title, what

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(plain(self.what), classes="dialog-text")
            yield Input(placeholder="a name", id="name", compact=True, max_length=MAX_NAME)
            yield Label("", id="name-error", classes="dialog-note", markup=False)

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if not name or not name.isprintable():
            self.query_one("#name-error", Label).update("A name of printable characters.")
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
