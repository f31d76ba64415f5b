"""Ending the app: ctrl+q (asking first while downloads run), a hang-up, a SIGTERM.

A plain class the app owns and hands its key and its signal handler to. Each
way out goes through one bounded wind-down: the saved queue is frozen first
(running downloads stay "unfinished", so the next start resumes them), the
downloads are cancelled (their ``.getfile-part`` files stay), the local
server stops, the queue is closed, the app exits. After a hang-up in the
app's own process ``end_process_after`` ends it regardless, in case the
dead terminal blocks Textual's exit (see ``tui.process``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from textual.worker import Worker

from tui.downloads import DownloadController
from tui.persist import SavedQueue
from tui.process import end_process_after, leave_dead_terminal, terminal_gone
from tui.screens.confirm_quit import ConfirmQuitScreen
from tui.widgets.server_pane import ServerPane

#: Bound on waiting for downloads and the server to wind down at quit.
QUIT_TIMEOUT = 12.0
#: After a hang-up, seconds beyond QUIT_TIMEOUT before the process ends regardless.
HANG_UP_MARGIN = 3.0


class Shutdown:
    def __init__(
        self,
        downloads: DownloadController,
        saved_queue: SavedQueue,
        server_pane: Callable[[], ServerPane],
        push_screen: Callable[..., object],
        run_worker: Callable[..., Worker[None]],
        workers: Callable[[], Iterable[Worker[Any]]],
        exit_app: Callable[[], object],
    ) -> None:
        self.downloads = downloads
        self.saved_queue = saved_queue
        self.server_pane = server_pane
        self.push_screen = push_screen
        self.run_worker = run_worker
        self.workers = workers
        self.exit_app = exit_app
        #: Set by ``main()`` only: a hang-up may then end the whole process (see
        #: ``end_process_after``); an app run inside another program (tests) never does.
        self.end_process = False
        self.quitting = False
        self.hung_up = False

    def quit(self) -> None:
        """ctrl+q: at once when nothing runs, else after a "quit anyway?" dialog."""
        running = sum(1 for t in self.downloads.transfers.values() if t.active)
        if running and not self.quitting:
            self.push_screen(ConfirmQuitScreen(running), lambda yes: yes and self.now())
        else:
            self.now()

    def hang_up(self) -> None:
        """SIGHUP or SIGTERM (or the terminal watch's SIGHUP): save, leave, exit."""
        if self.hung_up:  # SIGHUP and SIGTERM, or the terminal watch's SIGHUP after one
            return
        self.hung_up = True
        if self.end_process and terminal_gone():
            leave_dead_terminal()  # before the writer thread dies on EIO (process.py)
        self.saved_queue.freeze()
        self.quitting = True
        self.now()
        if self.end_process:
            end_process_after(QUIT_TIMEOUT + HANG_UP_MARGIN)

    def now(self) -> Worker[None]:
        """Wind down in a worker of its own group (a second call replaces the first)."""
        return self.run_worker(
            self._wind_down, name="quit", group="quit", exclusive=True, exit_on_error=False
        )

    async def _wind_down(self) -> None:
        """Cancel downloads (their .part files stay), stop the server, then exit; bounded."""
        self.quitting = True
        self.saved_queue.freeze()  # running ones stay "unfinished": the next start resumes them
        try:
            self.downloads.cancel_all()
            downloads = [w for w in self.workers() if w.group == "downloads" and not w.is_finished]
            await settle(downloads, QUIT_TIMEOUT)
            with contextlib.suppress(TimeoutError):
                await self.server_pane().stop_and_wait()
        finally:
            self.saved_queue.close()
            self.exit_app()


async def settle(workers: Iterable[Worker[object]], timeout: float) -> None:
    """Wait (bounded) until ``workers`` are finished, however they end."""
    waits = [worker.wait() for worker in workers]
    if waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout)
