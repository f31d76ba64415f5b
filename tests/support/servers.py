"""Our own server, in process, on 127.0.0.1:0, for the length of an ``async with``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from getfile_core.server.fileserver import AccessRecord, FileServer, ServerLimits


@contextlib.asynccontextmanager
async def running_server(
    root: str | os.PathLike[str], *, grace: float = 2, **options: Any
) -> AsyncIterator[FileServer]:
    """A started ``FileServer`` on an ephemeral port; its access records in ``server.log``.

    ``grace`` is the shutdown grace of its ``ServerLimits`` unless ``limits``
    is given; other ``options`` go to ``FileServer`` as they are.
    """
    records: list[AccessRecord] = []
    options.setdefault("limits", ServerLimits(grace=grace))
    server = FileServer(root, "127.0.0.1", 0, on_access=records.append, **options)
    server.log = records  # type: ignore[attr-defined]
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1)
