"""``getfile --version`` stays cheap: it loads no event loop, TLS, rich, Textual or shtab."""

from __future__ import annotations

import os
import re
import subprocess
import sys

HEAVY = ("asyncio", "ssl", "rich", "textual", "shtab", "blake3")


def test_version_loads_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "getfile_core", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    loaded = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", done.stderr, re.M))
    assert "getfile_core.cli.main" in loaded, "importtime output not understood"
    top = {name.split(".")[0] for name in loaded}
    assert not top & set(HEAVY), sorted(top & set(HEAVY))
