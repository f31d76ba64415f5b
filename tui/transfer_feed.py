"""What a transfer's messages change in the app: its row, the footer's keys, the
notifier for a user who looked away, and the saved queue.

The controller reports through messages (``TransferAdded``, ``TransferChanged``,
``TransferProgress``); the app's handlers hand each to this plain class, which
was given the list (a widget), the notifier, the saved queue and the app's
``refresh_bindings``, never the app. Progress only redraws the row: the queue
is written when a transfer's *state* moves, never per tick.
"""

from __future__ import annotations

from collections.abc import Callable

from tui.away import AwayNotifier
from tui.downloads import DownloadController
from tui.persist import SavedQueue
from tui.transfers import Transfer
from tui.widgets.transfer_list import TransferList


class TransferFeed:
    def __init__(
        self,
        downloads: DownloadController,
        rows: Callable[[], TransferList],
        away: AwayNotifier,
        saved_queue: SavedQueue,
        log: Callable[[str], object],
        refresh_bindings: Callable[[], object],
    ) -> None:
        self.downloads = downloads
        self.rows = rows
        self.away = away
        self.saved_queue = saved_queue
        self.log = log
        self.refresh_bindings = refresh_bindings
        #: (cancel, retry) usable when the footer was last dimmed.
        self._usable_keys = (False, False)

    def added(self, transfer: Transfer, *, restored: bool) -> None:
        # The row mounts while the download starts: the bytes need not wait for the screen.
        # The user's new download becomes the selected row (ctrl+x / ctrl+r act on it);
        # rows restored from the saved queue leave the selection where it is.
        self.rows().add(transfer, select=not restored)
        self.away.began(transfer)
        self.refresh_keys()
        self.saved_queue.changed()

    def changed(self, transfer: Transfer) -> None:
        self.away.changed(transfer)
        self.rows().refresh_transfer(transfer)
        self.refresh_keys()
        self.saved_queue.changed()

    def progress(self, transfer: Transfer) -> None:
        self.rows().refresh_transfer(transfer)

    async def clear_finished(self) -> None:
        """Drop done, failed and cancelled rows: from the list and from the saved history."""
        gone = self.downloads.clear_finished()
        await self.rows().remove_transfers({t.id for t in gone})
        self.saved_queue.save()
        self.log(f"cleared {len(gone)} finished download(s)")
        self.refresh_keys()

    def refresh_keys(self) -> None:
        """Re-dim footer keys, only when that changes anything (the footer rebuilds itself)."""
        usable = (self.downloads.any_active, self.downloads.any_retryable)
        if usable != self._usable_keys:
            self._usable_keys = usable
            self.refresh_bindings()
            self.rows().enable_actions(cancel=usable[0], retry=usable[1])
