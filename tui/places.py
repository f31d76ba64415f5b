"""Where the user goes: recent servers and bookmarks, and a bookmark's token file.

A plain class the app owns. It keeps the ``History`` (and saves it, when a
store is given), fills the form from a pick, and reads a bookmark's token
into the download controller's tokens; it opens its dialogs through an
injected ``ask`` (``App.push_screen``) and reports through ``log``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable

from getfile_core import format_address
from tui.history import Bookmark, History, HistoryStore
from tui.screens.name_prompt import NameScreen
from tui.screens.recent import Place, RecentScreen
from tui.widgets.download_form import DownloadForm

#: A token is a short secret; a file bigger than this is not one.
MAX_TOKEN_BYTES = 4096


class Places:
    """Recent servers and bookmarks: remembered, listed, named, and turned into the form."""

    def __init__(
        self,
        store: HistoryStore | None,
        form: Callable[[], DownloadForm],
        tokens: dict[str, bytes],
        ask: Callable[..., object],
        log: Callable[[str, str], None],
    ) -> None:
        #: None: the history is not kept (as in most tests).
        self.store = store
        self.history = store.load() if store is not None else History()
        self.form = form
        self.tokens = tokens  # the download controller's, keyed as ``Transfer.where``
        self.ask = ask
        self.log = log

    def remember(self, host: str, port: int) -> None:
        """A download was asked of ``host:port``: it heads the recent servers."""
        self._keep(self.history.remember(host, port))

    def _keep(self, history: History) -> None:
        self.history = history
        if self.store is not None:
            self.store.save(history)

    def recent(self) -> None:
        """Bookmarks, then recent servers: one pick fills the form."""
        places = [
            Place(b.host, b.port, b.folder, f"{b.name}  ({format_address(b.host, b.port)}"
                  f"{' /' + b.folder if b.folder else ''})", b.token_file)
            for b in self.history.bookmarks.values()
        ]  # fmt: skip
        places += [Place(s.host, s.port, "", format_address(s.host, s.port))
                   for s in self.history.recent]  # fmt: skip
        self.ask(RecentScreen(places), self._chosen)

    def _chosen(self, place: Place | None) -> None:
        if place is None:
            return
        form = self.form()
        form.set_values(host=place.host, port=str(place.port))
        if place.folder:
            form.set_values(file=place.folder.rstrip("/") + "/")
        if place.token_file:
            self._read_token(place)
        form.focus_end("file")

    def _read_token(self, place: Place) -> None:
        """A bookmark's token lives in a file of the user's (never in our own files)."""
        path = os.path.expanduser(place.token_file or "")
        try:
            with open(path, "rb") as stream:
                token = stream.read(MAX_TOKEN_BYTES + 1).strip()
        except OSError as error:
            self.log(f"token file {path}: {error.strerror}", "error")
            return
        if not token or len(token) > MAX_TOKEN_BYTES:
            self.log(f"token file {path}: empty or too long", "error")
            return
        where = format_address(place.host, place.port)
        self.tokens[where] = token
        self.log(f"token for {where} read from {path}", "info")

    def bookmark(self) -> None:
        """Name the form's server, port and File's folder as a bookmark (ctrl+y lists it)."""
        form = self.form()
        address = form.server_address()
        if address is None:
            return  # the form says what is wrong
        host, port = address
        folder = posixpath.dirname(os.fsdecode(form.file_path()))
        where = f"{format_address(host, port)}{' /' + folder if folder else ''}"

        def named(name: str | None) -> None:
            if name is None:
                return
            try:
                history = self.history.with_bookmark(Bookmark(name, host, port, folder))
            except ValueError as error:
                self.log(f"bookmark not kept: {error}", "error")
                return
            self._keep(history)
            self.log(f"bookmark {name}: {where}", "ok")

        self.ask(NameScreen("Bookmark", f"A name for {where}"), named)
