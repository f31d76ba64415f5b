"""The form follows the local server: when it starts (or restarts on another port) and the
form is empty or still shows what history or the server filled in, the form points at it.

A plain class the app owns, given the form and the server pane (widgets) and
the app's toasts; it remembers which address it (or history) put in the form
so that it never overwrites one the user typed.
"""

from __future__ import annotations

from collections.abc import Callable

from tui.widgets.download_form import DownloadForm
from tui.widgets.server_pane import ServerPane


class LocalServerLink:
    def __init__(
        self,
        form: Callable[[], DownloadForm],
        pane: Callable[[], ServerPane],
        notify: Callable[..., object],
    ) -> None:
        self.form = form
        self.pane = pane
        self.notify = notify
        #: (host, port) the form was last pointed at for the local server (or by history).
        self.filled: tuple[str, str] | None = None

    def started(self) -> None:
        """The local server started: point the form at it, unless the user typed a server."""
        form = self.form()
        host = form.field("host").value.strip()
        shown = (host, form.field("port").value.strip())
        # Empty, still what history filled in, or the local server's old address (a restart
        # on another port): the form follows the local server.
        if not host or shown == self.filled:
            self.use()

    def use(self) -> None:
        """Point the form at the running local server (its first address)."""
        server = self.pane().server
        if server is None:
            self.notify("The local server is not running (ctrl+s starts it).", timeout=3)
            return
        host, port = server.addresses[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        form = self.form()
        form.set_values(host=host, port=str(port))
        self.filled = (host, str(port))
        if form.app.focused in (form.field("host"), form.field("port")):
            form.field("file").focus()
