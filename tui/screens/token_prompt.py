"""Asked when a server wants a shared token: the secret is typed, never shown."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from tui.text import printable


class TokenScreen(ModalScreen[bytes | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, where: str, *, wrong: bool = False) -> None:
        super().__init__()
        self.where = where
        self.wrong = wrong

    def compose(self) -> ComposeResult:
        where = printable(self.where)
        first = "That token was refused." if self.wrong else f"{where} needs a token."
        with Vertical(id="dialog"):
            yield Label("Token", classes="dialog-title")
            yield Label(
                Content(f"{first} Type it and press Enter (Esc gives up)."), classes="dialog-text"
            )
            yield Input(password=True, id="token", placeholder="token", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        self.dismiss(value.encode() if value else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
