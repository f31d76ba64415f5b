"""Browse a getfile server's folders and pick a file for the form.

Uses ``getfile_core.client.list_folder`` (the LIST request); the book's
servers cannot list, and the dialog says so. Every name and message is shown
as plain text (``tui.text``), never as markup, since every byte from the
network is suspect. Names are kept as the raw bytes the server sent, so a
name that is not UTF-8 (``b"\\xff.bin"``) is shown readably (``\\xff.bin``)
and still requested exactly.
"""

from __future__ import annotations

import posixpath

from textual import work
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
HELP = "Enter: open/choose · Backspace: up · Esc: cancel"


class RemoteBrowserScreen(ModalScreen[bytes | None]):
    """Enter opens a folder or chooses a file (dismissed with its raw path); Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("backspace", "up", "Parent folder"),
    ]

    def __init__(self, host: str, port: int, folder: bytes, tokens: dict[str, bytes]) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.where = format_address(host, port)  # as Transfer.where: the tokens' key
        self.tokens = tokens  # the app's: a token typed here serves the downloads too
        self.folder = folder.strip(b"/")
        self.entries: dict[str, tuple[str, bytes]] = {}  # option id -> (kind, raw name)

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
            entries, cut = await list_folder(target, options=options, max_entries=MAX_ENTRIES)
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
        self.folder = folder
        self.entries.clear()
        listing = self.query_one(OptionList)
        listing.clear_options()
        rows = sorted(entries, key=lambda e: (e.kind != "dir", e.name))
        for number, entry in enumerate(rows):
            key = f"e{number}"
            self.entries[key] = (entry.kind, entry.name)
            name = printable(entry.name)
            label = f"{name}/" if entry.kind == "dir" else f"{name}  ({fmt.size(entry.size)})"
            listing.add_option(Option(Content(label), id=key, disabled=entry.kind == "other"))
        listing.highlighted = 0 if rows else None
        listing.focus()
        shown = f"{len(rows)} entries" + (f" (cut at {MAX_ENTRIES})" if cut else "")
        note.update(f"{shown} · {HELP}")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        kind, name = self.entries[str(event.option.id)]
        path = posixpath.join(self.folder, name)
        if kind == "dir":
            self.load(path)
        else:
            self.dismiss(path)

    def action_up(self) -> None:
        if self.folder:
            self.load(posixpath.dirname(self.folder))

    def action_cancel(self) -> None:
        self.dismiss(None)
