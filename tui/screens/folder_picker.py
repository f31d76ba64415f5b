"""Choose the destination folder from a tree of folders (no files shown)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Label

from tui.text import plain, printable


class FolderTree(DirectoryTree):
    """Folders only, with plain-text icons that every terminal font has."""

    ICON_NODE_EXPANDED = "- "
    ICON_NODE = "+ "
    ICON_FILE = "  "

    def process_label(self, label: str | Text) -> Text:
        """Folder names from the disk are plain text, never Rich markup (``[/]`` would crash)."""
        return Text(printable(label.plain if isinstance(label, Text) else label))

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if p.is_dir() and not p.name.startswith(".")]


class FolderPickerScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("backspace", "up", "Parent folder"),
    ]

    def __init__(self, start: str) -> None:
        super().__init__()
        start = os.path.expanduser(start or ".")
        self.start = os.path.abspath(start if os.path.isdir(start) else os.getcwd())

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="tall"):
            yield Label("Save to which folder?", classes="dialog-title")
            yield Label(plain(self.start), id="picker-root", classes="dialog-note")
            tree = FolderTree(self.start, id="folder-tree")
            tree.auto_expand = False
            yield tree
            yield Label(
                "Enter: choose · Space: open · Backspace: up · Esc: cancel",
                classes="dialog-note",
            )

    def on_mount(self) -> None:
        self.query_one(FolderTree).focus()

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self.dismiss(str(event.path))

    def action_up(self) -> None:
        tree = self.query_one(FolderTree)
        parent = Path(tree.path).resolve().parent
        tree.path = parent
        self.query_one("#picker-root", Label).update(plain(str(parent)))

    def action_cancel(self) -> None:
        self.dismiss(None)
