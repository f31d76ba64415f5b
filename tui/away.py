"""When a long download ends while the app is in the background: what to write to tell.

A plain class the app feeds with every state change (and the terminal's
focus); it keeps when each
transfer began (a retry or resume counts from its restart) and, when one
ends, asks ``tui.notify``'s rule whether to interrupt the user and with
which sequences (the bell, OSC 9, OSC 777; each a setting).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from tui.notify import describe, notification, should_notify
from tui.settings import Settings
from tui.transfers import State, Transfer

#: Sequences kept for tests to read (the newest; a long session must not grow it).
KEEP_SENT = 20


class AwayNotifier:
    def __init__(
        self,
        settings: Settings | None = None,
        write: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.write = write  # the terminal (the app's driver); None: only kept in ``sent``
        self.clock = clock
        #: The terminal has lost focus (Textual's AppBlur; terminals that report focus).
        self.in_background = False
        #: Sequences written to tell of ended downloads (bounded: the newest ``KEEP_SENT``).
        self.sent: list[str] = []
        self._began: dict[int, float] = {}

    def changed(self, transfer: Transfer) -> None:
        """``transfer``'s state moved: write the sequences that tell of its end, if due."""
        sequence = self.ended(transfer, self.settings, in_background=self.in_background)
        if sequence:
            self.sent = [*self.sent[-KEEP_SENT:], sequence]
            if self.write is not None:
                self.write(sequence)

    def began(self, transfer: Transfer) -> None:
        if transfer.active:
            self._began[transfer.id] = self.clock()

    def ended(self, transfer: Transfer, settings: Settings, *, in_background: bool) -> str:
        """ "" or the sequences to write for ``transfer``'s new state."""
        if transfer.state not in (State.DONE, State.FAILED):
            if transfer.active and transfer.id not in self._began:
                self.began(transfer)
            return ""
        began = self._began.pop(transfer.id, None)
        if began is None:
            return ""  # told already, or shown from the saved queue
        if not should_notify(
            outcome=str(transfer.state),
            duration=self.clock() - began,
            in_background=in_background,
            notify_after=settings.notify_after,
        ):
            return ""
        title, body = describe(transfer.name, str(transfer.state), transfer.error or None)
        return notification(
            title,
            body,
            bell=settings.notify_bell,
            osc=settings.notify_osc,
            in_tmux=bool(os.environ.get("TMUX")),
        )
