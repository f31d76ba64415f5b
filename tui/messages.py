"""Messages the workers send to the widgets.

Progress messages replace each other (``can_replace``): if the UI falls
behind, only the newest snapshot of each transfer is drawn, so a fast
download can never flood the event queue.
"""

from __future__ import annotations

from textual.message import Message

from getfile_core.client.api import Progress
from getfile_core.server.fileserver import AccessRecord


class TransferProgress(Message):
    """A fresh snapshot of one transfer's counters."""

    def __init__(self, transfer_id: int, progress: Progress) -> None:
        super().__init__()
        self.transfer_id = transfer_id
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TransferProgress) and message.transfer_id == self.transfer_id


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
