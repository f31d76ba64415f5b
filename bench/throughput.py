"""One large file over 127.0.0.1, every tool side by side, runs interleaved.

Each tool is a server process (started once) and a client process (one per
run, timed from spawn to exit, so start-up counts for everyone). Rounds
rotate the order so no tool always runs first, and every received file is
hashed and compared with the source before it is deleted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import peers
from bench.peers import LEGACY_GETFILE, MINIMAL_CLIENT, MINIMAL_SERVER, PYTHON, Peer
from bench.runner import Timed, clear, run_timed, verify
from bench.stats import median, spread, table, verdict

SOCAT_BUFFER = "1048576"


@dataclass(frozen=True)
class Server:
    name: str
    needs: tuple[str, ...]
    #: (port, data folder, file name) -> argv; runs in the data folder.
    argv: Callable[[int, Path, str], list[str]]


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    server: Server
    needs: tuple[str, ...]
    #: (port, file name, output folder) -> argv; runs in the output folder.
    argv: Callable[[int, str, Path], list[str]]
    #: Bump the source's mtime before each run, so no digest cache matches: the
    #: server hashes while it sends (version 2's trailer), a first download.
    never_hashed: bool = False


def _getfile_server(port: int, data: Path, _name: str) -> list[str]:
    return [*peers.getfile_command(), "serve", "-q", "--port", str(port), str(data)]


SOCAT = Server(
    "socat-server",
    ("socat",),
    lambda port, data, name: [
        "socat",
        "-b",
        SOCAT_BUFFER,
        "-U",
        f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
        f"OPEN:{data / name},rdonly",
    ],
)
MINIMAL = Server(
    "minimal-server",
    (),
    lambda port, data, _name: [PYTHON, str(MINIMAL_SERVER), str(data), str(port)],
)
HTTP = Server(
    "http-server",
    (),
    lambda port, data, _name: [
        PYTHON,
        "-m",
        "http.server",
        "-b",
        "127.0.0.1",
        "-d",
        str(data),
        str(port),
    ],
)
LEGACY = Server(
    "legacy-server",
    (),
    lambda port, _data, _name: [
        PYTHON,
        str(LEGACY_GETFILE),
        "-mode",
        "server",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
    ],
)
GETFILE = Server("getfile-server", (), _getfile_server)


def _getfile_get(*extra: str) -> Callable[[int, str, Path], list[str]]:
    def argv(port: int, name: str, out: Path) -> list[str]:
        url = f"getfile://127.0.0.1:{port}/{name}"
        return [*peers.getfile_command(), "get", "-q", *extra, "-o", str(out), url]

    return argv


CEILING = "socat"
OURS = "getfile"
OURS_LEGACY = "getfile-legacy-request"
OURS_FIRST = "getfile-first"
CASES = [
    Case(
        CEILING,
        f"`socat -b {SOCAT_BUFFER}` -> `socat -b {SOCAT_BUFFER}` (ceiling)",
        SOCAT,
        ("socat",),
        lambda port, name, out: [
            "socat",
            "-b",
            SOCAT_BUFFER,
            "-u",
            f"TCP:127.0.0.1:{port}",
            f"CREATE:{out / name}",
        ],
    ),
    Case(
        "minimal",
        "minimal asyncio sendfile server -> blocking `recv_into` client",
        MINIMAL,
        (),
        lambda port, name, out: [
            PYTHON,
            str(MINIMAL_CLIENT),
            "127.0.0.1",
            str(port),
            name,
            str(out / name),
        ],
    ),
    Case(
        "curl",
        "`python -m http.server` -> `curl -o`",
        HTTP,
        ("curl",),
        lambda port, name, out: [
            "curl",
            "-sSf",
            "-o",
            str(out / name),
            f"http://127.0.0.1:{port}/{name}",
        ],
    ),
    Case(
        "legacy",
        "legacy getfile server -> legacy client (1 KiB blocks)",
        LEGACY,
        (),
        lambda port, name, _out: [
            PYTHON,
            str(LEGACY_GETFILE),
            "-file",
            name,
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
        ],
    ),
    Case(OURS, "`getfile serve` -> `getfile get` (digest verified)", GETFILE, (), _getfile_get()),
    Case(
        OURS_FIRST,
        "`getfile serve` -> `getfile get`, first download (never hashed: digest in the trailer)",
        GETFILE,
        (),
        _getfile_get(),
        never_hashed=True,
    ),
    Case(
        OURS_LEGACY,
        "`getfile serve` -> `getfile get --legacy` (legacy request, no digest)",
        GETFILE,
        (),
        _getfile_get("--legacy"),
    ),
]


@dataclass
class Outcome:
    case: Case
    rates: list[float] = field(default_factory=list)  # MB/s (10^6 bytes)
    by_round: dict[int, float] = field(default_factory=dict)
    rss: list[float] = field(default_factory=list)  # MiB
    cpu: list[float] = field(default_factory=list)  # client CPU seconds per GiB
    server_cpu: list[float] = field(default_factory=list)  # the server's, per GiB
    failures: list[str] = field(default_factory=list)


def measure(
    data: Path,
    out: Path,
    name: str,
    size: int,
    digest: str,
    *,
    runs: int,
    missing: list[str],
    keys: list[str] | None = None,
    progress: Callable[[str], None] = print,
) -> list[Outcome]:
    """Start every server, then run ``runs`` interleaved rounds (after one warm-up)."""
    cases = [c for c in CASES if not set(c.needs) & set(missing) and (not keys or c.key in keys)]
    servers = {c.server.name: c.server for c in cases}
    ports = {server: peers.free_port() for server in servers}
    started = [
        Peer(s.name, s.argv(ports[s.name], data, name), ports[s.name], cwd=data)
        for s in servers.values()
    ]
    outcomes = {c.key: Outcome(c) for c in cases}
    warm = int(size * 1.5) + 64 * 2**20
    with peers.peers(*started):
        pids = {peer.name: peer.pid for peer in started}
        for round_ in range(runs + 1):
            shift = round_ % len(cases)
            for case in cases[shift:] + cases[:shift]:
                clear(out)
                port = ports[case.server.name]
                if case.never_hashed:  # a new mtime: the server's digest cache cannot match
                    now = time.time_ns()
                    os.utime(data / name, ns=(now, now))
                server = pids[case.server.name]
                served_before = server_cpu(server)
                timed: Timed = run_timed(case.argv(port, name, out), cwd=out, warm=warm)
                served = server_cpu(server) - served_before
                problem = timed.error or verify(out / name, size, digest)
                clear(out)
                if round_ == 0:  # warm-up: caches, the server's digest, first-touch pages
                    if problem:
                        outcomes[case.key].failures.append(f"warm-up: {problem}")
                    continue
                outcome = outcomes[case.key]
                if problem:
                    outcome.failures.append(problem)
                    continue
                outcome.rates.append(size / 1e6 / timed.seconds)
                outcome.by_round[round_] = outcome.rates[-1]
                outcome.rss.append(timed.peak_rss_mib)
                outcome.cpu.append(timed.cpu_seconds * 2**30 / size)
                outcome.server_cpu.append(served * 2**30 / size)
            progress(f"throughput: round {round_}/{runs} done")
    return list(outcomes.values())


def receive_path() -> str:
    """Which receive path the verified ``getfile get`` rows took: forced, or the kept verdict."""
    from getfile_core.client import strategy

    forced = os.environ.get(strategy.ENVIRONMENT, "")
    if forced:
        return f"`getfile get` receive path: `{forced}` (forced by {strategy.ENVIRONMENT})."
    kept = strategy.kept_verdicts().get(strategy.LOCAL, {}).get("choice")
    where = strategy.cache_path()
    if kept is None:
        return (
            f"`getfile get` receive path: no verdict kept in {where}, so `{strategy.PRIOR}` "
            f"for bodies of {strategy.USE_FROM >> 20} MiB or more, `{strategy.DEFAULT}` below."
        )
    return f"`getfile get` receive path: `{kept}`, the trial's verdict kept in {where}."


def server_cpu(pid: int) -> float:
    """The server's CPU seconds so far, its reaped children's included.

    socat serves each connection in a child it reaps when the child exits, so
    first wait (at most 2 s) until it has no child left; ``http.server``'s
    threads are counted in the process's own figures even after they end.
    """
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if not children.read_text().strip():
                break
        except OSError:
            break
        time.sleep(0.01)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def report(outcomes: list[Outcome], size: int) -> tuple[str, list[tuple[str, float, float]]]:
    """The table, and (target, value, threshold) for the summary."""
    by_key = {o.case.key: o for o in outcomes}
    ceiling = median(by_key[CEILING].rates) if CEILING in by_key else float("nan")
    rows = []
    for outcome in outcomes:
        rate = median(outcome.rates)
        failed = outcome.failures
        errors = f"{len(failed)} failed: {failed[0]}" if failed else ""
        rows.append(
            [
                outcome.case.label,
                spread(outcome.rates),
                f"{rate / ceiling:.2f}" if ceiling == ceiling else "-",
                f"{median(outcome.cpu):.2f}" if outcome.cpu else "-",
                f"{median(outcome.server_cpu):.2f}" if outcome.server_cpu else "-",
                f"{len(outcome.rates)}" + (f" ({errors})" if errors else ""),
            ]
        )
    title = f"Throughput: {size / 2**20:.0f} MiB into a fresh file over 127.0.0.1"
    text = f"### {title}\n\n{receive_path()}\n\n" + table(
        [
            "what",
            "MB/s median (min-max)",
            "x ceiling",
            "client CPU s/GiB",
            "server CPU s/GiB",
            "runs verified",
        ],
        rows,
    )

    def ratio(a: str, b: str) -> float:
        if a not in by_key or b not in by_key:
            return float("nan")
        return median(by_key[a].rates) / median(by_key[b].rates)

    def paired(a: str, b: str) -> str:
        """Median of the per-round ratios: steadier when the machine's load drifts."""
        if a not in by_key or b not in by_key:
            return "-"
        first, second = by_key[a].by_round, by_key[b].by_round
        ratios = [first[r] / second[r] for r in first if r in second]
        return f"{median(ratios):.2f}" if ratios else "-"

    pairs = [  # issue 15's targets (and issue 6's ratio to the book's getfile)
        ("getfile / http.server + curl (digest verified)", OURS, "curl", 1.5),
        ("getfile / socat ceiling (digest verified)", OURS, CEILING, 0.65),
        ("legacy request to our server / minimal pair", OURS_LEGACY, "minimal", 0.9),
        ("first (never-hashed) download / repeat download", OURS_FIRST, OURS, 0.9),
        ("getfile / legacy getfile", OURS, "legacy", 5.0),
    ]
    targets = [(label, ratio(a, b), wanted) for label, a, b, wanted in pairs]
    text += "\n\n" + table(
        ["target", "ratio of medians", "per-round ratio, median", "wanted", ""],
        [
            [label, f"{value:.2f}", paired(a, b), f">= {wanted:g}", verdict(value, wanted)]
            for (label, a, b, wanted), (_, value, _) in zip(pairs, targets, strict=True)
        ],
    )
    return text, targets


__all__ = ["CASES", "Outcome", "measure", "report", "verify"]
