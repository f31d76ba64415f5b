"""getfile-tui: the form, the transfers, the log and the local server on one screen.

The app lays out the screen, owns the keys and the command palette, runs
the local server pane and quits cleanly. Downloads belong to a
``DownloadController`` the app owns: the app hands it requests and answers
its questions (dialogs), and draws what it reports (messages). A download
reads as one straight line: form → controller → ``getfile_core.fetch`` →
``Transfer`` → message → row and log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.screen import Screen
from textual.widgets import Header, Input, TabbedContent, TabPane
from textual.worker import Worker

from getfile_core import DEFAULT_PORT, format_address
from tui.actions import ACTIONS, DIALOG_ACTIONS, OWN_ACTIONS, bindings, delegate, key_in_force
from tui.away import AwayNotifier
from tui.commands import app_commands, palette
from tui.downloads import DownloadController
from tui.groups import Connections
from tui.history import HistoryStore
from tui.launch import Launch, parse_args
from tui.local_server import LocalServerLink
from tui.messages import (
    LogLine,
    ServerStarted,
    ServerStopped,
    TransferAdded,
    TransferChanged,
    TransferProgress,
)
from tui.persist import QueueKeeper, SavedQueue
from tui.places import Places
from tui.process import ProcessHooks, end_process_after, leave_dead_terminal, terminal_gone
from tui.queue_store import QueueStore
from tui.screens.confirm_quit import ConfirmQuitScreen
from tui.screens.connections import ConnectionsScreen
from tui.screens.keys import KeysScreen
from tui.screens.main_screen import MainScreen
from tui.screens.overwrite import OverwriteScreen
from tui.screens.token_prompt import TokenScreen
from tui.settings import LoadedSettings, Settings, load_settings
from tui.text import printable
from tui.transfer_tools import TransferTools
from tui.transfers import Choice, Conflict, Transfer
from tui.widgets.download_form import DownloadForm
from tui.widgets.footer import QuietFooter
from tui.widgets.log_pane import LogPane
from tui.widgets.server_pane import ServerPane
from tui.widgets.transfer_list import TransferList

#: Bound on waiting for downloads and the server to wind down at quit.
QUIT_TIMEOUT = 12.0
#: After a hang-up, seconds beyond QUIT_TIMEOUT before the process ends regardless.
HANG_UP_MARGIN = 3.0


class DialogPrompts:
    """The controller's questions, asked with the app's dialogs (from a worker)."""

    def __init__(self, app: App[None]) -> None:
        self.app = app

    async def choose(self, conflict: Conflict, *, can_resume: bool) -> Choice:
        return await self.app.push_screen_wait(OverwriteScreen(conflict, can_resume=can_resume))

    async def token(self, where: str, *, wrong: bool) -> bytes | None:
        return await self.app.push_screen_wait(TokenScreen(where, wrong=wrong))


class GetfileApp(App[None]):
    """The terminal descendant of the book's getfile GUI form."""

    CSS_PATH = "app.tcss"
    TITLE = "getfile"
    BINDINGS = bindings()  # in footer order; from tui.actions, the one table of actions

    def __init__(
        self,
        launch: Launch | None = None,
        *,
        clock: Callable[[], float] = time.time,
        queue: QueueStore | None = None,
        settings: LoadedSettings | None = None,
        history: HistoryStore | None = None,
    ) -> None:
        super().__init__()
        self.launch = launch or Launch(dest=os.getcwd())
        self.loaded = settings
        self.settings = settings.settings if settings is not None else Settings()
        self.clock = clock
        # The app's collaborators: each given what it needs (never the app itself).
        self.downloads = DownloadController(DialogPrompts(self), self.post_message, self._spawn)
        keeper = QueueKeeper(queue) if queue is not None else None  # None: not kept (tests)
        self.saved_queue = SavedQueue(keeper, self.downloads, self._log)
        #: Recent servers and bookmarks (not kept without a store). The form starts with the last.
        self.places = Places(
            history, lambda: self.form, self.downloads.tokens, self.push_screen, self._log
        )
        self.tools = TransferTools(
            self.downloads,
            lambda: self.transfer_list,
            self.push_screen,
            self.notify,
            self._log,
            browser=lambda: self.deliver_binary if self.is_web else None,
        )
        self.away = AwayNotifier(self.settings, write=self._write_to_terminal)
        self.process = ProcessHooks()
        #: Set by ``main()`` only: a hang-up may then end the whole process (see
        #: ``end_process_after``); an app run inside another program (tests) never does.
        self.end_process_on_hang_up = False
        self._quitting = False
        self._hung_up = False
        self._usable_keys = (False, False)
        self.local_server = LocalServerLink(
            lambda: self.form, lambda: self.server_pane, self.notify
        )
        self.log_history: list[str] = []

    @property
    def transfers(self) -> dict[int, Transfer]:
        return self.downloads.transfers

    def _spawn(self, work: Coroutine[Any, Any, None], description: str) -> Worker[None]:
        # Group "downloads", apart from the server's: exclusive workers of one cancel the other's.
        return self.run_worker(
            work, group="downloads", description=description, exit_on_error=False
        )

    def _log(self, text: str, level: str = "info") -> None:
        self.log_pane.add(text, level)

    def _write_to_terminal(self, sequence: str) -> None:
        if self._driver is not None:
            self._driver.write(sequence)

    # ------------------------------------------------------------ layout

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        launch = self.launch
        yield Header(icon="≡")
        # The Port field holds the port, not just a placeholder showing it: Enter must work.
        host, port = launch.host, launch.port
        last = self.places.history.last
        if not host and last is not None:  # no URL: the server used last time
            host, port = last.host, str(last.port)
            # Until the user changes it, the local server may take its place (--serve).
            self.local_server.filled = (host, port)
        port = port or str(self.settings.port or DEFAULT_PORT)
        yield DownloadForm(host, port, launch.file, launch.dest, id="form")
        yield TransferList(id="transfers")
        with TabbedContent(id="panes", initial="log-tab"):
            with TabPane("Log", id="log-tab"):
                yield LogPane(clock=self.clock, history=self.log_history, id="log")
            with TabPane("Server", id="server-tab"):
                yield ServerPane(
                    launch.serve or "", launch.serve_host, launch.serve_port, id="server"
                )
        yield QuietFooter()

    def on_mount(self) -> None:
        # The GIL's switch interval, signals (SIGCONT only where the terminal is the app's).
        self.process.install(
            on_hang_up=self._hang_up,
            own_terminal=self.end_process_on_hang_up,
            give_up_after=QUIT_TIMEOUT + HANG_UP_MARGIN,
        )
        # A blinking cursor repaints its field twice a second, forever: over SSH, idle
        # should mean silent.
        for field in self.query(Input):
            field.cursor_blink = False
        form = self.form
        first_gap = next((key for key, _ in form.problems(mark=False)), "file")
        form.field(first_gap).focus()
        self.log_pane.add("Ready. Enter in the form downloads; ctrl+p lists all commands.")
        if self.is_web:
            self.log_pane.add(
                "In a browser: downloads are saved on the machine running the app; "
                f"{self.key_for('deliver') or 'the palette'} hands a finished one to this browser.",
                "warn",
            )
        self._apply_settings()
        self.saved_queue.restore(resume=self.settings.resume_on_start)
        if self.launch.serve is not None:
            self.server_pane.start()

    def _apply_settings(self) -> None:
        if self.loaded is not None:
            for problem in self.loaded.problems:
                self.log_pane.add(f"settings: {problem}", "warn")
        settings = self.settings
        if settings.keys:
            self.set_keymap(dict(settings.keys))
            self.refresh_bindings()
        if settings.theme:
            self.theme = settings.theme
        if settings.rate_limit is not None:
            self.tools.set_global_limit(settings.rate_limit)
        self.downloads.retries = settings.retries
        self.downloads.segments = settings.segments

    def on_unmount(self) -> None:
        self.process.remove()

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

    def key_for(self, binding_id: str) -> str:
        return key_in_force(self, binding_id)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        ours = app_commands(self.run_action, self.key_for)
        return palette(ours, super().get_system_commands(screen))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim the keys that would do nothing right now; dialogs get the keyboard to themselves."""
        if self.screen is not self.screen_stack[0] and action in OWN_ACTIONS:
            return action in DIALOG_ACTIONS
        if action in ("cancel", "cancel_all"):
            return True if self.downloads.any_active else None
        if action == "retry":
            return True if self.downloads.any_retryable else None
        return True

    # ------------------------------------------------------------ downloads

    # The keys of ``tui.actions`` carried out by a collaborator: a table, not code.
    action_download = delegate("form", "submit")
    action_cancel = delegate("tools", "cancel")
    action_cancel_all = delegate("downloads", "cancel_all")
    action_retry = delegate("tools", "retry")
    action_limit_rate = delegate("tools", "limit_rate")
    action_limit_transfer = delegate("tools", "limit_transfer")
    action_verify = delegate("tools", "verify")
    action_deliver = delegate("tools", "deliver")
    action_recent = delegate("places", "recent")
    action_bookmark = delegate("places", "bookmark")
    action_pick_folder = delegate("form", "pick_folder")
    action_focus_form = delegate("form", "focus_first_gap")
    action_clear_log = delegate("log_pane", "clear")
    action_use_local_server = delegate("local_server", "use")
    action_toggle_group = delegate("transfer_list", "toggle_group")

    def action_connections(self) -> None:
        """Segments and mirrors for the next downloads from the form (a dialog)."""
        form = self.form
        current = form.connections or Connections(self.downloads.segments)

        def chosen(answer: Connections | None) -> None:
            if answer is not None:
                form.set_connections(answer)
                self.log_pane.add(f"next downloads: {answer.describe() or 'one connection'}")

        self.push_screen(ConnectionsScreen(current), chosen)

    def on_download_form_submitted(self, message: DownloadForm.Submitted) -> None:
        target = message.request.target
        self.downloads.start(target, message.request.folder, message.request.connections)
        self.places.remember(target.host, target.port)

    def on_download_form_group_chosen(self, message: DownloadForm.GroupChosen) -> None:
        request = message.request
        self.downloads.start_group(
            request.server, request.names, request.folder, request.connections
        )
        self.places.remember(request.server.host, request.server.port)

    async def action_clear_finished(self) -> None:
        """Drop done, failed and cancelled rows: from the list and from the saved history."""
        gone = self.downloads.clear_finished()
        await self.transfer_list.remove_transfers({t.id for t in gone})
        self.saved_queue.save()
        self.log_pane.add(f"cleared {len(gone)} finished download(s)")
        self._refresh_keys()

    def on_transfer_added(self, message: TransferAdded) -> None:
        # The row mounts while the download starts: the bytes need not wait for the screen.
        # The user's new download becomes the selected row (ctrl+x / ctrl+r act on it);
        # rows restored from the saved queue leave the selection where it is.
        self.transfer_list.add(message.transfer, select=not message.restored)
        self.away.began(message.transfer)
        self._refresh_keys()
        self.saved_queue.changed()

    def on_transfer_changed(self, message: TransferChanged) -> None:
        self.away.changed(message.transfer)
        self.transfer_list.refresh_transfer(message.transfer)
        self._refresh_keys()
        self.saved_queue.changed()

    def on_transfer_progress(self, message: TransferProgress) -> None:
        self.transfer_list.refresh_transfer(message.transfer)

    def on_log_line(self, message: LogLine) -> None:
        self.log_pane.add(message.text, message.level)

    def _refresh_keys(self) -> None:
        """Re-dim footer keys, only when that changes anything (the footer rebuilds itself)."""
        usable = (self.downloads.any_active, self.downloads.any_retryable)
        if usable != self._usable_keys:
            self._usable_keys = usable
            self.refresh_bindings()
            self.transfer_list.enable_actions(cancel=usable[0], retry=usable[1])

    # ------------------------------------------------------------ the server's listing

    def action_browse(self) -> None:
        self.form.browse(self.downloads.tokens)  # a token typed there serves the downloads

    def on_download_form_browse(self, _message: DownloadForm.Browse) -> None:
        self.action_browse()

    # ------------------------------------------------------------ server

    def action_toggle_server(self) -> None:
        if not self.server_pane.toggle_asking_first():
            self.query_one(TabbedContent).active = "server-tab"

    def on_server_started(self, message: ServerStarted) -> None:
        where = ", ".join(format_address(h, p) for h, p in message.addresses)
        # The address first: at 80 columns the title keeps the port and cuts the folder.
        self.sub_title = printable(f"serving on {where} · {message.root}")
        self.log_pane.add(f"local server: serving {message.root} on {where}", "ok")
        self.local_server.started()

    def on_server_stopped(self, message: ServerStopped) -> None:
        self.sub_title = ""
        if message.error:
            self.log_pane.add(message.error, "error")
            self.query_one(TabbedContent).active = "server-tab"
        else:
            self.log_pane.add("local server stopped")

    # ------------------------------------------------------------ panes, terminal, theme, keys

    def action_switch_pane(self) -> None:
        """Show the other pane; the focus goes along (to the server's first field, or back
        to the form), so the keys typed next act where the eyes are."""
        panes = self.query_one(TabbedContent)
        panes.active = "server-tab" if panes.active == "log-tab" else "log-tab"
        if panes.active == "server-tab":
            self.call_after_refresh(self.server_pane.focus_first)
        else:
            self.form.focus_first_gap()

    def on_app_blur(self, _event: events.AppBlur) -> None:
        self.away.in_background = True

    def on_app_focus(self, _event: events.AppFocus) -> None:
        self.away.in_background = False

    def action_next_theme(self) -> None:
        names = sorted(self.available_themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def action_toggle_keys(self) -> None:
        if isinstance(self.screen, KeysScreen):
            self.screen.dismiss()
            return
        keys = [(self.key_for(a.id), a.help) for a in ACTIONS if a.key]
        self.push_screen(KeysScreen(keys))

    # ------------------------------------------------------------ quit

    async def action_quit(self) -> None:
        running = sum(1 for t in self.downloads.transfers.values() if t.active)
        if running and not self._quitting:
            self.push_screen(ConfirmQuitScreen(running), lambda yes: yes and self._quit_now())
        else:
            self._quit_now()

    def _hang_up(self) -> None:
        if self._hung_up:  # SIGHUP and SIGTERM, or the terminal watch's SIGHUP after one
            return
        self._hung_up = True
        if self.end_process_on_hang_up and terminal_gone():
            leave_dead_terminal()  # before the writer thread dies on EIO (process.py)
        self.saved_queue.freeze()
        self._quitting = True
        self._quit_now()
        if self.end_process_on_hang_up:
            end_process_after(QUIT_TIMEOUT + HANG_UP_MARGIN)

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit_now(self) -> None:
        """Cancel downloads (their .part files stay), stop the server, then exit; bounded."""
        self._quitting = True
        self.saved_queue.freeze()  # running ones stay "unfinished": the next start resumes them
        try:
            self.downloads.cancel_all()
            downloads = [w for w in self.workers if w.group == "downloads" and not w.is_finished]
            await settle(downloads, QUIT_TIMEOUT)
            with contextlib.suppress(TimeoutError):
                await self.server_pane.stop_and_wait()
        finally:
            self.saved_queue.close()
            self.exit()


async def settle(workers: Iterable[Worker[object]], timeout: float) -> None:
    """Wait (bounded) until ``workers`` are finished, however they end."""
    waits = [worker.wait() for worker in workers]
    if waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout)


def serve_web(launch: Launch) -> int:
    """``--web``: textual-serve runs one app per browser tab, with the same arguments."""
    import shlex

    from textual_serve.server import Server

    command = shlex.join([sys.executable, "-m", "tui", *launch.app_argv])
    Server(command, host=launch.web_host, port=launch.web_port, title="getfile").serve()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    launch = parse_args(argv)
    if launch.web:
        return serve_web(launch)
    action_ids = [action.id for action in ACTIONS if action.key]
    settings = load_settings(action_ids=action_ids)
    if not launch.dest_given and settings.settings.destination is not None:
        launch = dataclasses.replace(launch, dest=str(settings.settings.destination))
    if not launch.port and launch.host:
        launch = dataclasses.replace(launch, port=str(settings.settings.port))
    app = GetfileApp(launch, queue=QueueStore(), settings=settings, history=HistoryStore())
    app.end_process_on_hang_up = True  # the process is the app's own (never a test runner's)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
