"""Start-up time and client memory: what a user pays before and during a download.

Start-up compares whole processes: ``getfile --version`` against a bare
``python -c "import asyncio"``, and a 1 MiB ``getfile get`` (verified, into
a fresh file) against ``bench/minimal_client.py``, twenty lines of blocking
socket code fetching the same file from the same server. Memory is the
client's peak RSS (from ``wait4``) for a small and a large file: it should
not grow with the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench import peers
from bench.peers import MINIMAL_CLIENT, PYTHON, Peer
from bench.runner import clear, run_timed, verify
from bench.stats import median, spread, table, verdict


def _getfile_server(data: Path) -> Peer:
    port = peers.free_port()
    argv = [*peers.getfile_command(), "serve", "-q", "--port", str(port), str(data)]
    return Peer("getfile-server-f", argv, port, cwd=data)


def _get(port: int, name: str, out: Path) -> list[str]:
    url = f"getfile://127.0.0.1:{port}/{name}"
    return [*peers.getfile_command(), "get", "-q", "-o", str(out), url]


def startup(
    data: Path,
    out: Path,
    name: str,
    size: int,
    digest: str,
    *,
    runs: int,
    progress: Callable[[str], None] = print,
) -> tuple[str, list[tuple[str, float, float]]]:
    times: dict[str, list[float]] = {key: [] for key in ("version", "asyncio", "get", "minimal")}
    failures: list[str] = []
    with _getfile_server(data) as server:
        commands = {
            "version": lambda: [*peers.getfile_command(), "--version"],
            "asyncio": lambda: [PYTHON, "-c", "import asyncio"],
            "get": lambda: _get(server.port, name, out),
            "minimal": lambda: [
                PYTHON,
                str(MINIMAL_CLIENT),
                "127.0.0.1",
                str(server.port),
                name,
                str(out / name),
            ],
        }
        for round_ in range(runs + 1):
            for key, argv in commands.items():
                clear(out)
                timed = run_timed(argv(), cwd=out)
                problem = timed.error
                if key in ("get", "minimal") and not problem:
                    problem = verify(out / name, size, digest)
                if problem:
                    failures.append(f"{key}: {problem}")
                elif round_:  # round 0 warms the caches
                    times[key].append(timed.seconds * 1000)
        clear(out)
    progress("start-up: done")
    labels = {
        "version": "`getfile --version`",
        "asyncio": '`python -c "import asyncio"`',
        "get": f"`getfile get` {size / 2**20:g} MiB (verified), whole process",
        "minimal": f"20-line blocking-socket client, {size / 2**20:g} MiB, whole process",
    }
    text = "### Start-up\n\n" + table(
        ["what", "ms median (min-max)"], [[labels[k], spread(v, 1)] for k, v in times.items()]
    )
    if failures:
        text += f"\n\n{len(failures)} failed run(s), first: {failures[0]}"
    targets = [
        ("`getfile --version` / `import asyncio`", _ratio(times, "version", "asyncio"), 1.3),
        (f"{size / 2**20:g} MiB fetch / 20-line client", _ratio(times, "get", "minimal"), 1.3),
    ]
    text += "\n\n" + table(
        ["target", "measured", "wanted", ""],
        [[t, f"{v:.2f}", f"<= {w:g}", verdict(v, w, at_most=True)] for t, v, w in targets],
    )
    return text, targets


def _ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    if not times[a] or not times[b]:
        return float("nan")
    return median(times[a]) / median(times[b])


def client_memory(
    data: Path,
    out: Path,
    files: list[tuple[str, int, str]],
    *,
    runs: int,
    progress: Callable[[str], None] = print,
) -> tuple[str, list[tuple[str, float, float]]]:
    """Peak RSS of ``getfile get`` per file size; ``files`` is (name, size, hash), small first."""
    peaks: dict[str, list[float]] = {name: [] for name, _, _ in files}
    failures: list[str] = []
    with _getfile_server(data) as server:
        for _ in range(runs):
            for name, size, digest in files:
                clear(out)
                timed = run_timed(_get(server.port, name, out), cwd=out, warm=int(size * 1.5))
                problem = timed.error or verify(out / name, size, digest)
                if problem:
                    failures.append(problem)
                else:
                    peaks[name].append(timed.peak_rss_mib)
        clear(out)
    progress("client memory: done")
    rows = [
        [f"`getfile get` {size / 2**20:g} MiB", spread(peaks[name], 1)] for name, size, _ in files
    ]
    text = "### Client peak RSS\n\n" + table(["download", "peak RSS MiB median (min-max)"], rows)
    if failures:
        text += f"\n\n{len(failures)} failed run(s), first: {failures[0]}"
    small, large = (max(peaks[name], default=float("nan")) for name, _, _ in (files[0], files[-1]))
    targets = [
        (f"client peak RSS, {files[-1][1] / 2**20:g} MiB download, MiB", large, 50.0),
        ("growth from small to large file, MiB", large - small, 5.0),
    ]
    text += "\n\n" + table(
        ["target", "measured", "wanted", ""],
        [[t, f"{v:.1f}", f"<= {w:g}", verdict(v, w, at_most=True)] for t, v, w in targets],
    )
    return text, targets
