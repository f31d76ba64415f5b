"""The local server's wiring: its key, its words in the title and the log, and the form
that follows it.

When it starts (or restarts on another port) and the form is empty or still
shows what history or the server filled in, the form points at it.

A plain class the app owns, given the form and the server pane (widgets), the
app's toasts, its log, its title and a way to show the server's tab; it
remembers which address it (or history) put in the form so that it never
overwrites one the user typed.
"""

from __future__ import annotations

from collections.abc import Callable

from getfile_core import format_address
from tui.messages import ServerStarted, ServerStopped
from tui.text import printable
from tui.widgets.download_form import DownloadForm
from tui.widgets.server_pane import ServerPane


class LocalServerLink:
    def __init__(
        self,
        form: Callable[[], DownloadForm],
        pane: Callable[[], ServerPane],
        notify: Callable[..., object],
        *,
        log: Callable[[str, str], object],
        title: Callable[[str], object],
        show_pane: Callable[[], object],
    ) -> None:
        self.form = form
        self.pane = pane
        self.notify = notify
        self.log = log  # the log pane: (text, level)
        self.title = title  # the app's sub-title
        self.show_pane = show_pane  # bring the Server tab to the front
        #: (host, port) the form was last pointed at for the local server (or by history).
        self.filled: tuple[str, str] | None = None

    def toggle(self) -> None:
        """ctrl+s: start or stop (the pane asks first if stopping cuts downloads off);
        when it needs its fields filled in, its tab comes to the front."""
        if not self.pane().toggle_asking_first():
            self.show_pane()

    def started(self, message: ServerStarted) -> None:
        where = ", ".join(format_address(h, p) for h, p in message.addresses)
        # The address first: at 80 columns the title keeps the port and cuts the folder.
        self.title(printable(f"serving on {where} · {message.root}"))
        self.log(f"local server: serving {message.root} on {where}", "ok")
        self.follow()

    def stopped(self, message: ServerStopped) -> None:
        self.title("")
        if message.error:
            self.log(message.error, "error")
            self.show_pane()
        else:
            self.log("local server stopped", "info")

    def follow(self) -> None:
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
