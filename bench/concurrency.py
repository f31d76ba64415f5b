"""A thousand clients at once against our server and against the minimal one.

The same load generator (``bench.load``) hits both servers in alternating
rounds; what is compared is the 95th-percentile time from connect to the
last byte, with every body verified. Each server is a fresh process, so its
peak RSS (VmHWM) is what serving these clients cost it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import peers
from bench.peers import MINIMAL_SERVER, PYTHON, REPO, Peer
from bench.stats import median, percentile, table, verdict


@dataclass
class Outcome:
    label: str
    p95: list[float] = field(default_factory=list)  # seconds, one per round
    p50: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    verified: int = 0
    errors: list[str] = field(default_factory=list)
    peak_rss_mib: float | None = None


def _round(port: int, name: str, size: int, digest: str, clients: int, mode: str) -> dict:
    argv = [PYTHON, "-m", "bench.load", str(port), name, str(size), digest, str(clients), mode]
    done = subprocess.run(
        argv,
        cwd=REPO,
        env=peers.child_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return {"latencies": [], "errors": [done.stderr.strip()[-300:]], "wall": 0.0}
    return json.loads(done.stdout)


def measure(
    data: Path,
    name: str,
    size: int,
    digest: str,
    *,
    clients: int,
    rounds: int,
    progress: Callable[[str], None] = print,
) -> list[Outcome]:
    minimal_port, ours_port = peers.free_port(), peers.free_port()
    minimal = Peer(
        "minimal-server-c",
        [PYTHON, str(MINIMAL_SERVER), str(data), str(minimal_port)],
        minimal_port,
    )
    ours = Peer(
        "getfile-server-c",
        # Every client must get a transfer slot (the default, 64, answers the rest 'busy').
        [
            *peers.getfile_command(),
            "serve",
            "-q",
            "--max-transfers",
            str(clients),
            "--port",
            str(ours_port),
            str(data),
        ],
        ours_port,
    )
    plan = [
        (Outcome("minimal asyncio sendfile server (legacy request)"), minimal_port, "legacy"),
        (Outcome("getfile serve, extended request (digest checked)"), ours_port, "extended"),
        (Outcome("getfile serve, legacy request"), ours_port, "legacy"),
    ]
    with peers.peers(minimal, ours):
        for round_ in range(rounds):
            for outcome, port, mode in plan:
                result = _round(port, name, size, digest, clients, mode)
                latencies = result["latencies"]
                outcome.errors += result["errors"]
                outcome.verified += len(latencies)
                if latencies:
                    outcome.p95.append(percentile(latencies, 0.95))
                    outcome.p50.append(percentile(latencies, 0.50))
                    outcome.walls.append(result["wall"])
            progress(f"concurrency: round {round_ + 1}/{rounds} done")
        plan[0][0].peak_rss_mib = peers.peak_rss_mib(minimal.pid)
        plan[1][0].peak_rss_mib = plan[2][0].peak_rss_mib = peers.peak_rss_mib(ours.pid)
    return [outcome for outcome, _, _ in plan]


def report(
    outcomes: list[Outcome], clients: int, size: int, rounds: int
) -> tuple[str, list[tuple[str, float, float]]]:
    rows = []
    for o in outcomes:
        errors = f"{len(o.errors)}" + (f" ({o.errors[0][:80]})" if o.errors else "")
        rss = f"{o.peak_rss_mib:.0f}" if o.peak_rss_mib is not None else "-"
        rows.append(
            [
                o.label,
                f"{median(o.p50) * 1000:.0f}",
                f"{median(o.p95) * 1000:.0f} ({min(o.p95, default=0) * 1000:.0f}-"
                f"{max(o.p95, default=0) * 1000:.0f})",
                f"{median(o.walls):.2f}",
                f"{o.verified}/{clients * rounds}",
                errors,
                rss,
            ]
        )
    text = (
        f"### Concurrency: {clients} clients at once x {size / 2**20:g} MiB, {rounds} round(s)\n\n"
        + table(
            [
                "server",
                "p50 ms",
                "p95 ms median (min-max)",
                "all done s",
                "verified",
                "errors",
                "server peak RSS MiB",
            ],
            rows,
        )
    )
    minimal, ours = outcomes[0], outcomes[1]
    ratio = median(ours.p95) / median(minimal.p95) if minimal.p95 and ours.p95 else float("nan")
    rss = ours.peak_rss_mib if ours.peak_rss_mib is not None else float("nan")
    unserved = float(clients * rounds - ours.verified)
    targets = [
        (f"{clients} clients: not served and verified", unserved, 0.0),
        ("p95 latency / minimal server's", ratio, 1.3),
        (f"server peak RSS with {clients} clients, MiB", rss, 100.0),
    ]
    text += "\n\n" + table(
        ["target", "measured", "wanted", ""],
        [[t, f"{v:.2f}", f"<= {w:g}", verdict(v, w, at_most=True)] for t, v, w in targets],
    )
    return text, targets
