"""The ``getfile`` command line: argv, printing, progress bars and exit codes live here only."""

from __future__ import annotations

from getfile_core.cli.main import main

__all__ = ["main"]
