"""Which of the features under construction today's ``getfile get`` has (from its ``--help``).

The folders and parallel sections measure ``get -r``, ``--segments N`` and
``--mirror URL`` as soon as they exist: each getfile row asks this module,
so the tables fill in without editing the bench when the features land.
Until then a row runs today's CLI or says the option is not there yet.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache

from bench import peers

#: ``-r`` or ``--recursive`` as an option of ``get`` (not the ``r`` of ``--resume``).
_RECURSIVE = re.compile(r"(?:^|[\s,\[])(?:-r|--recursive)\b")


@dataclass(frozen=True)
class GetFeatures:
    recursive: bool
    segments: bool
    mirror: bool
    #: Why the help could not be read (empty when it could).
    problem: str = ""

    def summary(self) -> str:
        names = {"get -r": self.recursive, "--segments": self.segments, "--mirror": self.mirror}
        present = [name for name, there in names.items() if there]
        absent = [name for name, there in names.items() if not there]
        text = f"present: {', '.join(present) or 'none'}; not yet: {', '.join(absent) or 'none'}"
        return text + (f" ({self.problem})" if self.problem else "")


def parse_help(text: str) -> GetFeatures:
    return GetFeatures(
        recursive=bool(_RECURSIVE.search(text)),
        segments="--segments" in text,
        mirror="--mirror" in text,
    )


@cache
def get_features() -> GetFeatures:
    """Ask ``python -m getfile_core get --help`` (the code on PYTHONPATH, as the rows run it)."""
    argv = [*peers.getfile_module_command(), "get", "--help"]
    try:
        done = subprocess.run(
            argv, env=peers.child_environment(), capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return GetFeatures(False, False, False, f"get --help failed: {error}")
    if done.returncode != 0:
        return GetFeatures(False, False, False, f"get --help exited {done.returncode}")
    return parse_help(done.stdout)
