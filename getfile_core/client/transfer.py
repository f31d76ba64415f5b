"""Where the client's pieces used to live; kept so imports from before the split still work.

New code imports from ``getfile_core.client`` (the public API) or the
module that owns a name: ``state``, ``session``, ``get``, ``listing``.
"""

from __future__ import annotations

from getfile_core.client.get import download
from getfile_core.client.listing import list_folder
from getfile_core.client.session import PaceFloor, Session, connect, raise_for_status
from getfile_core.client.state import (
    FetchResult,
    Options,
    Phase,
    RetryNotice,
    TransferState,
)

__all__ = [
    "FetchResult",
    "Options",
    "PaceFloor",
    "Phase",
    "RetryNotice",
    "Session",
    "TransferState",
    "connect",
    "download",
    "list_folder",
    "raise_for_status",
]
