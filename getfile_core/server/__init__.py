"""The getfile server: serves one folder over asyncio, bounded in every dimension.

Imported lazily: see ``getfile_core._lazy``. Modules, one concern each:
``fileserver`` (lifecycle, what connections share), ``exchange`` (one
connection's requests and answers, one or many), ``sending`` (bytes out, the stall rule,
the rate), ``digests`` (the hash pool and cache), ``listing`` (LIST pages),
``limits``, ``access`` (log records; the library never prints), ``root``
(confinement).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from getfile_core._lazy import lazy_exports

_EXPORTS = {
    "FileServer": ".fileserver",
    "ServerLimits": ".limits",
    "AccessRecord": ".access",
    "Outcome": ".access",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from getfile_core.server.access import AccessRecord, Outcome
    from getfile_core.server.fileserver import FileServer
    from getfile_core.server.limits import ServerLimits
