"""The getfile client: download one file, list a folder, from a getfile or a legacy server.

``fetch`` and ``list_folder`` are coroutines (the TUI's); ``download`` is the
blocking whole download the one-file command line uses. Everything here is
imported lazily: see ``getfile_core._lazy``.
"""

from __future__ import annotations

from getfile_core._lazy import lazy_exports

_EXPORTS = {
    "fetch": ".api",
    "list_folder": ".api",
    "Progress": ".api",
    "FetchResult": ".state",
    "Options": ".state",
    "Phase": ".state",
    "RetryNotice": ".state",
    "TransferState": ".state",
    "download": ".get",
    "Destination": ".destination",
    "PART_SUFFIX": ".names",
    "part_name": ".names",
    "UnsafeName": ".names",
    "safe_local_name": ".names",
    # Folders (``get -r``): the walk, the plan, the download on kept connections.
    "download_tree": ".tree",
    "walk_tree": ".tree",
    "Tree": ".tree",
    "TreeEntry": ".tree",
    "TreeOptions": ".tree",
    "TreeResult": ".tree",
    "TreeLimitError": ".tree",
    "Filter": ".globs",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from getfile_core.client.api import Progress, fetch, list_folder
    from getfile_core.client.destination import Destination
    from getfile_core.client.get import download
    from getfile_core.client.globs import Filter
    from getfile_core.client.names import PART_SUFFIX, UnsafeName, part_name, safe_local_name
    from getfile_core.client.state import (
        FetchResult,
        Options,
        Phase,
        RetryNotice,
        TransferState,
    )
    from getfile_core.client.tree import (
        Tree,
        TreeEntry,
        TreeLimitError,
        TreeOptions,
        TreeResult,
        download_tree,
        walk_tree,
    )
