"""Module-level lazy exports (PEP 562), so a package's public names cost nothing until used.

``getfile --version`` must not pay for the client's or server's imports
(asyncio, ssl, threading: about 25 ms measured in docs/performance.md), yet
``from getfile_core import fetch`` should just work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: ~1.7 ms of start-up
if TYPE_CHECKING:
    from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name imported on first use.

    ``exports`` maps a public name to the module (relative to ``package`` when
    it starts with a dot) that defines it. The import goes through the
    ``import`` statement's machinery (``__import__``), not
    ``importlib.import_module``: only the former shows in ``python -X
    importtime``, which otherwise books a lazy module's whole cost as its
    importer's "self" time and hides what it pulled in.
    """

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name = package + where if where.startswith(".") else where
        __import__(module_name)
        return getattr(sys.modules[module_name], name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
