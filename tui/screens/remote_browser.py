"""Browse a getfile server's folders: pick a file for the form, or select several to download.

Uses ``getfile_core.client.list_folder`` (the LIST request); the book's
servers cannot list, and the dialog says so. Every name and message is shown
as plain text (``tui.text``), never as markup, since every byte from the
network is suspect. Names are kept as the raw bytes the server sent, so a
name that is not UTF-8 (``b"\\xff.bin"``) is shown readably (``\\xff.bin``)
and still requested exactly.

Space selects files and folders of the folder shown; Enter with a selection
dismisses with a ``Selection`` (downloaded as one grouped row), without one
it opens a folder or picks a file for the form. Typing filters the listing
(a substring, any case); Backspace takes a letter off the filter, then goes
up. Entries the server lists as ``other`` are shown, greyed, with why they
cannot be downloaded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from getfile_core import (
    GetfileError,
    Options,
    Target,
    UnauthorizedError,
    format_address,
    list_folder,
)
from tui import format as fmt
from tui.screens.token_prompt import TokenScreen
from tui.text import plain, printable

MAX_ENTRIES = 5000
HELP = "Space select · Enter open/get · type to filter · Backspace up · Esc"
#: Why an entry listed as ``other`` cannot be downloaded: the server lists so what is not a
#: regular file or folder it may send (a FIFO, device or socket; unreadable; a link leading
#: out of the served folder; gone between the listing and its look).
OTHER_WHY = "cannot get: FIFO, device, unreadable or outside the root"
UP = "up"  # the option id of the ``..`` entry


@dataclass(frozen=True)
class Selection:
    """Entries of one remote folder to download together (files and folders, raw names)."""

    folder: bytes
    names: tuple[bytes, ...]


@dataclass(frozen=True)
class Row:
    kind: str
    name: bytes
    size: int


def row_label(row: Row, *, selected: bool) -> str:
    """One entry as the listing shows it: a selection mark, the name, its size or kind."""
    mark = "* " if selected else "  "
    name = printable(row.name)
    if row.kind == "dir":
        return f"{mark}{name}/  (folder)"
    if row.kind == "other":
        return f"{mark}{name}  ({OTHER_WHY})"
    return f"{mark}{name}  ({fmt.size(row.size)})"


class RemoteBrowserScreen(ModalScreen[bytes | Selection | None]):
    """Enter opens a folder, chooses a file (its raw path) or takes the selection; Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("space", "toggle", "Select", show=False),
    ]

    def __init__(
        self,
        host: str,
        port: int,
        folder: bytes,
        tokens: dict[str, bytes],
        lister: Callable[..., Awaitable[tuple[list[Any], bool]]] = list_folder,
    ) -> None:
        super().__init__()
        self.lister = lister  # ``list_folder``; a test's fake for a picture that never varies
        self.host, self.port = host, port
        self.where = format_address(host, port)  # as Transfer.where: the tokens' key
        self.tokens = tokens  # the app's: a token typed here serves the downloads too
        self.folder = folder.strip(b"/")
        self.rows: list[Row] = []  # the whole listing, sorted: folders first
        self.shown: dict[str, Row] = {}  # option id -> row, for what the filter lets through
        self.selected: set[bytes] = set()
        self.filter = ""
        self.cut = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="tall"):
            yield Label(plain(f"Files on {self.where}"), classes="dialog-title")
            yield Label("", id="browser-path", classes="dialog-note")
            yield OptionList(id="entries", markup=False)
            yield Label(HELP, id="browser-note", classes="dialog-note")

    def on_mount(self) -> None:
        self.load(self.folder)

    @work(group="listing", exclusive=True, exit_on_error=False)
    async def load(self, folder: bytes) -> None:
        note = self.query_one("#browser-note", Label)
        self.query_one("#browser-path", Label).update(plain(b"/" + folder))
        note.update("listing…")
        target = Target(self.host, self.port, folder)
        token = self.tokens.get(self.where)
        options = Options(connect_timeout=5, timeout=15, legacy=False, token=token)
        try:
            entries, cut = await self.lister(target, options=options, max_entries=MAX_ENTRIES)
        except UnauthorizedError:
            asked = TokenScreen(self.where, wrong=token is not None)
            new_token = await self.app.push_screen_wait(asked)
            if new_token is None:
                note.update("This server needs a token.")
                return
            self.tokens[self.where] = new_token
            self.load(folder)
            return
        except GetfileError as error:
            note.update(plain(error.message))  # the server's own words: never markup
            return
        self.folder, self.cut, self.filter = folder, cut, ""
        self.selected.clear()
        rows = [Row(e.kind, e.name, e.size) for e in entries]
        self.rows = sorted(rows, key=lambda r: (r.kind != "dir", r.name))
        self.show_rows(fresh=True)
        self.query_one(OptionList).focus()

    def show_rows(self, *, fresh: bool = False) -> None:
        """Fill the list with the rows the filter lets through (``..`` always first); the
        highlight stays on its entry unless this is a ``fresh`` folder.

        The options are added in ONE call: ``add_option`` per row re-measured the whole
        list each time, so a folder of 3000 files took 0.7-2 s per keystroke of the filter
        (2 cores, loaded); one ``add_options`` measures it once.
        """
        listing = self.query_one(OptionList)
        option = listing.highlighted_option
        keep = option.id if option is not None and not fresh else None
        listing.clear_options()
        self.shown.clear()
        options = [Option(Content("  ../"), id=UP)] if self.folder else []
        wanted = self.filter.casefold()
        for number, row in enumerate(self.rows):
            if wanted and wanted not in printable(row.name).casefold():
                continue
            key = f"e{number}"
            self.shown[key] = row
            label = row_label(row, selected=row.name in self.selected)
            options.append(Option(Content(label), id=key, disabled=row.kind == "other"))
        listing.add_options(options)
        if keep is not None and (keep == UP or keep in self.shown):
            listing.highlighted = listing.get_option_index(keep)
        elif options:  # the first entry, not ``..``
            listing.highlighted = 1 if self.folder and len(options) > 1 else 0
        else:
            listing.highlighted = None
        self.show_note()

    def show_note(self) -> None:
        shown = f"{len(self.rows)} entries" + (f" (cut at {MAX_ENTRIES})" if self.cut else "")
        if self.filter:
            shown = f"filter “{printable(self.filter)}”: {len(self.shown)} of {shown}"
        if self.selected:
            shown += f" · {len(self.selected)} selected: Enter downloads them"
        self.query_one("#browser-note", Label).update(Content(f"{shown} · {HELP}"))

    # ------------------------------------------------------------ keys

    def on_key(self, event: events.Key) -> None:
        """Letters typed into the list filter it; Backspace shortens the filter, then goes up."""
        if event.key == "backspace":
            event.stop()
            event.prevent_default()
            if self.filter:
                self.filter = self.filter[:-1]
                self.show_rows()
            elif self.folder:
                self.load(posixpath.dirname(self.folder))
            return
        character = event.character
        if character and event.is_printable and character != " ":
            event.stop()
            event.prevent_default()
            self.filter += character
            self.show_rows()

    def action_toggle(self) -> None:
        listing = self.query_one(OptionList)
        option = listing.highlighted_option
        row = self.shown.get(str(option.id)) if option is not None else None
        if row is None or row.kind == "other":
            return
        if row.name in self.selected:
            self.selected.discard(row.name)
        else:
            self.selected.add(row.name)
        assert listing.highlighted is not None
        label = row_label(row, selected=row.name in self.selected)
        listing.replace_option_prompt_at_index(listing.highlighted, Content(label))
        if listing.highlighted < listing.option_count - 1:
            listing.highlighted += 1  # as in file managers: the next entry, ready for Space
        self.show_note()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.selected:
            names = tuple(r.name for r in self.rows if r.name in self.selected)
            self.dismiss(Selection(self.folder, names))
            return
        if event.option.id == UP:
            self.load(posixpath.dirname(self.folder))
            return
        row = self.shown[str(event.option.id)]
        path = posixpath.join(self.folder, row.name)
        if row.kind == "dir":
            self.load(path)
        else:
            self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
