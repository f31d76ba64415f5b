"""Tools on a finished download and on the lists: verify against a checksum, hand a file
to the browser, recent servers and bookmarks, clearing finished rows.

A mixin of ``GetfileApp``: each tool is a dialog (``tui.screens``) plus a few
lines that pick the transfer and say what happened.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING

from getfile_core import format_address
from tui.history import Bookmark
from tui.screens.name_prompt import NameScreen
from tui.screens.recent import Place, RecentScreen
from tui.screens.verify import VerifyScreen
from tui.transfers import State

if TYPE_CHECKING:
    from tui.app import GetfileApp

    _Base = GetfileApp
else:
    _Base = object


#: A token is a short secret; a file bigger than this is not one.
MAX_TOKEN_BYTES = 4096


class ToolsMixin(_Base):
    """Verify, deliver, recent servers, clear finished: actions of ``GetfileApp``."""

    def action_deliver(self) -> None:
        """In a browser session: hand a finished download to the browser (a save dialog)."""
        if not self.is_web:
            self.notify("Only in a browser session (getfile-tui --web).", timeout=3)
            return
        transfer = self.downloads.pick(self._selected(), lambda t: t.state is State.DONE)
        if transfer is None or not transfer.saved_path:
            self.notify("No finished download to send to the browser.", timeout=2)
            return
        try:
            stream = open(transfer.saved_path, "rb")  # noqa: SIM115 (Textual closes it)
        except OSError as error:
            self.log_pane.add(f"{transfer.name}: cannot open it: {error.strerror}", "error")
            return
        self.deliver_binary(stream, save_filename=transfer.name)
        self.log_pane.add(f"{transfer.name}: handed to the browser")

    def action_recent(self) -> None:
        """Bookmarks, then recent servers: one pick fills the form."""
        places = [
            Place(b.host, b.port, b.folder, f"{b.name}  ({format_address(b.host, b.port)}"
                  f"{' /' + b.folder if b.folder else ''})", b.token_file)
            for b in self.history.bookmarks.values()
        ]  # fmt: skip
        places += [Place(s.host, s.port, "", format_address(s.host, s.port))
                   for s in self.history.recent]  # fmt: skip

        def chosen(place: Place | None) -> None:
            if place is None:
                return
            self.form.set_values(host=place.host, port=str(place.port))
            if place.folder:
                self.form.set_values(file=place.folder.rstrip("/") + "/")
            if place.token_file:
                self._read_token(place)
            self.form.focus_end("file")

        self.push_screen(RecentScreen(places), chosen)

    def _read_token(self, place: Place) -> None:
        """A bookmark's token lives in a file of the user's (never in our own files)."""
        path = os.path.expanduser(place.token_file or "")
        try:
            with open(path, "rb") as stream:
                token = stream.read(MAX_TOKEN_BYTES + 1).strip()
        except OSError as error:
            self.log_pane.add(f"token file {path}: {error.strerror}", "error")
            return
        if not token or len(token) > MAX_TOKEN_BYTES:
            self.log_pane.add(f"token file {path}: empty or too long", "error")
            return
        self.downloads.tokens[format_address(place.host, place.port)] = token  # as Transfer.where
        self.log_pane.add(f"token for {format_address(place.host, place.port)} read from {path}")

    def action_bookmark(self) -> None:
        """Name the form's server, port and File's folder as a bookmark (ctrl+y lists it)."""
        address = self.form.server_address()
        if address is None:
            return  # the form says what is wrong
        host, port = address
        folder = posixpath.dirname(os.fsdecode(self.form.file_path()))
        where = f"{format_address(host, port)}{' /' + folder if folder else ''}"

        def named(name: str | None) -> None:
            if name is None:
                return
            try:
                bookmark = Bookmark(name, host, port, folder)
                self.history = self.history.with_bookmark(bookmark)
            except ValueError as error:
                self.log_pane.add(f"bookmark not kept: {error}", "error")
                return
            if self.history_store is not None:
                self.history_store.save(self.history)
            self.log_pane.add(f"bookmark {name}: {where}", "ok")

        self.push_screen(NameScreen("Bookmark", f"A name for {where}"), named)

    async def action_clear_finished(self) -> None:
        """Drop done, failed and cancelled rows: from the list and from the saved history."""
        gone = self.downloads.clear_finished()
        await self.transfer_list.remove_transfers({t.id for t in gone})
        if self.keeper is not None:
            self.keeper.save(list(self.transfers.values()))
        self.log_pane.add(f"cleared {len(gone)} finished download(s)")
        self._refresh_keys()

    def action_verify(self) -> None:
        """Verify a finished download against a published checksum (a dialog)."""
        transfer = self.downloads.pick(self._selected(), lambda t: t.state is State.DONE)
        if transfer is None or not transfer.saved_path:
            self.notify("No finished download to verify.", timeout=2)
            return
        self.push_screen(VerifyScreen(transfer.name, transfer.saved_path))
