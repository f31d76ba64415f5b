"""Actions on one transfer (the selected row, else the newest that qualifies): cancel, retry,
rate limits, verify against a checksum, hand a finished file to the browser.

A plain class the app owns and calls from its key actions. It is given what
it needs and no more: the download controller (the rules), the transfer
list (which row is selected; the limit in its title), a way to open a
dialog, the app's toasts and the log, and (in a browser session only) a
way to hand a file to the browser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from tui.downloads import DownloadController
from tui.screens.rate_prompt import RateScreen
from tui.screens.verify import VerifyScreen
from tui.transfers import State, Transfer
from tui.widgets.transfer_list import TransferList

#: ``App.push_screen``: a dialog, and what to do with its answer.
Ask = Callable[..., object]
#: ``App.deliver_binary``: a file handed to the browser (a save dialog there).
Deliver = Callable[..., object]


class TransferTools:
    """Cancel, retry, limits, verify, deliver: each picks its transfer and says what happened."""

    def __init__(
        self,
        downloads: DownloadController,
        rows: Callable[[], TransferList],
        ask: Ask,
        notify: Callable[..., object],
        log: Callable[[str, str], None],
        browser: Callable[[], Deliver | None] = lambda: None,
    ) -> None:
        self.downloads = downloads
        self.rows = rows
        self.ask = ask
        self.notify = notify
        self.log = log
        #: In a browser session, how to hand it a file (``App.is_web`` is known only once
        #: the app runs, so asked each time).
        self.browser = browser

    def _pick(self, wanted: Callable[[Transfer], bool]) -> Transfer | None:
        return self.downloads.pick(self.rows().selected_transfer(), wanted)

    def cancel(self) -> None:
        transfer = self._pick(lambda t: t.active)
        if transfer is None:
            self.notify("Nothing to cancel.", timeout=2)
            return
        self.downloads.cancel(transfer)

    def retry(self) -> None:
        """Retry a failed or cancelled download, or end a retrying one's wait now."""
        transfer = self._pick(lambda t: t.can_retry or t.state is State.RETRYING)
        if transfer is None or not self.downloads.retry(transfer):
            self.notify("Nothing to retry.", timeout=2)

    def limit_rate(self) -> None:
        current = self.downloads.rate_limit.rate
        self.ask(RateScreen("every download, together", current), self._global_limit)

    def _global_limit(self, rate: float | bool | None) -> None:
        if rate is not False:
            self.set_global_limit(rate)  # type: ignore[arg-type]

    def set_global_limit(self, rate: float | None) -> None:
        self.downloads.set_global_limit(rate)
        self.rows().show_limit(rate)

    def limit_transfer(self) -> None:
        transfer = self._pick(lambda t: t.active)
        if transfer is None:
            self.notify("No running download to limit.", timeout=2)
            return

        def chosen(rate: float | bool | None) -> None:
            if rate is not False:
                self.downloads.set_limit(transfer, rate)  # type: ignore[arg-type]

        self.ask(RateScreen(transfer.name, transfer.limit.rate), chosen)

    def verify(self) -> None:
        """Verify a finished download against a published checksum (a dialog)."""
        transfer = self._pick(finished_file)
        if transfer is None or not transfer.saved_path:
            self.notify("No finished download to verify.", timeout=2)
            return
        self.ask(VerifyScreen(transfer.name, transfer.saved_path))

    def deliver(self) -> None:
        """In a browser session: hand a finished download to the browser (a save dialog)."""
        deliver = self.browser()
        if deliver is None:
            self.notify("Only in a browser session (getfile-tui --web).", timeout=3)
            return
        transfer = self._pick(finished_file)
        if transfer is None or not transfer.saved_path:
            self.notify("No finished download to send to the browser.", timeout=2)
            return
        try:
            stream: IO[bytes] = open(transfer.saved_path, "rb")  # noqa: SIM115 (Textual closes it)
        except OSError as error:
            self.log(f"{transfer.name}: cannot open it: {error.strerror}", "error")
            return
        deliver(stream, save_filename=transfer.name)
        self.log(f"{transfer.name}: handed to the browser", "info")


def finished_file(transfer: Transfer) -> bool:
    """A finished single file: a grouped row (a tree) has no one file to check or hand over."""
    return transfer.state is State.DONE and transfer.group is None
