"""``python -m bench --only links``: `getfile get` through emulated real links (issue 9).

Loopback hides everything a real link does to a download. Each row here
runs the CLI as a user would (``getfile serve`` with its defaults,
``getfile get -q``) through the link emulator of ``tests/support/links.py``
and reports what the user got: did the file arrive verified, over how many
connections, how many bytes crossed the link per byte of file, how long.

The link rows are rate-bound, not CPU-bound, so they run at the same time
(each through its own relay, each file its own): the section costs the
slowest row, not the sum. A failed download is a row that says why (the
client's last stderr line), never a crash of the bench.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import peers
from bench.peers import Peer
from bench.runner import MiB, clear, source_file, verify
from bench.stats import table, verdict
from tests.support.links import KiB, Link, LinkEmulator, LinkStats

#: The link rows' byte budget: a 1 MiB/s row carries this much in as many seconds.
DEFAULT_MIB = 160
QUICK_MIB = 24
#: ``--quick`` lasts 16 s a row, shorter than the server's default 30 s stall
#: timeout; 5 s lets a quick run still catch a server that cuts slow readers.
QUICK_SERVER_OPTIONS = ("--stall-timeout", "5")
#: Wanted: bytes on the wire per byte of file across resets (a resume, not a restart).
WIRE_RATIO_WANTED = 1.10


@dataclass(frozen=True)
class LinkCase:
    key: str
    label: str
    link: Link
    size: int
    #: Seconds the client gets before the bench gives up on it (and says so).
    deadline: float


@dataclass(frozen=True)
class LinkRun:
    case: LinkCase
    completed: bool
    seconds: float
    connections: int
    resets: int
    bytes_down: int
    problem: str

    @property
    def wire_ratio(self) -> float:
        return self.bytes_down / self.case.size


def cases(budget_mib: int, quick: bool) -> list[LinkCase]:
    """1 MiB/s and 64 KiB/s rows of the same duration, and a link that resets.

    Sizes follow the byte budget so a row lasts ``budget_mib`` seconds
    when the link is kept busy: long enough that a server measuring its
    pace from the first socket buffers (issue 9: cut after ~35 MB, 30 s)
    shows it, short enough for one run.
    """
    budget = budget_mib * MiB
    slow = budget_mib * 1.25 + 30
    every = (2 if quick else 12) * MiB
    return [
        LinkCase("1MiB/s", "1 MiB/s each way", Link.network(MiB), budget, slow),
        LinkCase("64KiB/s", "64 KiB/s each way", Link.network(64 * KiB), budget // 16, slow),
        LinkCase(
            "resets",
            f"reset (RST) every {every // MiB} MiB, no rate cap",
            Link(reset_every=every),
            budget,
            slow,
        ),
    ]


def measure(
    data: Path,
    out: Path,
    chosen: list[LinkCase],
    server_options: tuple[str, ...],
    progress: Callable[[str], None],
) -> tuple[list[LinkRun], list[str]]:
    """Every case at once, each through its own relay in front of one ``getfile serve``.

    Also returns the server's access-log lines: what the server thought happened.
    """
    sources = {case.key: source_file(data, case.size) for case in chosen}
    port = peers.free_port()
    server = Peer(
        "links-getfile-server",
        [*peers.getfile_module_command(), "serve", *server_options, "--port", str(port), str(data)],
        port,
    )
    with server, ThreadPoolExecutor(len(chosen)) as pool:
        progress(
            f"links: {len(chosen)} links at once, up to {max(c.deadline for c in chosen):.0f} s"
        )
        folders = [out.with_name(f"{out.name}-link-{i}") for i in range(len(chosen))]
        futures = [
            pool.submit(_run_case, case, port, sources[case.key], folder, progress)
            for case, folder in zip(chosen, folders, strict=True)
        ]
        runs = [future.result() for future in futures]
    log = server.log.read_text(errors="replace").splitlines()
    return runs, [line for line in log if " GET " in line]


def _run_case(
    case: LinkCase,
    server_port: int,
    source: tuple[str, str],
    out: Path,
    progress: Callable[[str], None],
) -> LinkRun:
    """One download through its own relay: a row, whatever happens (never an exception)."""
    name, digest = source
    stats = LinkStats()
    seconds = 0.0
    try:
        clear(out)
        with LinkEmulator(server_port, case.link, idle_timeout=case.deadline) as relay:
            url = f"getfile://127.0.0.1:{relay.port}/{name}"
            argv = [*peers.getfile_module_command(), "get", "-q", "-o", str(out), url]
            seconds, problem = run_client(argv, out, case.deadline)
            stats = relay.stats()
        problem = problem.replace(f"{out}/", "") or verify(out / name, case.size, digest)
        clear(out)
        out.rmdir()
    except (OSError, RuntimeError, TimeoutError) as error:
        problem = f"the bench could not run it: {error.__class__.__name__}: {error}"
    progress(f"links: {case.label}: {'failed' if problem else 'done'} after {seconds:.0f} s")
    return LinkRun(
        case, not problem, seconds, stats.connections, stats.resets, stats.bytes_down, problem
    )


def run_client(argv: list[str], cwd: Path, deadline: float) -> tuple[float, str]:
    """Run a client to its end (or ``deadline``); its wall seconds and what went wrong."""
    began = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=peers.child_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=deadline,
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - began, f"still running after {deadline:.0f} s: stopped"
    seconds = time.perf_counter() - began
    if done.returncode == 0:
        return seconds, ""
    last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
    return seconds, f"exit {done.returncode}: {last[:240]}"


def report(
    runs: list[LinkRun], access_log: list[str], server_options: tuple[str, ...]
) -> tuple[str, list[tuple[str, float, float]]]:
    """The table, the server's access log, and (target, value, threshold) for the summary."""
    rows = [
        [
            run.case.label,
            f"{run.case.size / MiB:g} MiB",
            "yes" if run.completed else "**no**",
            str(run.connections),
            str(run.resets),
            f"{run.wire_ratio:.2f}",
            f"{run.seconds:.1f}",
            _cell(run.problem),
        ]
        for run in runs
    ]
    header = ["link", "file", "completed, verified", "connections", "resets"]
    header += ["bytes on the wire / file", "seconds", "what went wrong"]
    server = " ".join(["getfile serve", *server_options])
    text = f"### Links: `{server}` -> `getfile get` through emulated links\n\n"
    text += table(header, rows)
    targets: list[tuple[str, float, float]] = []
    lines = []
    for run in runs:
        if run.case.link.reset_every is None:
            label = f"{run.case.label}: completed on one connection"
            value = 1.0 if run.completed and run.connections == 1 else 0.0
            targets.append((label, value, 1.0))
            lines.append([label, "yes" if value else "no", "yes", verdict(value, 1.0)])
        else:
            label = f"{run.case.label}: completed, bytes on the wire / file"
            value = run.wire_ratio if run.completed else float("inf")
            targets.append((label, value, WIRE_RATIO_WANTED))
            shown = f"{value:.2f}" if run.completed else "not completed"
            wanted = f"<= {WIRE_RATIO_WANTED:.2f}"
            lines.append([label, shown, wanted, verdict(value, WIRE_RATIO_WANTED, at_most=True)])
    text += "\n\n" + table(["target", "measured", "wanted", ""], lines)
    if access_log:
        shown = "\n".join(line[:200] for line in access_log[:20])
        text += f"\n\nThe server's access log for these rows:\n\n```\n{shown}\n```"
    return text, targets


def _cell(text: str) -> str:
    """Client text in a Markdown cell: one line, no pipes, no markup surprises."""
    return text.replace("|", "/").replace("`", "'").replace("\n", " ")


__all__ = [
    "DEFAULT_MIB",
    "QUICK_MIB",
    "QUICK_SERVER_OPTIONS",
    "LinkCase",
    "LinkRun",
    "cases",
    "measure",
    "report",
]
