"""The app's life beyond one run: settings applied at start, the queue saved and restored,
a hang-up (SIGHUP, SIGTERM) that saves and exits, and telling a user who looked away.

A mixin of ``GetfileApp`` (kept apart so the app class stays about layout, keys
and flows); everything here works through the app's controller, panes and the
plain helpers ``QueueKeeper`` and ``AwayNotifier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events

from tui.transfers import Transfer

if TYPE_CHECKING:
    from tui.app import GetfileApp

    _Base = GetfileApp
else:
    _Base = object


class SessionMixin(_Base):
    """Settings, the saved queue, hang-ups and notifications, for ``GetfileApp``."""

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
            self.downloads.set_global_limit(settings.rate_limit)
            self._show_limit()
        self.downloads.retries = settings.retries

    def _restore_queue(self) -> None:
        keeper = self.keeper
        if keeper is None:
            return
        for line in keeper.open():
            self.log_pane.add(line, "warn")
        restored = keeper.restore()
        unfinished = [r.transfer for r in restored if r.unfinished]
        for entry in restored:
            self.downloads.adopt(entry.transfer)
        if unfinished and not self.settings.resume_on_start:
            self.log_pane.add(
                f"{len(unfinished)} unfinished download(s) from last time: ctrl+r resumes one"
            )
        elif unfinished:
            self.log_pane.add(f"resuming {len(unfinished)} unfinished download(s) from last time")
            for transfer in unfinished:
                self.downloads.retry(transfer)

    def _save_queue(self) -> None:
        if self.keeper is not None:
            problem = self.keeper.changed(self.transfers.values())
            if problem:
                self.log_pane.add(problem, "error")

    def _hang_up(self) -> None:
        if self.keeper is not None:
            self.keeper.freeze(self.transfers.values())
        self._quitting = True
        self._quit_now()

    def on_app_blur(self, _event: events.AppBlur) -> None:
        self.in_background = True

    def on_app_focus(self, _event: events.AppFocus) -> None:
        self.in_background = False

    def _tell_if_away(self, transfer: Transfer) -> None:
        sequence = self.away.ended(transfer, self.settings, in_background=self.in_background)
        if sequence:
            self.notifications_sent = [*self.notifications_sent[-20:], sequence]
            if self._driver is not None:
                self._driver.write(sequence)
