"""Asks for a rate limit: ``500K``, ``2M``, ``1.5G`` (powers of 1024, as curl's), or empty."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.validation import Function
from textual.widgets import Input, Label

from tui.limits import describe_limit, parse_limit
from tui.text import plain, printable


def _is_limit(value: str) -> bool:
    try:
        parse_limit(value)
    except ValueError:
        return False
    return True


class RateScreen(ModalScreen[float | None | bool]):
    """Dismissed with the new rate (bytes/s), ``None`` for no limit, ``False`` when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, current: float | None) -> None:
        super().__init__()
        self.what = what  # "every download" or a transfer's name (from a server: plain text)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Rate limit", classes="dialog-title")
            yield Label(
                Content(
                    f"For {printable(self.what)} (now: {describe_limit(self.current)}). "
                    "Type 500K, 2M or 1.5G; empty for no limit. Enter sets it, Esc keeps it."
                ),
                classes="dialog-text",
            )
            yield Input(
                placeholder="e.g. 500K",
                id="rate",
                compact=True,
                max_length=16,
                validators=[Function(_is_limit, "a rate such as 500K, 2M or 1.5G")],
            )
            yield Label("", id="rate-error", classes="dialog-note")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            rate = parse_limit(event.value)
        except ValueError as error:
            self.query_one("#rate-error", Label).update(plain(str(error)))
            return
        self.dismiss(rate)

    def action_cancel(self) -> None:
        self.dismiss(False)
