"""``getfile --completion bash|zsh|fish``: shell completion generated from the parser.

shtab reads the argparse parser itself, so the completion can never drift
from the flags. It costs 26 ms to import, so it is imported only here, when
a script is asked for, never on an ordinary start.
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "fish")

#: Flags (by argparse ``dest``) whose value is a local folder or file: the shell completes paths.
FOLDER_FLAGS = frozenset({"dir", "output"})
FILE_FLAGS = frozenset({"token_file", "tls_cert", "tls_key", "cafile", "checksum_file"})


def _mark_paths(parser: argparse.ArgumentParser) -> None:
    import shtab

    for action in parser._actions:
        if action.dest in FOLDER_FLAGS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif action.dest in FILE_FLAGS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark_paths(sub)


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The script for ``shell``; folders and files are completed where flags take them."""
    import shtab

    _mark_paths(parser)
    return shtab.complete(parser, shell=shell)
