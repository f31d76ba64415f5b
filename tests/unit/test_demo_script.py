"""The README's first command downloads beside the folder it serves, never into it.

Issue 14 #16: when the demo saved into demo/generated/downloads, its own partial files
showed up in the app's remote browser of that same server. The destination and the served
folder are read from the line that starts the app, so a change to either is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo"


def test_the_demo_downloads_outside_the_served_folder() -> None:
    text = DEMO.read_text()
    served = re.search(r"--serve (\S+)", text)
    dest = re.search(r"--dest (\S+)", text)
    assert served and dest, "scripts/demo no longer names --serve and --dest"
    project = DEMO.parents[1]
    served_path = (project / served[1]).resolve()
    dest_path = (project / dest[1]).resolve()
    assert not dest_path.is_relative_to(served_path), (dest_path, served_path)
