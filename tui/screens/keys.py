"""F1: every key of the app on one small page, as ``tui.actions`` describes them, with the
keys in force (Textual's own panel lists each widget's too)."""

from __future__ import annotations

import textwrap

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
#: Columns for a line inside the dialog (74 wide: borders, padding and a scrollbar off).
LINE_ROOM = 68


def key_lines(rows: list[tuple[str, str]], room: int = LINE_ROOM) -> list[str]:
    """``key  what`` lines, each ``what`` wrapped under itself: at 80 columns the longest
    ones were cut (``retry … (now, if waiting``, ``… to the browser``)."""
    width = max(len(key) for key, _ in rows)
    lines = []
    for key, what in rows:
        parts = textwrap.wrap(what, max(20, room - width - 2)) or [""]
        lines.append(f"{key:<{width}}  {parts[0]}")
        lines.extend(" " * (width + 2) + part for part in parts[1:])
    return lines


class KeysScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        self.lines = key_lines([*self.bindings, *WIDGET_KEYS])
        with Vertical(id="dialog"):
            yield Label("Keys", classes="dialog-title")
            # Scrolls when the list is taller than the terminal (80x24 holds 16 lines of it).
            with VerticalScroll(id="keys-list"):
                # Keys come from a keymap the user wrote: plain text ("[" is a key, not markup).
                yield Label(Content("\n".join(self.lines)))
            yield Label("ctrl+p finds every command by name. Esc closes.", classes="dialog-note")

    def on_mount(self) -> None:
        # As tall as its lines (title, gap, note, borders: 5 more), at most the screen.
        self.query_one("#dialog").styles.height = len(self.lines) + 5
