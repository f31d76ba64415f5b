"""Asked before quitting while downloads run: quitting cancels them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmQuitScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,q", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Stay"),
        Binding("left", "app.focus_previous", show=False),
        Binding("right", "app.focus_next", show=False),
    ]

    def __init__(self, running: int) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        one = self.running == 1
        what = "1 download is" if one else f"{self.running} downloads are"
        with Vertical(id="dialog"):
            yield Label("Quit getfile?", classes="dialog-title")
            yield Label(
                f"{what} still running. Quitting stops {'it' if one else 'them'}: what "
                "arrived so far stays in a partial file, never under the final name, "
                f"and the next start of getfile-tui resumes {'it' if one else 'them'}.",
                classes="dialog-text",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Quit (y)", id="quit", variant="error", compact=True)
                yield Button("Stay (n)", id="stay", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit")

    def action_answer(self, quit_: bool) -> None:
        self.dismiss(quit_)
