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
from getfile_core.errors import UsageError
from getfile_core.safe_text import printable
from getfile_core.units import human_rate, human_size

#: Columns the files-in-flight line may take.
FLIGHT_WIDTH = 70


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
    on_line = _quiet_line if args.quiet else _line
    display = TreeDisplay() if show else None
    if display is not None:
        with display:
            result = download_tree(
                target,
                args.output,
                options,
                tree_options(args),
                on_line,
                on_start=display.attach,
                on_tick=display.tick,
            )
    else:
        result = download_tree(target, args.output, options, tree_options(args), on_line)
    if args.json:
        import json  # only for --json (1.2 ms of imports otherwise)

        print(json.dumps(_summary(result)), flush=True)
    elif show:
        error_line(summary_text(result))
    return exit_code_for(result.errors[0]) if result.errors else SUCCESS


def _quiet_line(subject: str, text: str) -> None:
    """-q: errors only (a kept local file is one: exit 8); a skipped special entry is not."""
    if text.endswith("; skipped"):
        return
    _line(subject, text)


def summary_text(result: TreeResult) -> str:
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


def _summary(result: TreeResult) -> dict[str, object]:
    return {
        "files": result.files,
        "skipped": result.skipped,
        "kept": result.kept,
        "failed": result.failed,
        "folders": result.folders,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "exit": exit_code_for(result.errors[0]) if result.errors else SUCCESS,
    }


class TreeDisplay:
    """One bar for the tree and one line of the files in flight (rich, on stderr)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[flight]}", markup=False),
            console=Console(stderr=True),
            refresh_per_second=4,
        )
        self._task = self._bars.add_task("listing", total=None, flight="")
        self._tree: Tree | None = None

    def __enter__(self) -> TreeDisplay:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.tick()
        self._bars.stop()

    def attach(self, tree: Tree) -> None:
        self._tree = tree

    def tick(self) -> None:
        tree = self._tree
        if tree is None:
            return
        result = tree.result
        done = result.files + result.skipped
        flight = ", ".join(printable(name, limit=30) for name in tree.in_flight())
        self._bars.update(
            self._task,
            description=f"files {done}/{tree.files_total}",
            completed=tree.bytes_done,
            total=tree.bytes_total or None,
            flight=flight[:FLIGHT_WIDTH],
        )


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
