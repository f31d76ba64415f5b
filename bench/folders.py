"""``python -m bench --only folders``: whole trees, getfile vs rsync, wget and lftp (issue 12).

lftp runs against nginx, not ``python -m http.server``: the latter listens
with a backlog of 5, so lftp's 8 parallel connections overflow it (4
``ListenOverflows`` in /proc/net/netstat per run) and wait out 1 s SYN
retransmits: the 2000-file tree took lftp 2.1-4.2 s from http.server,
0.5 s from nginx. wget is sequential, so it is shown against both.

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
import tempfile
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
NEEDS = ("rsync", "wget", "lftp", "nginx")
#: Each row's commands, client and server: a row runs only when all are installed.
ROW_NEEDS = {
    "rsync": ("rsync",),
    "wget": ("wget",),
    "wget-nginx": ("wget", "nginx"),
    "lftp": ("lftp", "nginx"),
}
SINGLE = "getfile-one-file"
#: Recursive, never above the start folder, no host folder, no robots.txt, listings not kept.
WGET = ("wget", "-r", "-np", "-nH", "-q", "-e", "robots=off", "-R", "index.html*")
#: Issue 12's targets: small files no slower than rsync's daemon; a folder of big
#: files at the rate of one file ("at": within 10 %).
SMALL_WANTED = 1.0
BIG_WANTED = 0.9


@dataclass(frozen=True)
class Ports:
    rsync: int
    http: int
    nginx: int
    getfile: int
    #: Row key -> why it is not measured (not installed, its server did not start).
    absent: dict[str, str]


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
        config = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-folders-")))
        ports = _start_servers(stack, root, config, missing)
        results = []
        for shape in shapes:
            rows = _rows(shape, trees[shape][1], single.get(shape), ports, out)
            outcomes = interleave(rows, rounds, 1, progress, f"folders {shape.describe()}")
            results.append(TreeResult(shape, outcomes, SINGLE if shape in single else ""))
    shutil.rmtree(out, ignore_errors=True)
    return results


def _start_servers(
    stack: contextlib.ExitStack, root: Path, config: Path, missing: list[str]
) -> Ports:
    """Every server some installed client needs; a server that fails only costs its rows."""
    absent = {
        key: f"not installed ({', '.join(tool for tool in tools if tool in missing)})"
        for key, tools in ROW_NEEDS.items()
        if set(tools) & set(missing)
    }
    ports = Ports(*(peers.free_port() for _ in range(4)), absent)
    servers = (
        (webpeers.rsync_daemon(ports.rsync, root, config / "rsync"), ("rsync",)),
        (webpeers.http_server(ports.http, root), ("wget",)),
        (webpeers.nginx(ports.nginx, root, config / "nginx"), ("wget-nginx", "lftp")),
    )
    for server, keys in servers:
        if all(key in absent for key in keys):
            continue
        if problem := webpeers.start(stack, server):
            for key in keys:
                absent.setdefault(key, problem)
    # Without getfile's server there is nothing to compare: that one may end the section.
    stack.enter_context(webpeers.getfile_server(ports.getfile, root, "folders-getfile-server"))
    return ports


def _rows(
    shape: TreeShape,
    digests: dict[str, str],
    single: tuple[str, str] | None,
    ports: Ports,
    out: Path,
) -> list[Row]:
    name = shape.name
    deadline = 120 + shape.total / (20 * MiB)
    copy = out / name

    def row(key: str, label: str, steps: Callable[[], tuple[float, str]]) -> Row:
        def run() -> Run:
            _fresh(out)
            if shape.total >= 64 * MiB:
                machine.prefault(shape.total * 3 // 2)
            seconds, problem = steps()
            return Run(seconds, problem or compare(copy, digests))

        return Row(key, label, run, ports.absent.get(key, ""))

    http = f"http://127.0.0.1:{ports.http}/{name}/"
    lftp = "set cmd:fail-exit yes; set net:max-retries 2; set net:timeout 30; "
    lftp += f"open http://127.0.0.1:{ports.nginx}/; mirror --parallel={JOBS} {name} {copy}"
    rows = [
        row(
            "rsync",
            "rsync daemon (`rsync -a rsync://…`)",
            lambda: run_client(
                ["rsync", "-a", f"rsync://127.0.0.1:{ports.rsync}/data/{name}", f"{out}/"],
                out,
                deadline,
            ),
        ),
        row(
            "wget",
            "`wget -r` from `python -m http.server`",
            lambda: run_client(
                [*WGET, "-P", str(out), http],
                out,
                deadline,
            ),
        ),
        row(
            "wget-nginx",
            "`wget -r` from nginx (autoindex)",
            lambda: run_client(
                [*WGET, "-P", str(out), f"http://127.0.0.1:{ports.nginx}/{name}/"], out, deadline
            ),
        ),
        row(
            "lftp",
            f"lftp `mirror --parallel={JOBS}` from nginx (autoindex)",
            lambda: run_client(["lftp", "-c", lftp], out, deadline),
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
        )
    return row(
        "getfile",
        f"getfile today: `ls` each folder, one `get -j {JOBS}` per folder",
        lambda: _getfile_script(port, name, out, deadline),
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
        try:
            listing = subprocess.run(
                [*getfile, "ls", f"getfile://127.0.0.1:{port}/{folder}"],
                env=peers.child_environment(),
                capture_output=True,
                text=True,
                timeout=deadline,
            )
        except subprocess.TimeoutExpired:
            return time.perf_counter() - began, f"ls {folder}: still running after {deadline} s"
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
