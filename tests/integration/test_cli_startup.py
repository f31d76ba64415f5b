"""Import hygiene: ``getfile --version`` and ``import getfile_core`` stay cheap.

Neither loads an event loop, TLS, rich, Textual, shtab or blake3: those are
paid for by the command or the call that needs them (the public API is
lazy). Read from ``python -X importtime``, which lists every module a fresh
interpreter imported, so a heavy import anywhere on the path shows up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

HEAVY = ("asyncio", "ssl", "rich", "textual", "shtab", "blake3")
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", re.M)


def modules_loaded(*argv: str) -> set[str]:
    """Every module a fresh ``python -X importtime ARGV`` imported (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    return set(IMPORTED.findall(done.stderr))


def heavy_in(loaded: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in loaded} & set(HEAVY))


def test_version_loads_nothing_heavy() -> None:
    loaded = modules_loaded("-m", "getfile_core", "--version")
    assert "getfile_core.cli.main" in loaded, "importtime output not understood"
    assert not heavy_in(loaded), heavy_in(loaded)


def test_importing_the_library_loads_nothing_heavy() -> None:
    loaded = modules_loaded("-c", "import getfile_core")
    assert "getfile_core" in loaded, "importtime output not understood"
    assert not heavy_in(loaded), heavy_in(loaded)
