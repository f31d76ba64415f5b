"""Module-level lazy exports (PEP 562), so a package's public names cost nothing until used.

``getfile --version`` must not pay for the client's or server's imports
(asyncio, ssl, threading: about 25 ms measured in docs/performance.md), yet
``from getfile_core import fetch`` should just work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: ~1.7 ms of start-up
if TYPE_CHECKING:
    from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name imported on first use.

    ``exports`` maps a public name to the module (relative to ``package`` when
    it starts with a dot) that defines it.
    """

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(where, package)
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
