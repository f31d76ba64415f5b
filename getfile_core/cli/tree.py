"""``getfile get -r`` and ``getfile ls -r/-l/-h/--json``: whole folders on the command line.

Progress on a terminal is one bar for the whole tree (files done/total,
bytes, rate, ETA) and a line of the files in flight, refreshed from the
main thread every ``tree.TICK`` seconds; problems are one line each, as
they happen; the summary is one line (or one JSON object on stdout with
``--json``).
"""

from __future__ import annotations

import argparse
import threading
import time

from getfile_core.address import parse_url
from getfile_core.cli.exit_codes import SUCCESS, exit_code_for
from getfile_core.cli.options import check_output, client_options
from getfile_core.cli.output import error_line, shows_progress
from getfile_core.client.globs import Filter
from getfile_core.client.tree import (
    Tree,
    TreeEntry,
    TreeLimitError,
    TreeOptions,
    TreeResult,
    download_tree,
    walk_tree,
)
from getfile_core.errors import DiskFullError, UsageError
from getfile_core.safe_text import printable
from getfile_core.units import human_rate, human_size


def tree_options(args: argparse.Namespace) -> TreeOptions:
    try:
        rules = Filter.from_args(getattr(args, "rules", None) or [])
    except ValueError as error:
        raise UsageError(f"--include/--exclude: {error}") from None
    return TreeOptions(
        jobs=args.jobs,
        overwrite=getattr(args, "overwrite", False),
        filter=rules,
        max_entries=args.max_entries,
        max_depth=args.max_depth,
    )


#: How far back a line's error is looked for among the tree's errors (threads at once).
RECENT_ERRORS = 64

#: Worker threads report problems; one line must never be cut by another.
_LINES = threading.Lock()


def _line(subject: str, text: str) -> None:
    with _LINES:
        error_line(text, subject=subject)


def run_get_tree(args: argparse.Namespace) -> int:
    if len(args.urls) != 1:
        raise UsageError("get -r takes one folder URL")
    if args.legacy:
        raise UsageError("get -r needs a getfile server: the book's protocol cannot list folders")
    target = parse_url(args.urls[0])
    check_output(args.output)
    options = client_options(args, legacy=False, retries=args.retries, rate=args.rate)
    show = shows_progress(args.quiet)
    lines = TreeLines(quiet=args.quiet)
    display = None
    if show:
        from getfile_core.cli.progress import TreeDisplay  # rich: only on a terminal

        display = TreeDisplay()

    def start(tree: Tree) -> None:
        lines.attach(tree)
        if display is not None:
            display.attach(tree)

    if display is not None:
        with display:
            result = download_tree(
                target, args.output, options, tree_options(args), lines, start, display.tick
            )
    else:
        result = download_tree(target, args.output, options, tree_options(args), lines, start)
    code = lines.exit_code(result)
    if args.json:
        import json  # only for --json (1.2 ms of imports otherwise)

        print(json.dumps(_summary(result, code)), flush=True)
    elif show:
        error_line(summary_text(result))
    return code


class TreeLines:
    """``on_line`` for ``get -r``: one line per problem, and a full disk ends the tree.

    Each file that cannot be written is one line, but once the disk is full
    every later file fails the same way: on a 5 MiB tmpfs a tree of 3000
    files printed ~2900 "disk full" lines and went on asking the server for
    each. The first ``DiskFullError`` cancels the tree (what is saved stays,
    ``.getfile-part`` files are kept, a rerun continues) and is the only
    line; what fails after it is its consequence and is not printed.
    """

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.tree: Tree | None = None
        self.disk_full: DiskFullError | None = None

    def attach(self, tree: Tree) -> None:
        self.tree = tree

    def __call__(self, subject: str, text: str) -> None:
        # -q: errors only (a kept local file is one: exit 8); a skipped special entry is not.
        if self.quiet and text.endswith("; skipped"):
            return
        with _LINES:
            if self.disk_full is not None:
                return
            self.disk_full = self._disk_full(text)
            error_line(text, subject=subject)
        if self.disk_full is not None and self.tree is not None:
            self.tree.cancel()

    def _disk_full(self, text: str) -> DiskFullError | None:
        """The full disk this line is about: ``Tree.fail`` records the error, then calls
        us with its text, so it is among the last few recorded (one per thread at most)."""
        if self.tree is None:
            return None
        recent = self.tree.result.errors[-RECENT_ERRORS:]
        return next(
            (e for e in reversed(recent) if isinstance(e, DiskFullError) and str(e) == text), None
        )

    def exit_code(self, result: TreeResult) -> int:
        """A full disk stopped the tree: 9, whatever failed before it (it is why files are
        missing); otherwise the first error's code."""
        if self.disk_full is not None:
            return exit_code_for(self.disk_full)
        return exit_code_for(result.errors[0]) if result.errors else SUCCESS


def summary_text(result: TreeResult) -> str:
    """One line: files fetched and their bytes (``TreeResult.bytes``: the sizes of the files
    saved this run, whole, never the traffic; ``--json``'s "bytes" is the same), time, rate."""
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    parts = [
        f"{result.files} file(s) fetched, {human_size(result.bytes)} in {result.seconds:.2f} s "
        f"({human_rate(rate)})"
    ]
    if result.skipped:
        parts.append(f"{result.skipped} already there")
    if result.kept:
        parts.append(f"{result.kept} local file(s) differ, kept")
    if result.failed:
        parts.append(f"{result.failed} failed")
    return "; ".join(parts)


def _summary(result: TreeResult, code: int) -> dict[str, object]:
    return {
        "files": result.files,
        "skipped": result.skipped,
        "kept": result.kept,
        "failed": result.failed,
        "folders": result.folders,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "exit": code,
    }


# ---------------------------------------------------------------- ls -r / -l / -h / --json


def run_ls_tree(args: argparse.Namespace) -> int:
    target = parse_url(args.url)
    options = client_options(args, legacy=False)
    opts = TreeOptions(
        jobs=4,
        max_entries=args.max,
        max_depth=args.max_depth,
        recursive=args.recursive,
        entries_flag="--max",
        file_advice="",  # ls of a file says what it found, as plain ls does
    )
    entries, result = walk_tree(target, options, opts, _line)
    print_entries(entries, args)
    # Cut at --max is what plain ``ls`` does too: said in one line, not a failure.
    errors = [e for e in result.errors if not isinstance(e, TreeLimitError)]
    return exit_code_for(errors[0]) if errors else SUCCESS


def print_entries(entries: list[TreeEntry], args: argparse.Namespace) -> None:
    if args.json:
        import json

        for entry in entries:
            print(json.dumps(entry_json(entry)))
        return
    for entry in entries:
        print(entry_line(entry, long=args.long, human=args.human))


def entry_json(entry: TreeEntry) -> dict[str, object]:
    # Names are given as the server sent them (undecodable bytes as \\udcXX escapes).
    return {
        "path": entry.path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
        "kind": entry.kind,
        "size": entry.size,
        "mtime": entry.mtime_ns / 1e9,
    }


def entry_line(entry: TreeEntry, *, long: bool, human: bool) -> str:
    name = printable(entry.path) + ("/" if entry.kind == "dir" else "")
    size = "-"
    if entry.kind == "file":
        size = human_size(entry.size) if human else str(entry.size)
    pattern = "%Y-%m-%d %H:%M:%S" if long else "%Y-%m-%d %H:%M"
    stamp = time.strftime(pattern, time.localtime(entry.mtime_ns / 1e9))
    return f"{printable(entry.kind):<5} {size:>12}  {stamp}  {name}"
