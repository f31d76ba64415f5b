"""F1: every key of the app on one small page, as ``tui.actions`` describes them, with the
keys in force (Textual's own panel lists each widget's too)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label

#: Keys that belong to widgets rather than to the app, as a newcomer would look for them.
WIDGET_KEYS = [
    ("Enter", "in the form: download; on a button: press it"),
    ("Tab / shift+Tab", "next / previous field, button or download"),
    ("up / down", "move between downloads"),
    ("Esc", "close a dialog (answers Skip, Stay or Cancel)"),
]


class KeysScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        rows = [*self.bindings, *WIDGET_KEYS]
        width = max(len(key) for key, _ in rows)
        with Vertical(id="dialog"):
            yield Label("Keys", classes="dialog-title")
            # Scrolls when the list is taller than the terminal (80x24 holds 16 lines of it).
            with VerticalScroll(id="keys-list"):
                # Keys come from a keymap the user wrote: plain text ("[" is a key, not markup).
                yield Label(Content("\n".join(f"{key:<{width}}  {what}" for key, what in rows)))
            yield Label("ctrl+p finds every command by name. Esc closes.", classes="dialog-note")

    def on_mount(self) -> None:
        # As tall as its lines (title, gap, note, borders: 5 more), at most the screen.
        lines = len(self.bindings) + len(WIDGET_KEYS)
        self.query_one("#dialog").styles.height = lines + 5
