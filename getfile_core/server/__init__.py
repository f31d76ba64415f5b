"""The getfile server: serves one folder over asyncio, bounded in every dimension.

Imported lazily: see ``getfile_core._lazy``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from getfile_core._lazy import lazy_exports

_EXPORTS = {
    "FileServer": ".fileserver",
    "ServerLimits": ".fileserver",
    "AccessRecord": ".fileserver",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from getfile_core.server.fileserver import AccessRecord, FileServer, ServerLimits
