"""The TUI against the CLI: the same 1 GiB over loopback, and how responsive the UI stays.

Both download from one ``getfile serve`` process. The CLI is timed whole
process (``getfile get``, start-up included); the TUI is the real app run
headless at 80x24 (it composes every frame as it would for a terminal), timed
from Enter to the row saying "done". Rounds alternate CLI and TUI. A last TUI
round presses Tab every quarter second while it downloads (a person moving
around the form) and records how long the app takes to handle each key, and
what the keys cost in throughput.

    .venv/bin/python bench/tui_vs_cli.py [--size-mib 1024] [--rounds 3]

Prints one table; the target is TUI >= 0.9 x CLI throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GETFILE = ROOT / ".venv" / "bin" / "getfile"
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from tui.app import GetfileApp  # noqa: E402
from tui.launch import Launch  # noqa: E402


def make_file(folder: Path, size_mib: int) -> Path:
    path = folder / f"bench-{size_mib}MiB.bin"
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as handle:
        for _ in range(size_mib):
            handle.write(block)
    return path


def start_server(folder: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [str(GETFILE), "serve", "-q", "--port", "0", str(folder)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"getfile://[^:/]+:(\d+)/", line)
    if not found:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(found.group(1))


def cli_once(port: int, name: str, dest: Path) -> float:
    began = time.perf_counter()
    subprocess.run(
        [str(GETFILE), "get", "-q", "-o", str(dest), f"getfile://127.0.0.1:{port}/{name}"],
        check=True,
    )
    return time.perf_counter() - began


async def tui_once(
    port: int, name: str, dest: Path, key_every: float | None = None
) -> tuple[float, list[float]]:
    app = GetfileApp(Launch(host="127.0.0.1", port=str(port), file=name, dest=str(dest)))
    latencies: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        began = time.perf_counter()
        # As the terminal driver does (pilot.press would wait for the app to go idle).
        app.post_message(events.Key("enter", "\r"))
        deadline = began + 600
        next_key = began + (key_every or 0)
        if key_every is None:  # no polling to disturb the measurement: wait on the worker
            while not app.workers and time.perf_counter() < deadline:
                await asyncio.sleep(0)
            await app.workers.wait_for_complete()
        while key_every is not None and time.perf_counter() < deadline:
            states = [t.state for t in app.transfers.values()]
            if states and states[0] in ("done", "failed", "cancelled"):
                break
            if key_every is not None and time.perf_counter() >= next_key:
                latencies.append(await key_latency(app))
                next_key = time.perf_counter() + key_every
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        transfer = next(iter(app.transfers.values()))
        if transfer.state != "done":
            raise SystemExit(f"TUI download ended {transfer.state}: {transfer.error}")
    return elapsed, latencies


async def key_latency(app: GetfileApp) -> float:
    """Send Tab as the terminal driver would; seconds until the focus has moved."""
    before = app.focused
    pressed = time.perf_counter()
    app.post_message(events.Key("tab", None))
    while app.focused is before and time.perf_counter() - pressed < 10:
        await asyncio.sleep(0.001)
    return time.perf_counter() - pressed


def clear(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="getfile-bench-"))
    served, dest = work / "served", work / "dest"
    served.mkdir()
    dest.mkdir()
    try:
        source = make_file(served, args.size_mib)
        server, port = start_server(served)
        try:
            cli_once(port, source.name, dest)  # warm the page cache and the server's digest
            cli_times, tui_times = [], []
            for _ in range(args.rounds):
                clear(dest)
                cli_times.append(cli_once(port, source.name, dest))
                clear(dest)
                tui_times.append(asyncio.run(tui_once(port, source.name, dest))[0])
            clear(dest)
            keyed, latencies = asyncio.run(tui_once(port, source.name, dest, key_every=0.25))
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mib = args.size_mib
    cli, tui = statistics.median(cli_times), statistics.median(tui_times)
    print(f"{mib} MiB over loopback, median of {args.rounds} rounds")
    print("  rounds (s): CLI " + " ".join(f"{t:.2f}" for t in cli_times))
    print("              TUI " + " ".join(f"{t:.2f}" for t in tui_times))
    print(f"  getfile get (whole process): {cli:6.2f} s  {mib / cli:7.1f} MiB/s")
    print(f"  getfile-tui (Enter to done): {tui:6.2f} s  {mib / tui:7.1f} MiB/s")
    print(f"  TUI / CLI throughput:        {cli / tui:6.2f}  (target >= 0.90)")
    print(f"  TUI with Tab every 0.25 s:   {keyed:6.2f} s  {mib / keyed:7.1f} MiB/s")
    if latencies:
        ms = sorted(lag * 1000 for lag in latencies)
        print(
            f"  key handled within:          median {statistics.median(ms):.0f} ms,"
            f" max {ms[-1]:.0f} ms ({len(ms)} keys)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
