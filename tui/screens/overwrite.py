"""Asked when a download's name is already taken at the destination."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from getfile_core import part_name
from tui import format as fmt
from tui.text import printable
from tui.transfers import Choice, Conflict, free_name


class OverwriteScreen(ModalScreen[Choice]):
    """Overwrite / Resume / Rename / Skip. Resume only where a ``.part`` exists and
    the server is ours (a legacy server cannot start in the middle)."""

    BINDINGS = [
        Binding("o", "choose('overwrite')", "Overwrite"),
        Binding("r", "choose('resume')", "Resume"),
        Binding("n", "choose('rename')", "Rename"),
        Binding("s,escape", "choose('skip')", "Skip"),
        Binding("left", "app.focus_previous", show=False),
        Binding("right", "app.focus_next", show=False),
    ]

    def __init__(self, conflict: Conflict, *, can_resume: bool) -> None:
        super().__init__()
        self.conflict = conflict
        self.can_resume = can_resume and conflict.part_exists

    def compose(self) -> ComposeResult:
        conflict = self.conflict
        name, folder = printable(conflict.name), printable(conflict.folder)
        lines = []
        if conflict.final_exists:
            lines.append(f"{name} already exists in {folder}.")
        if conflict.part_size is not None:
            lines.append(
                f"{printable(part_name(conflict.name))} ({fmt.size(conflict.part_size)}) is left "
                "from an earlier download."
            )
        if conflict.part_exists and not self.can_resume:
            lines.append("This server cannot resume (it speaks only the legacy protocol).")
        rename_to = free_name(conflict.folder, conflict.name)
        with Vertical(id="dialog"):
            yield Label("File already there", classes="dialog-title")
            # Names come from the server and the disk: plain Content, never markup.
            yield Label(Content("\n".join(lines)), classes="dialog-text")
            yield Label(
                Content(f"Rename saves it as {printable(rename_to)}"), classes="dialog-note"
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Overwrite (o)", id="overwrite", variant="error", compact=True)
                if self.can_resume:
                    yield Button("Resume (r)", id="resume", variant="primary", compact=True)
                yield Button("Rename (n)", id="rename", compact=True)
                yield Button("Skip (s)", id="skip", compact=True)

    def on_mount(self) -> None:
        self.query_one("#resume" if self.can_resume else "#rename", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(str(event.button.id))

    def action_choose(self, choice: str) -> None:
        if choice == Choice.RESUME and not self.can_resume:
            self.app.bell()
            return
        self.dismiss(Choice(choice))
