"""Asks how many connections the next downloads may use: segments of a file, and mirrors.

The palette's "Segments and mirrors…" opens it; the form keeps the answer
for the downloads it starts (its title says so), so 80x24 stays uncluttered
for everyone who never needs it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from getfile_core import UsageError, parse_url
from tui.groups import Connections
from tui.settings import MAX_SEGMENTS
from tui.text import plain

#: Mirrors one download may name (each is one more server to connect to).
MAX_MIRRORS = 8


def parse_connections(segments: str, mirrors: str) -> Connections:
    """The dialog's two fields as ``Connections``; ``ValueError`` saying what is wrong."""
    text = segments.strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= MAX_SEGMENTS:
        raise ValueError(f"Segments: a number from 1 to {MAX_SEGMENTS}")
    urls = tuple(mirrors.split())
    if len(urls) > MAX_MIRRORS:
        raise ValueError(f"Mirrors: at most {MAX_MIRRORS}")
    for url in urls:
        try:
            parse_url(url)
        except UsageError as error:
            raise ValueError(f"Mirror {url}: {error.message}") from None
    return Connections(int(text), urls)


class ConnectionsScreen(ModalScreen[Connections | None]):
    """Dismissed with the new ``Connections``, or ``None`` when cancelled (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: Connections) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Segments and mirrors", classes="dialog-title")
            yield Label(
                "For the next downloads from the form. Segments: connections for one file "
                f"(1-{MAX_SEGMENTS}; files under 4 MiB keep one). Mirrors: getfile:// URLs "
                "of the same file on other servers, space-separated. Enter sets, Esc keeps.",
                classes="dialog-text",
            )
            yield Label("Segments", classes="dialog-note")
            yield Input(
                str(self.current.segments),
                placeholder="1",
                id="segments",
                compact=True,
                restrict=r"[0-9]*",
                max_length=2,
            )
            yield Label("Mirrors (Tab)", classes="dialog-note")
            yield Input(
                " ".join(self.current.mirrors),
                placeholder="getfile://other:50001/path …",
                id="mirrors",
                compact=True,
            )
            yield Label("", id="connections-error", classes="dialog-note")

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = False
        segments = self.query_one("#segments", Input)
        segments.focus()
        # Typing a number replaces the one shown (4 must not become 14). Selected after the
        # first refresh: in a real terminal the focus arrives after on_mount, and moving
        # the cursor here (as before) left "1" in place while the pilot saw it replaced.
        self.call_after_refresh(segments.select_all)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        segments = self.query_one("#segments", Input).value
        mirrors = self.query_one("#mirrors", Input).value
        try:
            answer = parse_connections(segments, mirrors)
        except ValueError as error:
            self.query_one("#connections-error", Label).update(plain(str(error)))
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)
