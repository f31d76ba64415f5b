"""getfile-tui: the form, the transfers, the log and the local server on one screen.

A download reads as one straight line: the form posts a request, a worker
(group "downloads") asks about a name already taken, then awaits
``getfile_core.client.fetch``; progress arrives as coalescing messages; the
outcome becomes a row state and a log line. Nothing a network or a disk can
do escapes a worker as an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import posixpath
import sys
import time
from collections.abc import Callable, Iterable, Sequence

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import ActiveBinding, Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane
from textual.worker import Worker, get_current_worker

from getfile_core.address import Target
from getfile_core.client import FetchResult, Options, Progress, fetch, list_folder
from getfile_core.errors import GetfileError, LegacyServerError, UnauthorizedError
from getfile_core.paths import PART_SUFFIX, UnsafeName, safe_local_name
from tui import format as fmt
from tui.commands import app_commands
from tui.launch import Launch, parse_args
from tui.messages import ServerStarted, ServerStopped, TransferProgress
from tui.screens.confirm_quit import ConfirmQuitScreen
from tui.screens.folder_picker import FolderPickerScreen
from tui.screens.keys import KeysScreen
from tui.screens.overwrite import OverwriteScreen
from tui.screens.remote_browser import RemoteBrowserScreen
from tui.screens.token_prompt import TokenScreen
from tui.transfers import Conflict, Plan, Transfer, find_conflict, plan_for, plan_for_retry
from tui.widgets.download_form import DownloadForm
from tui.widgets.log_pane import LogPane
from tui.widgets.server_pane import ServerPane, format_address
from tui.widgets.transfer_list import TransferList

#: Seconds between progress snapshots: smooth enough to watch, cheap over SSH.
PROGRESS_INTERVAL = 0.25
#: How often a refused token may be asked for again before the download fails.
TOKEN_ATTEMPTS = 3
#: Bound on waiting for downloads and the server to wind down at quit.
QUIT_TIMEOUT = 12.0


#: Longer words for the keys screen (F1) than fit in the footer.
KEY_HELP = {
    "download": "download the file in the form",
    "cancel": "cancel the selected download (or the newest)",
    "retry": "retry the selected failed or cancelled download",
    "toggle_server": "start or stop the local server",
    "switch_pane": "show the log or the server pane",
    "toggle_keys": "this list",
    "quit": "quit (asks first if downloads run)",
    "cancel_all": "cancel every running download",
    "pick_folder": "choose the folder to save into",
    "browse": "list the server's files and pick one",
    "clear_log": "clear the log",
    "next_theme": "next colour theme",
}


class MainScreen(Screen):
    """The one screen; it lists the app's keys in the footer in the order they are declared.

    Textual orders the footer by which widget binds a key first, so a focused
    field (which binds ctrl+x itself) would otherwise shuffle it as focus moves.
    """

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        found = super().active_bindings
        order = {b.action: i for i, b in enumerate(GetfileApp.BINDINGS) if isinstance(b, Binding)}
        ranked = sorted(found.items(), key=lambda item: order.get(item[1].binding.action, -1))
        return dict(ranked)


class QuietFooter(Footer):
    """A footer that rebuilds only when what it shows changes.

    Textual's footer rebuilds itself on every focus move; here the keys it
    shows are the app's, so most moves change nothing, and the rebuild is
    most of what a Tab costs while a download needs the CPU.
    """

    _shown: tuple[tuple[str, str, bool], ...] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (key, active.binding.description, active.enabled)
            for key, active in screen.active_bindings.items()
            if active.binding.show
        )
        if shown == self._shown:
            return
        super().bindings_changed(screen)
        if screen is self.screen and screen.app.app_focus:
            self._shown = shown  # rebuilt for these


class GetfileApp(App[None]):
    """The terminal descendant of the book's getfile GUI form."""

    CSS_PATH = "app.tcss"
    TITLE = "getfile"
    BINDINGS = [
        # Priority, so they work from inside a field too (ctrl+x wins over "cut"),
        # in this order in the footer; check_action switches them off under dialogs.
        Binding("ctrl+g", "download", "Get", id="download", priority=True),
        Binding("ctrl+x", "cancel", "Cancel", id="cancel", priority=True),
        Binding("ctrl+r", "retry", "Retry", id="retry", priority=True),
        Binding("ctrl+s", "toggle_server", "Server", id="server", priority=True),
        Binding("ctrl+t", "switch_pane", "Log/Server", id="switch-pane", priority=True),
        Binding("f1", "toggle_keys", "Keys", id="keys", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("ctrl+n", "cancel_all", "Cancel all", id="cancel-all", show=False, priority=True),
        Binding("ctrl+o", "pick_folder", "Folder", id="pick-folder", show=False, priority=True),
        Binding("ctrl+l", "browse", "List", id="browse", show=False, priority=True),
        Binding("f3", "clear_log", "Clear log", id="clear-log", show=False, priority=True),
        Binding("f2", "next_theme", "Theme", id="theme", show=False, priority=True),
    ]
    #: Actions still allowed while a dialog (or the command palette) is open.
    DIALOG_ACTIONS = frozenset({"quit", "toggle_keys", "next_theme"})

    def __init__(
        self,
        launch: Launch | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.launch = launch or Launch(dest=os.getcwd())
        self.clock = clock
        self.transfers: dict[int, Transfer] = {}
        self.tokens: dict[str, bytes] = {}  # "host:port" -> token typed in this session
        self.legacy_servers: set[str] = set()
        self._quitting = False
        self._usable_keys = (False, False)
        self.log_history: list[str] = []

    # ------------------------------------------------------------ layout

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        launch = self.launch
        yield Header(icon="≡")
        form = DownloadForm(launch.host, launch.port, launch.file, launch.dest, id="form")
        form.border_title = "Download"
        yield form
        transfers = TransferList(id="transfers")
        transfers.border_title = "Transfers"
        yield transfers
        with TabbedContent(id="panes", initial="log-tab"):
            with TabPane("Log", id="log-tab"):
                yield LogPane(clock=self.clock, history=self.log_history, id="log")
            with TabPane("Server", id="server-tab"):
                yield ServerPane(
                    launch.serve or "", launch.serve_host, launch.serve_port, id="server"
                )
        yield QuietFooter()

    def on_mount(self) -> None:
        # Transfers run in threads that need the GIL for a moment per MiB. While the UI
        # draws, a waiting thread gets it only every "switch interval" (5 ms by default),
        # which caps a download at a few hundred MiB/s; 1 ms keeps drawing cheap for it.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, 0.001))
        # A blinking cursor repaints its field twice a second, forever: over SSH, idle
        # should mean silent.
        for field in self.query(Input):
            field.cursor_blink = False
        form = self.form
        first_gap = next((key for key, _ in form.problems()), "file")
        form.field(first_gap).focus()
        self.log_pane.add("Ready. Enter in the form downloads; ctrl+p lists all commands.")
        if self.launch.serve is not None:
            self.server_pane.start()

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)

    @property
    def form(self) -> DownloadForm:
        return self.query_one(DownloadForm)

    @property
    def transfer_list(self) -> TransferList:
        return self.query_one(TransferList)

    @property
    def log_pane(self) -> LogPane:
        return self.query_one(LogPane)

    @property
    def server_pane(self) -> ServerPane:
        return self.query_one(ServerPane)

    @classmethod
    def _own_actions(cls) -> frozenset[str]:
        return frozenset(b.action for b in cls.BINDINGS if isinstance(b, Binding))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from app_commands(self)
        yield from super().get_system_commands(screen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim the keys that would do nothing right now; dialogs get the keyboard to themselves."""
        if self.screen is not self.screen_stack[0] and action in self._own_actions():
            return action in self.DIALOG_ACTIONS
        if action in ("cancel", "cancel_all"):
            return True if any(t.active for t in self.transfers.values()) else None
        if action == "retry":
            return True if any(t.can_retry for t in self.transfers.values()) else None
        return True

    # ------------------------------------------------------------ download

    def action_download(self) -> None:
        self.form.submit()

    def on_download_form_submitted(self, message: DownloadForm.Submitted) -> None:
        request = message.request
        self.start_download(request.target, request.folder)

    def start_download(self, target: Target, folder: str) -> None:
        self.run_worker(
            self._new_download(target, folder),
            group="downloads",
            description=f"download {target.url()}",
            exit_on_error=False,
        )

    async def _new_download(self, target: Target, folder: str) -> None:
        try:
            name = safe_local_name(target.path)
            conflict = find_conflict(folder, name)
            plan = Plan() if conflict is None else await self._ask_about(conflict, target)
        except (UnsafeName, OSError) as error:
            self.log_pane.add(f"{target.display_path}: {describe(error)}", "error")
            return
        if plan is None:
            self.log_pane.add(f"{name}: skipped (already in {folder})")
            return
        transfer = Transfer(target=target, folder=folder, name=plan.name or name)
        self.transfers[transfer.id] = transfer
        # The row mounts while the download starts: the bytes need not wait for the screen.
        self.transfer_list.add(transfer, focus=self.focused is None)
        await self._run(transfer, plan)

    async def _ask_about(self, conflict: Conflict, target: Target) -> Plan | None:
        can_resume = conflict.part_exists and await self._server_is_ours(target)
        choice = await self.push_screen_wait(OverwriteScreen(conflict, can_resume=can_resume))
        return plan_for(choice, conflict)

    async def _server_is_ours(self, target: Target) -> bool:
        """Whether the server can resume: anything but a legacy one (asked with a listing)."""
        where = f"{target.host}:{target.port}"
        if where in self.legacy_servers:
            return False
        probe = Target(target.host, target.port, b"", target.tls)
        options = Options(connect_timeout=3, timeout=3, legacy=False, token=self.tokens.get(where))
        try:
            await asyncio.wait_for(list_folder(probe, options=options, max_entries=1), 5)
        except LegacyServerError:
            self.legacy_servers.add(where)
            return False
        except Exception:  # it answered as ours, or cannot be asked: offer it, fetch will say
            return True
        return True

    async def _run(self, transfer: Transfer, plan: Plan) -> None:
        """One download to its end; every outcome becomes a row state and a log line."""
        worker = get_current_worker()
        transfer.worker = worker
        self._show(transfer)
        on_progress = functools.partial(self._post_progress, transfer.id)
        for _attempt in range(TOKEN_ATTEMPTS + 1):
            token = self.tokens.get(transfer.where)
            try:
                result = await fetch(
                    transfer.target,
                    transfer.folder,
                    overwrite=plan.overwrite,
                    resume=plan.resume,
                    options=Options(token=token),
                    on_progress=on_progress,
                    interval=PROGRESS_INTERVAL,
                    name=plan.name,
                )
            except UnauthorizedError as error:
                new_token = await self._ask_token(transfer, wrong=token is not None)
                if new_token is None:
                    self._failed(transfer, error.message)
                    return
                self.tokens[transfer.where] = new_token
                transfer.reset(transfer.name)
                self._show(transfer)
                continue
            except LegacyServerError as error:
                final = os.path.join(transfer.folder, transfer.name)
                if not plan.resume or os.path.lexists(final):
                    self._failed(transfer, error.message)
                    return
                # The .part cannot be continued from the book's server: fetch it whole again.
                self.legacy_servers.add(transfer.where)
                transfer.legacy = True
                self.log_pane.add(
                    f"{transfer.name}: {transfer.where} is a legacy server and cannot resume;"
                    " starting again",
                    "warn",
                )
                plan = Plan(overwrite=True, name=plan.name)
                transfer.reset(transfer.name)
                self._show(transfer)
                continue
            except GetfileError as error:
                self._failed(transfer, error.message)
                return
            except asyncio.CancelledError:
                self._cancelled(transfer)
                raise
            except Exception as error:  # a bug must not take the app down: say it, keep going
                self._failed(transfer, f"unexpected error: {error!r}")
                return
            self._done(transfer, result)
            return
        self._failed(transfer, "gave up after several attempts (token refused?)")

    def _post_progress(self, transfer_id: int, progress: Progress) -> None:
        # Called in the event loop at most every PROGRESS_INTERVAL; the list coalesces.
        self.transfer_list.post_message(TransferProgress(transfer_id, progress))

    async def _ask_token(self, transfer: Transfer, *, wrong: bool) -> bytes | None:
        self.log_pane.add(
            f"{transfer.name}: {transfer.where} "
            + ("refused the token" if wrong else "needs a token"),
            "warn",
        )
        return await self.push_screen_wait(TokenScreen(transfer.where, wrong=wrong))

    # ------------------------------------------------------------ outcomes

    def _show(self, transfer: Transfer) -> None:
        self.transfer_list.refresh_transfer(transfer)
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        """Re-dim footer keys, only when that changes anything (the footer rebuilds itself)."""
        transfers = self.transfers.values()
        usable = (any(t.active for t in transfers), any(t.can_retry for t in transfers))
        if usable != self._usable_keys:
            self._usable_keys = usable
            self.refresh_bindings()
            self.transfer_list.enable_actions(cancel=usable[0], retry=usable[1])

    def _done(self, transfer: Transfer, result: FetchResult) -> None:
        transfer.state = "done"
        transfer.saved_path = result.path
        transfer.legacy = result.legacy
        fresh = result.size - result.resumed_from
        average = fresh / result.seconds if result.seconds > 0 else 0.0
        transfer.progress = Progress(
            "done", result.size, result.size, average, result.seconds, result.legacy
        )
        self._show(transfer)
        resumed = f", resumed at {fmt.size(result.resumed_from)}" if result.resumed_from else ""
        # A rate over a few milliseconds says nothing; only big transfers get one.
        how = f" at {fmt.rate(average)}" if fresh >= 1024 * 1024 and average else ""
        self.log_pane.add(
            f"{transfer.name}: saved {result.path} ({fmt.size(result.size)} in "
            f"{result.seconds:.2f} s{how}{resumed})",
            "ok",
        )
        if result.legacy:
            self.legacy_servers.add(transfer.where)
            self.log_pane.add(
                f"{transfer.name}: legacy server, so no size or digest to check it against",
                "warn",
            )
        elif result.digest:
            self.log_pane.add(f"{transfer.name}: digest verified ({result.digest[:24]}…)", "ok")

    def _failed(self, transfer: Transfer, reason: str) -> None:
        transfer.state = "failed"
        transfer.error = reason
        self._show(transfer)
        where = "" if transfer.where in reason else f" (from {transfer.where})"
        self.log_pane.add(f"{transfer.name}: {reason}{where}", "error")

    def _cancelled(self, transfer: Transfer) -> None:
        transfer.state = "cancelled"
        self._show(transfer)
        part = os.path.join(transfer.folder, transfer.name + PART_SUFFIX)
        kept = f"; kept {part}, Retry continues it" if os.path.exists(part) else ""
        self.log_pane.add(f"{transfer.name}: cancelled{kept}", "warn")

    def on_transfer_list_phase_changed(self, message: TransferList.PhaseChanged) -> None:
        transfer = message.transfer
        if transfer.state != "downloading" or message.before == "downloading":
            return
        progress = transfer.progress
        if transfer.legacy:
            self.legacy_servers.add(transfer.where)
            self.log_pane.add(
                f"{transfer.name}: connected to {transfer.where}: legacy server detected "
                "(no size, no checksum, no resume)",
                "warn",
            )
        else:
            known = progress is not None and progress.total is not None
            size = f", {fmt.size(progress.total)}" if known else ""  # type: ignore[union-attr]
            self.log_pane.add(f"{transfer.name}: connected to {transfer.where}{size}")

    # ------------------------------------------------------------ cancel / retry

    def _pick(self, wanted: Callable[[Transfer], bool]) -> Transfer | None:
        """The focused row's transfer if it qualifies, else the newest that does."""
        row = self.transfer_list.selected()
        if row is not None and wanted(row.transfer):
            return row.transfer
        candidates = [t for t in self.transfers.values() if wanted(t)]
        return candidates[-1] if candidates else None

    def action_cancel(self) -> None:
        transfer = self._pick(lambda t: t.active)
        if transfer is None:
            self.notify("Nothing to cancel.", timeout=2)
            return
        if transfer.worker is not None:
            transfer.worker.cancel()

    def action_cancel_all(self) -> None:
        for transfer in self.transfers.values():
            if transfer.active and transfer.worker is not None:
                transfer.worker.cancel()

    def action_retry(self) -> None:
        transfer = self._pick(lambda t: t.can_retry)
        if transfer is None:
            self.notify("Nothing to retry.", timeout=2)
            return
        transfer.state = "queued"  # claimed: a second ctrl+r must not start it twice
        self.run_worker(
            self._retry(transfer),
            group="downloads",
            description=f"retry {transfer.target.url()}",
            exit_on_error=False,
        )

    async def _retry(self, transfer: Transfer) -> None:
        try:
            conflict = find_conflict(transfer.folder, transfer.name)
            plan = plan_for_retry(conflict, legacy=transfer.legacy)
            if plan is None and conflict is not None:
                plan = await self._ask_about(conflict, transfer.target)
        except OSError as error:
            self._failed(transfer, describe(error))
            return
        if plan is None:
            transfer.state = "cancelled"
            self._show(transfer)
            self.log_pane.add(f"{transfer.name}: retry skipped")
            return
        transfer.reset(plan.name or transfer.name)
        self.log_pane.add(
            f"{transfer.name}: retrying" + (" from where it stopped" if plan.resume else "")
        )
        await self._run(transfer, plan)

    # ------------------------------------------------------------ server

    def action_toggle_server(self) -> None:
        pane = self.server_pane
        if not pane.running and not pane.start():
            self.query_one(TabbedContent).active = "server-tab"
            return
        if pane.running:
            pane.stop()

    def on_server_started(self, message: ServerStarted) -> None:
        where = ", ".join(format_address(h, p) for h, p in message.addresses)
        self.sub_title = f"serving {message.root} on {where}"
        self.log_pane.add(f"local server: serving {message.root} on {where}", "ok")
        form = self.form
        if not form.field("host").value.strip():
            self.action_use_local_server()

    def on_server_stopped(self, message: ServerStopped) -> None:
        self.sub_title = ""
        if message.error:
            self.log_pane.add(message.error, "error")
            self.query_one(TabbedContent).active = "server-tab"
        else:
            self.log_pane.add("local server stopped")

    def action_use_local_server(self) -> None:
        server = self.server_pane.server
        if server is None:
            self.notify("The local server is not running (ctrl+s starts it).", timeout=3)
            return
        host, port = server.addresses[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        form = self.form
        form.set_values(host=host, port=str(port))
        if self.focused in (form.field("host"), form.field("port")):
            form.field("file").focus()

    # ------------------------------------------------------------ panes, log, theme, keys

    def action_switch_pane(self) -> None:
        panes = self.query_one(TabbedContent)
        panes.active = "server-tab" if panes.active == "log-tab" else "log-tab"

    def action_clear_log(self) -> None:
        self.log_pane.clear()

    def action_next_theme(self) -> None:
        names = sorted(self.available_themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def action_toggle_keys(self) -> None:
        if isinstance(self.screen, KeysScreen):
            self.screen.dismiss()
            return
        keys = [
            (self.get_key_display(b), KEY_HELP.get(b.action, b.description))
            for b in self.BINDINGS
            if isinstance(b, Binding)
        ]
        self.push_screen(KeysScreen(keys))

    def action_pick_folder(self) -> None:
        self.push_screen(FolderPickerScreen(self.form.field("dest").value), self._folder_chosen)

    def action_browse(self) -> None:
        """Pick the File from the server's listing (getfile servers only)."""
        form = self.form
        for key in ("host", "port"):
            field = form.field(key)
            result = field.validate(field.value)
            if result is not None and not result.is_valid:
                field.focus()
                form.submit()  # shows why
                return
        folder = posixpath.dirname(form.field("file").value.strip())
        host, port = form.field("host").value.strip(), int(form.field("port").value)
        self.push_screen(RemoteBrowserScreen(host, port, folder, self.tokens), self._file_chosen)

    def on_download_form_browse(self, _message: DownloadForm.Browse) -> None:
        self.action_browse()

    def _file_chosen(self, path: str | None) -> None:
        if path:
            self.form.set_values(file=path)
            self.form.field("file").focus()

    def on_download_form_pick_folder(self, _message: DownloadForm.PickFolder) -> None:
        self.action_pick_folder()

    def _folder_chosen(self, folder: str | None) -> None:
        if folder:
            self.form.set_values(dest=folder)
            self.form.field("dest").focus()

    # ------------------------------------------------------------ quit

    async def action_quit(self) -> None:
        running = sum(1 for t in self.transfers.values() if t.active)
        if running and not self._quitting:
            self.push_screen(ConfirmQuitScreen(running), self._quit_answered)
        else:
            self._quit_now()

    def _quit_answered(self, quit_: bool | None) -> None:
        if quit_:
            self._quit_now()

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit_now(self) -> None:
        """Cancel downloads (their .part files stay), stop the server, then exit; bounded."""
        self._quitting = True
        try:
            self.action_cancel_all()
            downloads = [w for w in self.workers if w.group == "downloads" and not w.is_finished]
            await settle(downloads, QUIT_TIMEOUT)
            with contextlib.suppress(TimeoutError):
                await self.server_pane.stop_and_wait()
        finally:
            self.exit()


def describe(error: Exception) -> str:
    """One line for a person: ``Permission denied: /x`` rather than ``[Errno 13] ...``."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)


async def settle(workers: Iterable[Worker[object]], timeout: float) -> None:
    """Wait (bounded) until ``workers`` are finished, however they end."""
    waits = [worker.wait() for worker in workers]
    if waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout)


def main(argv: Sequence[str] | None = None) -> int:
    launch = parse_args(argv)
    GetfileApp(launch).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
