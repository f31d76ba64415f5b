"""Under an expanded grouped row: its files in flight and the last ones done.

The lines come from the row's ``Group`` (at most ``tui.groups.SHOWN``): a
window on the tree, never a list of its 100,000 files.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui.text import printable


def tail(text: str, room: int) -> str:
    """``text`` in at most ``room`` columns, its end kept (where a path says most)."""
    return text if len(text) <= room else "…" + text[-(room - 1) :]


class GroupFiles(Static):
    """The lines under one grouped row (its id names the row's transfer)."""

    def __init__(self, transfer_id: int) -> None:
        super().__init__("", id=f"group-{transfer_id}", classes="group-files", markup=False)

    def set_lines(self, lines: list[tuple[str, str]], width: int) -> None:
        """One line per file, never wrapped: a deep path keeps its end (``…/x/name``)."""
        room = max(8, width - 12)
        shown = [f"    {word:<7} {tail(printable(path), room)}" for word, path in lines]
        self.update(Content("\n".join(shown) or "    (no files yet)"), layout=True)
