"""F1: every key of the app on one small page (Textual's own panel lists each widget's too)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

#: Longer words for the keys screen (F1) than fit in the footer.
KEY_HELP = {
    "download": "download the file in the form",
    "cancel": "cancel the selected download (or the newest)",
    "retry": "retry the selected failed or cancelled download",
    "toggle_server": "start or stop the local server",
    "switch_pane": "show the log or the server pane",
    "toggle_keys": "this list",
    "quit": "quit (asks first if downloads run)",
    "cancel_all": "cancel every running download",
    "pick_folder": "choose the folder to save into",
    "browse": "list the server's files and pick one",
    "clear_log": "clear the log",
    "next_theme": "next colour theme",
}


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
            yield Label("\n".join(f"{key:<{width}}  {what}" for key, what in rows))
            yield Label("ctrl+p finds every command by name. Esc closes.", classes="dialog-note")
