"""``python -m bench --only folders``: whole trees, getfile vs rsync, wget and lftp (issue 12).

Two trees over 127.0.0.1: many small files (2000 x 4 KiB in 20 folders),
where per-file costs decide (a connection, a request, a process), and a
few big ones (20 x 50 MiB), where the copy itself decides. Each tool
fetches the whole tree into a fresh folder, timed from the first process
spawned to the last one's exit; the copy is then compared file by file
(BLAKE3) with the source before it is deleted. Rounds interleave, one
warm-up round (page cache, the getfile server's digest cache, bytecode)
is not counted.

getfile's row follows the CLI it finds: with ``get -r`` one command for the
tree; before it, what a script must do today, ``getfile ls`` each folder
and one ``get -j 8`` per folder (the listing included: a script needs it).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import machine, peers, webpeers
from bench.features import get_features
from bench.links import run_client
from bench.rounds import Outcome, Row, Run, cell, interleave, ratio
from bench.runner import MiB, source_file, verify
from bench.stats import table, verdict
from bench.trees import KiB, TreeShape, compare, make_tree

SMALL = TreeShape(2000, 4 * KiB, 20)
BIG = TreeShape(20, 50 * MiB)
QUICK_SMALL = TreeShape(1000, 4 * KiB, 10)
QUICK_BIG = TreeShape(5, 32 * MiB)
#: Connections for every tool that has the choice (lftp --parallel, getfile -j).
JOBS = 8
NEEDS = ("rsync", "wget", "lftp")
SINGLE = "getfile-one-file"
#: Recursive, never above the start folder, no host folder, no robots.txt, listings not kept.
WGET = ("wget", "-r", "-np", "-nH", "-q", "-e", "robots=off", "-R", "index.html*")
#: Issue 12's targets: small files no slower than rsync's daemon; a folder of big
#: files at the rate of one file ("at": within 10 %).
SMALL_WANTED = 1.0
BIG_WANTED = 0.9


@dataclass(frozen=True)
class Ports:
    rsync: int | None
    http: int | None
    getfile: int


@dataclass(frozen=True)
class TreeResult:
    shape: TreeShape
    outcomes: list[Outcome]
    #: The single-file row's key for the big tree ("" when there is none).
    single: str = ""


def measure(
    root: Path,
    out: Path,
    shapes: list[TreeShape],
    rounds: int,
    missing: list[str],
    progress: Callable[[str], None],
) -> list[TreeResult]:
    """Every tree, every tool, interleaved; servers started once for the whole section."""
    trees = {}
    for shape in shapes:
        progress(f"folders: preparing {shape.describe()}")
        trees[shape] = make_tree(root, shape)
    single = {shape: source_file(root, shape.total) for shape in shapes if not shape.folders}
    with contextlib.ExitStack() as stack:
        ports = _start_servers(stack, root, out.parent / "folders-config", missing)
        results = []
        for shape in shapes:
            rows = _rows(shape, trees[shape][1], single.get(shape), ports, out, missing)
            outcomes = interleave(rows, rounds, 1, progress, f"folders {shape.describe()}")
            results.append(TreeResult(shape, outcomes, SINGLE if shape in single else ""))
    shutil.rmtree(out, ignore_errors=True)
    return results


def _start_servers(
    stack: contextlib.ExitStack, root: Path, config: Path, missing: list[str]
) -> Ports:
    rsync = http = None
    if "rsync" not in missing:
        rsync = peers.free_port()
        stack.enter_context(webpeers.rsync_daemon(rsync, root, config / "rsync"))
    if not {"wget", "lftp"} <= set(missing):
        http = peers.free_port()
        stack.enter_context(webpeers.http_server(http, root))
    port = peers.free_port()
    stack.enter_context(webpeers.getfile_server(port, root, "folders-getfile-server"))
    return Ports(rsync, http, port)


def _rows(
    shape: TreeShape,
    digests: dict[str, str],
    single: tuple[str, str] | None,
    ports: Ports,
    out: Path,
    missing: list[str],
) -> list[Row]:
    name = shape.name
    deadline = 120 + shape.total / (20 * MiB)
    copy = out / name

    def row(key: str, label: str, steps: Callable[[], tuple[float, str]], absent: str) -> Row:
        def run() -> Run:
            _fresh(out)
            if shape.total >= 64 * MiB:
                machine.prefault(shape.total * 3 // 2)
            seconds, problem = steps()
            return Run(seconds, problem or compare(copy, digests))

        return Row(key, label, run, absent)

    def installed(*tools: str) -> str:
        gone = [tool for tool in tools if tool in missing]
        return f"not installed ({', '.join(gone)})" if gone else ""

    http = f"http://127.0.0.1:{ports.http}/{name}/"
    lftp = "set cmd:fail-exit yes; set net:max-retries 2; set net:timeout 30; "
    lftp += f"open http://127.0.0.1:{ports.http}/; mirror --parallel={JOBS} {name} {copy}"
    rows = [
        row(
            "rsync",
            "rsync daemon (`rsync -a rsync://…`)",
            lambda: run_client(
                ["rsync", "-a", f"rsync://127.0.0.1:{ports.rsync}/data/{name}", f"{out}/"],
                out,
                deadline,
            ),
            installed("rsync"),
        ),
        row(
            "wget",
            "`wget -r` from `python -m http.server`",
            lambda: run_client(
                [*WGET, "-P", str(out), http],
                out,
                deadline,
            ),
            installed("wget"),
        ),
        row(
            "lftp",
            f"lftp `mirror --parallel={JOBS}` from `python -m http.server`",
            lambda: run_client(["lftp", "-c", lftp], out, deadline),
            installed("lftp"),
        ),
        _getfile_row(row, ports.getfile, name, out, deadline),
    ]
    if single is not None:
        rows.append(_single_row(single, shape.total, ports.getfile, out, deadline))
    return rows


def _getfile_row(row: Callable[..., Row], port: int, name: str, out: Path, deadline: float) -> Row:
    getfile = peers.getfile_module_command()
    if get_features().recursive:
        argv = [*getfile, "get", "-r", "-q", "-j", str(JOBS), "-o", str(out)]
        argv.append(f"getfile://127.0.0.1:{port}/{name}")
        return row(
            "getfile",
            f"`getfile get -r -j {JOBS}`",
            lambda: run_client(argv, out, deadline),
            "",
        )
    return row(
        "getfile",
        f"getfile today: `ls` each folder, one `get -j {JOBS}` per folder",
        lambda: _getfile_script(port, name, out, deadline),
        "",
    )


def _single_row(single: tuple[str, str], size: int, port: int, out: Path, deadline: float) -> Row:
    """One file as big as the whole tree: the single-file rate the folder should reach."""
    name, digest = single
    argv = [*peers.getfile_module_command(), "get", "-q", "-o", str(out)]
    argv.append(f"getfile://127.0.0.1:{port}/{name}")

    def run() -> Run:
        _fresh(out)
        machine.prefault(size * 3 // 2)
        seconds, problem = run_client(argv, out, deadline)
        return Run(seconds, problem or verify(out / name, size, digest))

    return Row(SINGLE, f"`getfile get` of one {size // MiB} MiB file", run)


def _getfile_script(port: int, name: str, out: Path, deadline: float) -> tuple[float, str]:
    """What a script does today: list each folder, fetch its files with one ``get -j 8``."""
    getfile = peers.getfile_module_command()
    began = time.perf_counter()
    pending = [name]
    while pending:
        folder = pending.pop(0)
        listing = subprocess.run(
            [*getfile, "ls", f"getfile://127.0.0.1:{port}/{folder}"],
            env=peers.child_environment(),
            capture_output=True,
            text=True,
            timeout=deadline,
        )
        if listing.returncode != 0:
            return time.perf_counter() - began, f"ls {folder}: {listing.stderr.strip()[-200:]}"
        files, folders = _parse_listing(listing.stdout)
        pending += [f"{folder}/{sub}" for sub in folders]
        target = out / folder
        target.mkdir(parents=True, exist_ok=True)
        if files:
            urls = [f"getfile://127.0.0.1:{port}/{folder}/{file}" for file in files]
            argv = [*getfile, "get", "-q", "-j", str(JOBS), "-o", str(target), *urls]
            _, problem = run_client(argv, out, deadline)
            if problem:
                return time.perf_counter() - began, f"get {folder}: {problem}"
    return time.perf_counter() - began, ""


def _parse_listing(text: str) -> tuple[list[str], list[str]]:
    """``getfile ls`` lines (``kind size date time name``, folders ending in /): files, folders."""
    files, folders = [], []
    for line in text.splitlines():
        fields = line.split(None, 4)
        if len(fields) != 5:
            continue
        kind, name = fields[0], fields[4]
        if kind == "file":
            files.append(name)
        elif kind == "dir":
            folders.append(name.rstrip("/"))
    return files, folders


def _fresh(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def report(results: list[TreeResult]) -> tuple[str, list[tuple[str, float, float]]]:
    """One table per tree (seconds, MB/s, x rsync), then the targets of issue 12."""
    parts = []
    targets: list[tuple[str, float, float]] = []
    lines = []
    features = get_features()
    today = "" if features.recursive else " (today's CLI: no `get -r` yet)"
    for result in results:
        shape = result.shape
        by_key = {outcome.row.key: outcome for outcome in result.outcomes}
        rsync = by_key["rsync"].seconds
        rows = []
        for outcome in result.outcomes:
            seconds = outcome.seconds
            rate = shape.total / seconds / 1e6 if seconds == seconds else float("nan")
            problem = outcome.problems[0] if outcome.problems else ""
            rows.append(
                [
                    outcome.row.label,
                    outcome.cell(),
                    "-" if rate != rate else f"{rate:.0f}",
                    _shown(ratio(seconds, rsync)),
                    outcome.verified(),
                    cell(problem[:200]),
                ]
            )
        header = ["tool", "seconds median (min-max)", "MB/s", "x rsync (time)", "verified"]
        header.append("what went wrong")
        runs = len(result.outcomes[0].runs) if result.outcomes else 0
        parts.append(
            f"### Folders: {shape.describe()} ({shape.total / MiB:.0f} MiB) over 127.0.0.1, "
            f"{runs} interleaved round(s)\n\n" + table(header, rows)
        )
        getfile = by_key["getfile"].seconds
        if shape.folders:
            label = f"{shape.describe()}: getfile / rsync daemon, time{today}"
            value = ratio(getfile, rsync)
            targets.append((label, value, SMALL_WANTED))
            wanted = verdict(value, SMALL_WANTED, at_most=True)
            lines.append([label, _shown(value), f"<= {SMALL_WANTED:g}", wanted])
        if result.single:
            label = f"{shape.describe()}: folder rate / one file's rate{today}"
            value = ratio(by_key[result.single].seconds, getfile)
            targets.append((label, value, BIG_WANTED))
            lines.append([label, _shown(value), f">= {BIG_WANTED:g}", verdict(value, BIG_WANTED)])
    parts.append(table(["target", "measured", "wanted", ""], lines))
    parts.append(f"getfile options found by `get --help`: {features.summary()}.")
    return "\n\n".join(parts), targets


def _shown(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"
