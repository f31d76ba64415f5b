"""The local server pane: serve a folder from inside the app, and watch who takes what.

``getfile_core.server.FileServer`` runs in an async worker of its own group
("server"), so starting or stopping it never touches the downloads, and the
app can download from itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.validation import Function, Integer
from textual.widgets import Button, Input, Label, Static

from getfile_core import (
    AccessRecord,
    FileServer,
    GetfileError,
    ServerLimits,
    format_address,
    human_rate,
)
from tui import format as fmt
from tui.limits import parse_limit
from tui.messages import ServerAccess, ServerStarted, ServerStopped
from tui.screens.confirm import ConfirmScreen
from tui.text import printable
from tui.widgets.reflow_log import ReflowLog

STOP_GRACE = 2.0  # seconds running transfers get when the server is stopped
#: Fields checked before starting: the folder, the port, then the limits (in this order).
LIMIT_FIELDS = ("serve-root", "serve-port", "serve-rate", "serve-stall", "serve-max")


def _is_folder(value: str) -> bool:
    return os.path.isdir(os.path.expanduser(value.strip()))


def _is_rate(value: str) -> bool:
    """No limit (empty, ``none``, ``off``: as the app's f4/f5) or a rate as ``getfile serve
    --limit-rate`` takes it (500K, 2M)."""
    try:
        parse_limit(value)
    except ValueError:
        return False
    return True


def _is_seconds(value: str) -> bool:
    try:
        return 0 < float(value) <= 24 * 3600
    except ValueError:
        return False


def limits_from(rate: str, stall: str, max_transfers: str) -> ServerLimits:
    """The server's limits from the pane's fields (already validated)."""
    return ServerLimits(
        grace=STOP_GRACE,
        stall_timeout=float(stall),
        max_transfers=int(max_transfers),
        # Per connection, as ``getfile serve --limit-rate``: a slow server on demand.
        rate=parse_limit(rate),
    )


def access_line(record: AccessRecord) -> str:
    """An access record in the width of a small terminal (the CLI prints ``format()``)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(record.when))
    note = f" ({record.note})" if record.note else ""
    # What really happened to the connection, when it is not the plain "complete".
    outcome = f" {record.outcome}" if record.outcome not in ("", "complete") else ""
    return printable(
        f"{stamp} {record.peer} {record.kind} {record.path!r} {record.status} "
        f"{fmt.size(record.sent)} {record.seconds:.2f} s{outcome}{note}"
    )


class ServerPane(Vertical):
    """Folder, bind host, port, an optional token, and limits (a rate per connection, the
    stall timeout, files sent at once); Start/Stop; status; access log."""

    def __init__(
        self, root: str = "", host: str = "127.0.0.1", port: int = 0, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._initial = (root, host, port)
        self.server: FileServer | None = None
        self.limits = ServerLimits(grace=STOP_GRACE)  # those of the running (or last) server
        self._stop = asyncio.Event()
        self._status = ""
        #: The newest access records, also as data (the log widget keeps only text).
        self.records: deque[AccessRecord] = deque(maxlen=1000)

    def compose(self) -> ComposeResult:
        root, host, port = self._initial
        with Horizontal(classes="form-row"):
            yield Label("Folder", classes="field-label")
            yield Input(
                root,
                placeholder="folder to serve",
                id="serve-root",
                compact=True,
                validators=[Function(_is_folder, "Folder: an existing folder")],
            )
            yield Button("Start", id="serve-toggle", variant="success", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("Host", classes="field-label")
            yield Input(host, placeholder="127.0.0.1", id="serve-host", compact=True)
            yield Label("Port", classes="port-label")
            yield Input(
                str(port),
                id="serve-port",
                compact=True,
                restrict=r"[0-9]*",
                max_length=5,
                validators=[Integer(0, 65535, "Port: 0 (any free port) to 65535")],
            )
            yield Label("Token", classes="port-label")
            yield Input(
                placeholder="none", id="serve-token", compact=True, password=True, max_length=256
            )
        defaults = ServerLimits()
        with Horizontal(classes="form-row"):
            yield Label("Limit", classes="field-label")
            yield Input(
                placeholder="none (e.g. 500K)",
                id="serve-rate",
                compact=True,
                max_length=16,
                validators=[Function(_is_rate, "Limit: a rate per connection (500K, 2M), or none")],
            )
            yield Label("Stall s", classes="port-label")
            yield Input(
                f"{defaults.stall_timeout:g}",
                id="serve-stall",
                compact=True,
                max_length=8,
                validators=[Function(_is_seconds, "Stall: seconds a reader may take no byte")],
            )
            yield Label("Max", classes="port-label")
            yield Input(
                str(defaults.max_transfers),
                id="serve-max",
                compact=True,
                restrict=r"[0-9]*",
                max_length=5,
                validators=[Integer(1, 10000, "Max: files sent at once, 1 to 10000")],
            )
        yield Static("○ stopped", id="server-status", markup=False)
        yield ReflowLog(id="access-log", max_lines=1000)

    # ------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def sending(self) -> int:
        """Files the local server is sending right now (0 when stopped)."""
        return self.server.active_transfers if self.server is not None else 0

    def focus_first(self) -> None:
        """The first field that takes keys now (Start/Stop while the fields are locked)."""
        for widget in self.query("Input, Button"):
            if widget.focusable:
                widget.focus()
                return

    def on_mount(self) -> None:
        self.set_interval(0.5, self._show_status)

    def _show_status(self) -> None:
        server = self.server
        if server is None and self._status.startswith("○ stopped"):
            return  # keep the reason it stopped (or would not start) until it starts
        if server is None:
            text = "○ stopped"
        else:
            where = ", ".join(format_address(h, p) for h, p in server.addresses)
            rate = self.limits.rate
            limit = f" · {human_rate(rate)} each" if rate else ""
            text = (
                f"● serving {server.root.path} on {where} · {server.active_transfers} sending"
                f" · {server.connections} connected{limit}"
            )
        if printable(text) != self._status:
            self._set_status_text(text)

    # ------------------------------------------------------------ start / stop

    def toggle(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start()

    def toggle_asking_first(self) -> bool:
        """The ctrl+s key: start, or stop (asking first while it sends files); ``False``
        if it would not start (the status line says why)."""
        if not self.running:
            return self.start()
        sending = self.sending
        if not sending:
            self.stop()
            return True

        def answered(stop: bool | None) -> None:
            if stop and self.running:
                self.stop()

        what = "1 file" if sending == 1 else f"{sending} files"
        question = ConfirmScreen(
            "Stop the local server?",
            f"It is sending {what} right now; stopping cuts "
            f"{'that download' if sending == 1 else 'those downloads'} off.",
            yes="Stop (y)",
            no="Keep serving (n)",
        )
        self.app.push_screen(question, answered)
        return True

    def start(self) -> bool:
        """Start serving what the fields say; ``False`` (and a reason shown) if they are wrong."""
        if self.running:
            return True
        for key in LIMIT_FIELDS:
            field = self.query_one(f"#{key}", Input)
            result = field.validate(field.value)
            if result is not None and not result.is_valid:
                field.focus()
                self._set_status_text(f"○ stopped: {result.failure_descriptions[0]}")
                return False
        root = os.path.expanduser(self.query_one("#serve-root", Input).value.strip())
        host = self.query_one("#serve-host", Input).value.strip() or "127.0.0.1"
        port = int(self.query_one("#serve-port", Input).value or 0)
        token = self.query_one("#serve-token", Input).value.strip().encode() or None
        limits = limits_from(*(self.query_one(f"#{k}", Input).value for k in LIMIT_FIELDS[2:]))
        self._stop = asyncio.Event()
        self.limits = limits
        self._serve(root, host, port, token, limits)
        return True

    def stop(self) -> None:
        self._stop.set()

    async def stop_and_wait(self, timeout: float = STOP_GRACE + 5) -> None:
        """Stop, and return once the worker has let go of the port (bounded)."""
        self._stop.set()
        workers = [w.wait() for w in self.workers if w.group == "server" and not w.is_finished]
        if workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout)

    def _set_status_text(self, text: str) -> None:
        self._status = text = printable(text)  # holds paths and OS errors: plain text
        self.query_one("#server-status", Static).update(Content(text))

    @work(group="server", exclusive=True, exit_on_error=False)
    async def _serve(
        self, root: str, host: str, port: int, token: bytes | None, limits: ServerLimits
    ) -> None:
        try:
            server = FileServer(
                root,
                host,
                port,
                limits=limits,
                token=token,
                on_access=self._on_access,
            )
            await server.start()
        except (OSError, ValueError, GetfileError) as error:  # one line, never a crash
            reason = getattr(error, "strerror", None) or str(error) or error.__class__.__name__
            self._set_status_text(f"○ stopped: {reason}")
            self.post_message(
                ServerStopped(f"cannot serve {root} on {format_address(host, port)}: {reason}")
            )
            return
        self.server = server
        self._set_toggle(running=True)
        self._show_status()
        self.post_message(ServerStarted(server.root.path, server.addresses))
        try:
            await self._stop.wait()
        finally:
            self.server = None
            await server.stop(STOP_GRACE)
            if self.is_attached:  # not when the app is already taking the screen down
                self._set_toggle(running=False)
                self._show_status()
                self.post_message(ServerStopped())

    def _set_toggle(self, *, running: bool) -> None:
        button = self.query_one("#serve-toggle", Button)
        button.label = "Stop" if running else "Start"
        button.variant = "error" if running else "success"
        for field in self.query(Input):
            field.disabled = running

    def _on_access(self, record: AccessRecord) -> None:
        self.post_message(ServerAccess(record))

    def on_server_access(self, message: ServerAccess) -> None:
        message.stop()
        self.records.append(message.record)
        self.query_one("#access-log", ReflowLog).add_text(Text(access_line(message.record)))
        self._show_status()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "serve-toggle":
            event.stop()
            self.toggle()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start()
