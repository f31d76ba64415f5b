"""The TUI's imports of getfile_core, checked as an allow-list (import-linter's contract
lists forbidden modules, so a module added to getfile_core later would slip past it)."""

from __future__ import annotations

import ast
from pathlib import Path

import tui

PUBLIC = {"getfile_core", "getfile_core.client", "getfile_core.server"}
#: Names the TUI needs that getfile_core does not export yet (asked for): remove when it does.
NOT_YET_PUBLIC: dict[str, str] = {}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_tui_imports_only_the_public_api() -> None:
    package = Path(tui.__file__).parent
    wrong = {
        f"{path.relative_to(package)}: {module}"
        for path in package.rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] == "getfile_core"
        and module not in PUBLIC
        and module not in NOT_YET_PUBLIC
    }
    assert not wrong, sorted(wrong)
