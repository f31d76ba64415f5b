"""getfile-tui: the form, the transfers, the log and the local server on one screen.

The app lays out the screen, owns the keys and the command palette, runs
the local server pane and quits cleanly. Downloads belong to a
``DownloadController`` the app owns: the app hands it requests and answers
its questions (dialogs), and draws what it reports (messages). A download
reads as one straight line: form → controller → ``getfile_core.fetch`` →
``Transfer`` → message → row and log.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.screen import Screen
from textual.widgets import Header, Input, TabbedContent, TabPane
from textual.worker import Worker

from getfile_core import DEFAULT_PORT
from tui.actions import ACTIONS, DIALOG_ACTIONS, OWN_ACTIONS, bindings, delegate, key_in_force
from tui.away import AwayNotifier
from tui.commands import app_commands, palette
from tui.downloads import DownloadController
from tui.history import HistoryStore
from tui.launch import Launch, parse_args, serve_web
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
from tui.process import ProcessHooks
from tui.prompts import DialogPrompts
from tui.queue_store import QueueStore
from tui.screens.main_screen import MainScreen
from tui.settings import LoadedSettings, Settings, load_settings
from tui.shutdown import HANG_UP_MARGIN, QUIT_TIMEOUT, Shutdown
from tui.transfer_feed import TransferFeed
from tui.transfer_tools import TransferTools
from tui.transfers import Transfer
from tui.view_keys import LOG_TAB, SERVER_TAB, ViewKeys
from tui.widgets.download_form import DownloadForm
from tui.widgets.footer import QuietFooter
from tui.widgets.log_pane import LogPane
from tui.widgets.server_pane import ServerPane
from tui.widgets.transfer_list import TransferList


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
        self.log_history: list[str] = []
        # The app's collaborators: each given what it needs (never the app itself).
        prompts = DialogPrompts(self.push_screen_wait)
        self.downloads = DownloadController(prompts, self.post_message, self._spawn)
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
        self._wire_screen()

    def _wire_screen(self) -> None:
        """The collaborators that carry out what the screen's messages and keys ask."""
        self.feed = TransferFeed(
            self.downloads,
            lambda: self.transfer_list,
            self.away,
            self.saved_queue,
            self._log,
            self.refresh_bindings,
        )
        self.view_keys = ViewKeys(
            self.downloads,
            lambda: self.form,
            lambda: self.server_pane,
            lambda: self.query_one(TabbedContent),
            lambda: self.screen,
            self.push_screen,
            self.key_for,
            self._log,
            self.call_after_refresh,
        )
        self.local_server = LocalServerLink(
            lambda: self.form,
            lambda: self.server_pane,
            self.notify,
            log=self._log,
            title=self._set_sub_title,
            show_pane=self.view_keys.show_server,
        )
        self.shutdown = Shutdown(
            self.downloads,
            self.saved_queue,
            lambda: self.server_pane,
            self.push_screen,
            self.run_worker,
            lambda: self.workers,
            self.exit,
        )

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

    def _set_sub_title(self, text: str) -> None:
        self.sub_title = text

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
        with TabbedContent(id="panes", initial=LOG_TAB):
            with TabPane("Log", id=LOG_TAB):
                yield LogPane(clock=self.clock, history=self.log_history, id="log")
            with TabPane("Server", id=SERVER_TAB):
                yield ServerPane(
                    launch.serve or "", launch.serve_host, launch.serve_port, id="server"
                )
        yield QuietFooter()

    def on_mount(self) -> None:
        # The GIL's switch interval, signals (SIGCONT only where the terminal is the app's).
        self.process.install(
            on_hang_up=self.shutdown.hang_up,
            own_terminal=self.shutdown.end_process,
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

    # ------------------------------------------------------------ keys

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
    action_toggle_server = delegate("local_server", "toggle")
    action_toggle_group = delegate("transfer_list", "toggle_group")
    action_clear_finished = delegate("feed", "clear_finished")
    action_connections = delegate("view_keys", "connections")
    action_browse = delegate("view_keys", "browse")
    action_switch_pane = delegate("view_keys", "switch_pane")
    action_toggle_keys = delegate("view_keys", "toggle_keys")
    action_quit = delegate("shutdown", "quit")

    def action_next_theme(self) -> None:
        names = sorted(self.available_themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    # ------------------------------------------------------------ messages: routed, not handled

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

    def on_download_form_browse(self, _message: DownloadForm.Browse) -> None:
        self.view_keys.browse()

    def on_transfer_added(self, message: TransferAdded) -> None:
        self.feed.added(message.transfer, restored=message.restored)

    def on_transfer_changed(self, message: TransferChanged) -> None:
        self.feed.changed(message.transfer)

    def on_transfer_progress(self, message: TransferProgress) -> None:
        self.feed.progress(message.transfer)

    def on_log_line(self, message: LogLine) -> None:
        self.log_pane.add(message.text, message.level)

    def on_server_started(self, message: ServerStarted) -> None:
        self.local_server.started(message)

    def on_server_stopped(self, message: ServerStopped) -> None:
        self.local_server.stopped(message)

    def on_app_blur(self, _event: events.AppBlur) -> None:
        self.away.in_background = True

    def on_app_focus(self, _event: events.AppFocus) -> None:
        self.away.in_background = False


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
    app.shutdown.end_process = True  # the process is the app's own (never a test runner's)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
