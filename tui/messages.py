"""Messages: how the download controller and the server pane tell the app what happened.

Nothing here calls back up: the controller posts these to the app, which
draws them (a row, a log line). Progress messages replace each other
(``can_replace``): if the UI falls behind, only the newest snapshot of each
transfer is drawn, so a fast download can never flood the event queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from getfile_core import AccessRecord
    from tui.transfers import Transfer


class TransferAdded(Message):
    """A new row: a download passed its checks and starts, or (``restored``) one from the
    saved queue. A download the user starts becomes the selected row, so cancel and retry
    act on it; a restored one never takes the selection."""

    def __init__(self, transfer: Transfer, *, restored: bool = False) -> None:
        super().__init__()
        self.transfer = transfer
        self.restored = restored


class TransferChanged(Message):
    """A transfer's state changed (or it has a fresh reason): redraw its row, re-dim keys."""

    def __init__(self, transfer: Transfer) -> None:
        super().__init__()
        self.transfer = transfer


class TransferProgress(Message):
    """A transfer has fresh counters (same state): redraw its row's numbers."""

    def __init__(self, transfer: Transfer) -> None:
        super().__init__()
        self.transfer = transfer

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TransferProgress) and message.transfer is self.transfer


class LogLine(Message):
    """One line for the log; ``text`` may hold server words (the log shows it as plain text)."""

    def __init__(self, text: str, level: str = "info") -> None:
        super().__init__()
        self.text = text
        self.level = level


class ServerAccess(Message):
    """One line of the local server's access log."""

    def __init__(self, record: AccessRecord) -> None:
        super().__init__()
        self.record = record


class ServerStarted(Message):
    def __init__(self, root: str, addresses: list[tuple[str, int]]) -> None:
        super().__init__()
        self.root = root
        self.addresses = addresses


class ServerStopped(Message):
    """The local server stopped; ``error`` says why when it did not stop on request."""

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error
