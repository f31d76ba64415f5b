"""The app's keys that change what is on the screen rather than a download: the lower
pane (log or server), the F1 list of keys, and the next downloads' connections.

A plain class the app owns and routes those keys to (``tui.actions.delegate``),
given the widgets it moves between and the app's ``push_screen``, never the app.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.screen import Screen
from textual.widgets import TabbedContent

from tui.actions import ACTIONS
from tui.downloads import DownloadController
from tui.groups import Connections
from tui.screens.connections import ConnectionsScreen
from tui.screens.keys import KeysScreen
from tui.widgets.download_form import DownloadForm
from tui.widgets.server_pane import ServerPane

LOG_TAB, SERVER_TAB = "log-tab", "server-tab"


class ViewKeys:
    def __init__(
        self,
        downloads: DownloadController,
        form: Callable[[], DownloadForm],
        server_pane: Callable[[], ServerPane],
        panes: Callable[[], TabbedContent],
        screen: Callable[[], Screen[object]],
        push_screen: Callable[..., object],
        key_for: Callable[[str], str],
        log: Callable[[str], object],
        after_refresh: Callable[..., object],
    ) -> None:
        self.downloads = downloads
        self.form = form
        self.server_pane = server_pane
        self.panes = panes
        self.screen = screen  # the screen on top now
        self.push_screen = push_screen
        self.key_for = key_for
        self.log = log
        self.after_refresh = after_refresh  # the app's ``call_after_refresh``

    def show_server(self) -> None:
        self.panes().active = SERVER_TAB

    def switch_pane(self) -> None:
        """Show the other pane; the focus goes along (to the server's first field, or back
        to the form), so the keys typed next act where the eyes are."""
        panes = self.panes()
        panes.active = SERVER_TAB if panes.active == LOG_TAB else LOG_TAB
        if panes.active == SERVER_TAB:
            self.after_refresh(self.server_pane().focus_first)
        else:
            self.form().focus_first_gap()

    def toggle_keys(self) -> None:
        """F1: the list of keys in force (after any keymap), or away again."""
        screen = self.screen()
        if isinstance(screen, KeysScreen):
            screen.dismiss()
            return
        keys = [(self.key_for(a.id), a.help) for a in ACTIONS if a.key]
        self.push_screen(KeysScreen(keys))

    def connections(self) -> None:
        """Segments and mirrors for the next downloads from the form (a dialog)."""
        form = self.form()
        current = form.connections or Connections(self.downloads.segments)

        def chosen(answer: Connections | None) -> None:
            if answer is not None:
                form.set_connections(answer)
                self.log(f"next downloads: {answer.describe() or 'one connection'}")

        self.push_screen(ConnectionsScreen(current), chosen)

    def browse(self) -> None:
        """ctrl+l: the server's listing; a token typed there serves the downloads too."""
        self.form().browse(self.downloads.tokens)
