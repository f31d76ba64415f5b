"""``python -m bench --only parallel``: connections and mirrors on emulated paths (issue 13).

One TCP connection moves at most its window per round trip, and many
servers cap each connection; byte ranges over several connections (and
several mirrors) beat both. Every row downloads the same random file
through the link emulator of ``tests/support/links.py`` (a fresh relay per
run, so its counters are that run's), timed from spawn to exit, and the
file is compared with the source (BLAKE3) before it is deleted:

- a long path, 40 ms one way with a 256 KiB window: at most 3.2 MiB/s per
  connection, whatever the server;
- a per-connection rate cap (2 MiB/s each, Ethernet segments): as many
  servers and CDNs do;
- mirrors, each behind its own relay with a cap shared by all its
  connections (4 MiB/s per mirror): more connections to one mirror do not
  help, more mirrors do.

getfile runs as ``getfile get`` (one connection) and, when ``get --help``
has them, ``--segments 2/4/8`` and ``--mirror URL``; its peer is ``aria2c
-x N -s N`` (Debian's aria2) against nginx serving the same folder
through the same links. Rows are rate-bound, so they run one after
another (no CPU contention to speak of) in interleaved rounds.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import peers, webpeers
from bench.features import get_features
from bench.links import run_client
from bench.rounds import Outcome, Row, Run, cell, interleave, ratio
from bench.runner import MiB, source_file, verify
from bench.stats import table, verdict
from tests.support.links import ETHERNET_MSS, KiB, Link, LinkEmulator

DEFAULT_MIB = 16
QUICK_MIB = 8
NEEDS = ("nginx", "aria2c")
SEGMENTS = (1, 2, 4, 8)
MIRRORS = (1, 2, 3)
PER_CONNECTION = 2 * MiB
PER_MIRROR = 4 * MiB
#: Issue 13's targets.
SEGMENTS_WANTED = 3.0
VERSUS_ARIA2_WANTED = 1.0
MIRRORS_WANTED = 0.65


@dataclass(frozen=True)
class PathCase:
    key: str
    label: str
    link: Link
    #: Slowest expected bytes/s of one connection, for the run's deadline.
    slowest: float
    mirrors: bool = False


CASES = (
    PathCase(
        "long",
        "long path: 40 ms one way, 256 KiB window (<= 3.2 MiB/s per connection)",
        Link(delay=0.04, window=256 * KiB),
        256 * KiB / 0.08,
    ),
    PathCase(
        "capped",
        f"rate cap per connection: {PER_CONNECTION // MiB} MiB/s each, Ethernet segments",
        Link.network(PER_CONNECTION),
        PER_CONNECTION,
    ),
    PathCase(
        "mirrors",
        f"mirrors, each capped at {PER_MIRROR // MiB} MiB/s for all its connections",
        Link(total_rate=PER_MIRROR, queue=PER_MIRROR // 4, mss=ETHERNET_MSS),
        PER_MIRROR,
        mirrors=True,
    ),
)


@dataclass(frozen=True)
class CaseResult:
    case: PathCase
    outcomes: list[Outcome]


@dataclass(frozen=True)
class _Source:
    name: str
    digest: str
    size: int
    getfile_port: int
    nginx_port: int
    out: Path
    #: Why the aria2c rows are not measured ("" = they are).
    peer_absent: str


def measure(
    data: Path,
    out: Path,
    size: int,
    rounds: int,
    missing: list[str],
    progress: Callable[[str], None],
) -> list[CaseResult]:
    """Every path, every row; one getfile server and one nginx for the whole section."""
    name, digest = source_file(data, size)
    with contextlib.ExitStack() as stack:
        config = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nginx-")))
        getfile_port = peers.free_port()
        stack.enter_context(webpeers.getfile_server(getfile_port, data, "parallel-getfile-server"))
        nginx_port = peers.free_port()
        absent = "not installed (nginx or aria2c)" if set(NEEDS) & set(missing) else ""
        absent = absent or webpeers.start(stack, webpeers.nginx(nginx_port, data, config))
        source = _Source(name, digest, size, getfile_port, nginx_port, out, absent)
        _prime(source)
        results = []
        for case in CASES:
            rows = _rows(case, source)
            outcomes = interleave(rows, rounds, 0, progress, f"parallel {case.key}")
            results.append(CaseResult(case, outcomes))
    shutil.rmtree(out, ignore_errors=True)
    return results


def _prime(source: _Source) -> None:
    """One unshaped getfile download first: the server's digest cache and the page cache warm."""
    argv = [*peers.getfile_module_command(), "get", "-q", "-o", str(source.out)]
    shutil.rmtree(source.out, ignore_errors=True)
    source.out.mkdir(parents=True)
    run_client([*argv, f"getfile://127.0.0.1:{source.getfile_port}/{source.name}"], source.out, 60)


def _rows(case: PathCase, source: _Source) -> list[Row]:
    features = get_features()
    counts = MIRRORS if case.mirrors else SEGMENTS
    getfile = peers.getfile_module_command()
    rows = []
    for count in counts:
        argv = [*getfile, "get", "-q", "-o", str(source.out)]
        if count == 1:
            label, absent = "`getfile get` (one connection)", ""
        elif case.mirrors:
            label = f"`getfile get URL{' --mirror URL' * (count - 1)}`"
            absent = "" if features.mirror else "no `--mirror` in this getfile yet"
        else:
            label = f"`getfile get --segments {count}`"
            absent = "" if features.segments else "no `--segments` in this getfile yet"
            argv += ["--segments", str(count)]
        rows.append(_row(f"getfile-{count}", label, case, source, count, argv, absent))
    for count in counts:
        argv = ["aria2c", "-q", "--file-allocation=none", "--allow-overwrite=true"]
        argv += ["--auto-file-renaming=false", "--min-split-size=1M", "--max-tries=3"]
        if case.mirrors:
            argv += ["-x", "1", "-s", str(count)]
            label = f"`aria2c -x 1 -s {count}` from {count} nginx mirror(s)"
        else:
            argv += ["-x", str(count), "-s", str(count)]
            label = f"`aria2c -x {count} -s {count}` from nginx"
        argv += ["-d", str(source.out), "-o", source.name]
        rows.append(
            _row(f"aria2c-{count}", label, case, source, count, argv, source.peer_absent, http=True)
        )
    return rows


def _row(
    key: str,
    label: str,
    case: PathCase,
    source: _Source,
    count: int,
    argv: list[str],
    absent: str,
    *,
    http: bool = False,
) -> Row:
    """A row: ``argv`` plus one URL per relay (mirrors: ``count`` relays; else one)."""
    relays = count if case.mirrors else 1
    deadline = 30 + 3 * source.size / case.slowest
    target = source.nginx_port if http else source.getfile_port

    def run() -> Run:
        try:
            return shaped_run()
        except (OSError, RuntimeError, TimeoutError) as error:  # a relay failed: a row says it
            return Run(0.0, f"the bench could not run it: {error.__class__.__name__}: {error}")

    def shaped_run() -> Run:
        shutil.rmtree(source.out, ignore_errors=True)
        source.out.mkdir(parents=True)
        with contextlib.ExitStack() as stack:
            # Mirrors on 127.0.0.1, .2, .3: different hosts, as aria2c -x counts them.
            links = [
                stack.enter_context(
                    LinkEmulator(target, case.link, host=f"127.0.0.{i + 1}", idle_timeout=deadline)
                )
                for i in range(relays)
            ]
            urls = [_url(http, link, source.name) for link in links]
            if http:
                command = [*argv, *urls]
            else:
                command = [*argv, urls[0]]
                for url in urls[1:]:
                    command += ["--mirror", url]
            seconds, problem = run_client(command, source.out, deadline)
            used = sum(link.stats().connections for link in links)
        problem = problem or verify(source.out / source.name, source.size, source.digest)
        return Run(seconds, problem, used)

    return Row(key, label, run, absent)


def _url(http: bool, relay: LinkEmulator, name: str) -> str:
    return f"{'http' if http else 'getfile'}://{relay.host}:{relay.port}/{name}"


def report(results: list[CaseResult], size: int) -> tuple[str, list[tuple[str, float, float]]]:
    """One table per path, then issue 13's targets (and aria2c's own ratios for reference)."""
    parts = []
    for result in results:
        by_key = {outcome.row.key: outcome for outcome in result.outcomes}
        one = by_key["getfile-1"].seconds
        rows = []
        for outcome in result.outcomes:
            seconds = outcome.seconds
            rate = size / seconds / MiB if seconds == seconds else float("nan")
            used = sorted(run.connections for run in outcome.runs if not run.problem)
            rows.append(
                [
                    outcome.row.label,
                    outcome.cell(),
                    _shown(rate, 1),
                    _shown(ratio(one, seconds)),
                    str(used[len(used) // 2]) if used else "-",
                    outcome.verified(),
                    cell(outcome.problems[0][:200]) if outcome.problems else "",
                ]
            )
        header = ["client", "seconds median (min-max)", "MiB/s", "speed x one getfile connection"]
        header += ["connections", "verified", "what went wrong"]
        runs = max((len(outcome.runs) for outcome in result.outcomes), default=0)
        parts.append(
            f"### Parallel: {result.case.label}; {size / MiB:g} MiB, {runs} round(s)\n\n"
            + table(header, rows)
        )
    text, targets = _targets({r.case.key: {o.row.key: o for o in r.outcomes} for r in results})
    parts.append(text)
    parts.append(f"getfile options found by `get --help`: {get_features().summary()}.")
    return "\n\n".join(parts), targets


def _targets(
    cases: dict[str, dict[str, Outcome]],
) -> tuple[str, list[tuple[str, float, float]]]:
    features = get_features()
    lines: list[list[str]] = []
    targets: list[tuple[str, float, float]] = []

    def seconds(case: str, key: str) -> float:
        outcome = cases.get(case, {}).get(key)
        return float("nan") if outcome is None else outcome.seconds

    def add(label: str, value: float, wanted: float, at_most: bool = False) -> None:
        targets.append((label, value, wanted))
        sign = "<=" if at_most else ">="
        met = verdict(value, wanted, at_most=at_most)
        lines.append([label, _shown(value), f"{sign} {wanted:g}", met])

    def reference(label: str, value: float, why: str = "(peer, for reference)") -> None:
        lines.append([label, _shown(value), why, ""])

    add(
        "long path: getfile --segments 8, speed x one connection",
        ratio(seconds("long", "getfile-1"), seconds("long", "getfile-8")),
        SEGMENTS_WANTED,
    )
    reference(
        "long path: aria2c -x 8, speed x aria2c -x 1",
        ratio(seconds("long", "aria2c-1"), seconds("long", "aria2c-8")),
    )
    ours = "getfile-8" if features.segments else "getfile-1"
    today = "" if features.segments else " (today's CLI: one connection)"
    for case in ("long", "capped"):
        add(
            f"{case} path: getfile --segments 8, speed x aria2c -x 8{today}",
            ratio(seconds(case, "aria2c-8"), seconds(case, ours)),
            VERSUS_ARIA2_WANTED,
        )
    add(
        "two equal mirrors: getfile time / one mirror's",
        ratio(seconds("mirrors", "getfile-2"), seconds("mirrors", "getfile-1")),
        MIRRORS_WANTED,
        at_most=True,
    )
    reference(
        "two equal mirrors: aria2c time / one mirror's",
        ratio(seconds("mirrors", "aria2c-2"), seconds("mirrors", "aria2c-1")),
    )
    for tool in ("getfile", "aria2c"):
        reference(
            f"three equal mirrors: {tool} time / one mirror's",
            ratio(seconds("mirrors", f"{tool}-3"), seconds("mirrors", f"{tool}-1")),
            "(peer, for reference)" if tool == "aria2c" else "(no target)",
        )
    return table(["target", "measured", "wanted", ""], lines), targets


def _shown(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:.{digits}f}"
