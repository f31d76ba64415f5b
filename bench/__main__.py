"""``python -m bench``: every figure of issue 6 in one run, printed as Markdown tables.

Sections: throughput (1 GiB, every tool), client memory (64 MiB vs 1 GiB),
concurrency (1000 clients x 1 MiB, with server memory), start-up, slow and
resetting links, whole folders (``bench/folders.py``), several connections
and mirrors on long and capped paths (``bench/parallel.py``), and the
TUI against the CLI (``bench/tui_vs_cli.py``, when present). The tables also
go to ``bench/results/latest.md`` and the raw targets to
``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    concurrency,
    first_byte,
    folders,
    footprint,
    links,
    machine,
    parallel,
    peers,
    throughput,
)
from bench.peers import PYTHON, REPO, RESULTS, child_environment
from bench.runner import MiB, source_file

SECTIONS = (
    "throughput",
    "memory",
    "concurrency",
    "startup",
    "links",
    "folders",
    "parallel",
    "tui",
)
TUI_SCRIPT = REPO / "bench" / "tui_vs_cli.py"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs: a try-out")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run just these sections")
    parser.add_argument("--runs", type=int, help="timed rounds per throughput case (default 7)")
    parser.add_argument("--size-mib", type=int, help="throughput file size (default 1024)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 1000)")
    parser.add_argument(
        "--link-mib",
        type=int,
        help=f"links: MiB through the 1 MiB/s link, 1/16 of it at 64 KiB/s; "
        f"also the resetting link's file (default {links.DEFAULT_MIB})",
    )
    parser.add_argument(
        "--parallel-mib",
        type=int,
        help=f"parallel: the file's size in MiB (default {parallel.DEFAULT_MIB}, "
        f"--quick {parallel.QUICK_MIB}); under 4 MiB one connection carries it all",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=[c.key for c in throughput.CASES],
        help="throughput: only these tools",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (2 if quick else 7)
    args.size = (args.size_mib or (256 if quick else 1024)) * MiB
    args.small = 64 * MiB
    args.clients = args.clients or (200 if quick else 1000)
    args.rounds = 1 if quick else 3
    args.startup_runs = 5 if quick else 20
    args.link_mib = args.link_mib or (links.QUICK_MIB if quick else links.DEFAULT_MIB)
    args.first_byte_runs = 1 if quick else 3
    args.folder_shapes = (
        [folders.QUICK_SMALL, folders.QUICK_BIG] if quick else [folders.SMALL, folders.BIG]
    )
    args.folder_rounds = 1 if quick else 3
    args.parallel_mib = args.parallel_mib or (parallel.QUICK_MIB if quick else parallel.DEFAULT_MIB)
    args.parallel_rounds = 1 if quick else 2
    args.sections = args.only or SECTIONS
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    began = time.monotonic()

    def progress(text: str) -> None:
        print(f"bench: {text} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)

    about = machine.describe()
    if float(about["load"].split()[0]) > 0.5:
        progress(f"warning: load average {about['load']}; other work skews the figures")
    parts = [
        "## getfile benchmark",
        f"`{' '.join(['python -m bench', *argv])}`, {time.strftime('%Y-%m-%d %H:%M')}",
        f"Machine: {about['cpus']} CPUs ({about['cpu']}; SIMD: {about['simd']}), "
        f"{about['memory']} RAM, kernel {about['kernel']}, Python {about['python']}, "
        f"load at start {about['load']}.",
    ]
    data, out = RESULTS / "data", RESULTS / "received"
    texts, targets = file_sections(args, data, out, progress)
    parts += texts
    if "folders" in args.sections:
        text, found = folders_section(args, data, out, progress)
        parts.append(text)
        targets += found
    if "parallel" in args.sections:
        text, found = parallel_section(args, data, out, progress)
        parts.append(text)
        targets += found
    if "tui" in args.sections and TUI_SCRIPT.exists():
        parts.append(tui_section(args.quick, progress))
    parts.append(f"Took {time.monotonic() - began:.0f} s.")
    report = "\n\n".join(parts) + "\n"
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(report)
    (RESULTS / "latest.json").write_text(
        json.dumps({"machine": about, "argv": argv, "targets": targets}, indent=1)
    )
    return 0


def file_sections(
    args: argparse.Namespace, data: Path, out: Path, progress: Callable[[str], None]
) -> tuple[list[str], list[tuple[str, float, float]]]:
    """The sections that move one source file: throughput, memory, concurrency, start-up, links."""
    wanted = set(args.sections)
    if not wanted & {"throughput", "memory", "concurrency", "startup", "links"}:
        return [], []
    missing = peers.ensure_tools(["socat", "curl"])
    progress("preparing source files")
    # Made only for the sections that use them (the folders and parallel sections make their own).
    none = ("", "")
    big = source_file(data, args.size) if wanted & {"throughput", "memory", "links"} else none
    small = source_file(data, args.small) if "memory" in wanted else none
    one = source_file(data, MiB) if wanted & {"concurrency", "startup"} else none

    parts: list[str] = []
    targets: list[tuple[str, float, float]] = []
    if "throughput" in args.sections:
        outcomes = throughput.measure(
            data,
            out,
            big[0],
            args.size,
            big[1],
            runs=args.runs,
            missing=missing,
            keys=args.cases,
            progress=progress,
        )
        text, found = throughput.report(outcomes, args.size)
        parts.append(text)
        targets += found
    if "memory" in args.sections:
        text, found = footprint.client_memory(
            data,
            out,
            [(small[0], args.small, small[1]), (big[0], args.size, big[1])],
            runs=2 if args.quick else 3,
            progress=progress,
        )
        parts.append(text)
        targets += found
    if "concurrency" in args.sections:
        outcomes_c = concurrency.measure(
            data,
            one[0],
            MiB,
            one[1],
            clients=args.clients,
            rounds=args.rounds,
            progress=progress,
        )
        text, found = concurrency.report(outcomes_c, args.clients, MiB, args.rounds)
        parts.append(text)
        targets += found
    if "startup" in args.sections:
        text, found = footprint.startup(
            data, out, one[0], MiB, one[1], runs=args.startup_runs, progress=progress
        )
        parts.append(text)
        targets += found
    if "links" in args.sections:
        text, found = links_section(args, data, out, big[0], missing, progress)
        parts.append(text)
        targets += found
    return parts, targets


def not_measured(title: str, error: Exception) -> str:
    """A section that could not run (e.g. its server did not start): say so, go on."""
    return f"### {title}\n\nNot measured: {error.__class__.__name__}: {error}"


def links_section(
    args: argparse.Namespace,
    data: Path,
    out: Path,
    big: str,
    missing: list[str],
    progress: Callable[[str], None],
) -> tuple[str, list[tuple[str, float, float]]]:
    """Slow and resetting links (at once), then the cold first byte (alone: it is timed)."""
    options = links.QUICK_SERVER_OPTIONS if args.quick else ()
    chosen = links.cases(args.link_mib, args.quick)
    try:
        runs, access_log = links.measure(data, out, chosen, options, progress)
        text, found = links.report(runs, access_log, options)
    except (OSError, RuntimeError) as error:  # e.g. the server did not start: say so, go on
        text, found = not_measured("Links", error), []
    outcomes, how = first_byte.measure(data, out, big, args.first_byte_runs, missing, progress)
    more, found_more = first_byte.report(outcomes, args.size, how)
    return text + "\n\n" + more, found + found_more


def folders_section(
    args: argparse.Namespace, data: Path, out: Path, progress: Callable[[str], None]
) -> tuple[str, list[tuple[str, float, float]]]:
    """rsync, wget and lftp against getfile on whole trees; any failure is a note, not a crash."""
    missing = peers.ensure_tools(folders.NEEDS)
    try:
        results = folders.measure(
            data / "folders",
            out.with_name("received-folders"),
            args.folder_shapes,
            args.folder_rounds,
            missing,
            progress,
        )
    except (OSError, RuntimeError) as error:  # e.g. a server did not start: say so, go on
        return not_measured("Folders", error), []
    return folders.report(results)


def parallel_section(
    args: argparse.Namespace, data: Path, out: Path, progress: Callable[[str], None]
) -> tuple[str, list[tuple[str, float, float]]]:
    """Segments and mirrors over emulated long and capped paths, with aria2c and nginx."""
    missing = peers.ensure_tools(parallel.NEEDS)
    try:
        results = parallel.measure(
            data / "parallel",
            out.with_name("received-parallel"),
            args.parallel_mib * MiB,
            args.parallel_rounds,
            missing,
            progress,
        )
    except (OSError, RuntimeError) as error:
        return not_measured("Parallel", error), []
    return parallel.report(results, args.parallel_mib * MiB)


def tui_section(quick: bool, progress: Callable[[str], None]) -> str:
    """The TUI helper's own benchmark, run as it is and quoted as it prints."""
    argv = [PYTHON, str(TUI_SCRIPT), *(["--size-mib", "256", "--rounds", "1"] if quick else [])]
    done = subprocess.run(
        argv, cwd=REPO, env=child_environment(), capture_output=True, text=True, timeout=900
    )
    progress("tui vs cli: done")
    if done.returncode != 0:
        return f"### TUI vs CLI\n\n`bench/tui_vs_cli.py` failed: {done.stderr.strip()[-300:]}"
    return "### TUI vs CLI (bench/tui_vs_cli.py)\n\n```\n" + done.stdout.strip() + "\n```"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
