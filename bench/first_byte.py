"""Time to the first byte of a cold, never-hashed file: `getfile serve` vs http.server + curl.

A user who asks for a big file the server has never seen should see bytes
at once. Issue 9 measured 2.3 s for a 1 GiB file where curl took 0.1 s,
because the server hashed the whole file before its answer. Each run here:

- starts a fresh server process (so no digest is cached in memory) and
  bumps the file's mtime (so no digest cached anywhere else can match);
- evicts the file from the page cache: ``posix_fadvise(DONTNEED)`` on that
  file only (unprivileged, and it leaves the programs' own files warm for
  both sides), then ``/proc/sys/vm/drop_caches`` only if pages stayed
  resident and it is writable; ``fincore`` says how much stayed, and the
  table says so;
- spawns the client as a user would and times spawn -> the first bytes of
  the source on disk (a file in the fresh output folder, whatever its name,
  whose first 16 bytes equal the source's, so a preallocated or sparse file
  does not count as data), then stops it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import peers
from bench.peers import Peer
from bench.runner import clear
from bench.stats import median, spread, table, verdict
from bench.throughput import HTTP, Server
from tests.support.links import LinkEmulator

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
PREFIX = 16
#: Seconds a client may take to its first byte before the run counts as failed.
DEADLINE = 60.0
#: Wanted: getfile's first byte within this many times curl's.
WANTED_RATIO = 3.0


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    server: Server
    #: (port, file name, output folder) -> client argv
    client: Callable[[int, str, Path], list[str]]


@dataclass
class Outcome:
    contender: Contender
    seconds: list[float] = field(default_factory=list)
    after_connect: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    resident: list[int] = field(default_factory=list)


def _getfile(port: int, name: str, out: Path) -> list[str]:
    url = f"getfile://127.0.0.1:{port}/{name}"
    return [*peers.getfile_module_command(), "get", "-q", "-o", str(out), url]


def _curl(port: int, name: str, out: Path) -> list[str]:
    return ["curl", "-s", "-o", str(out / name), f"http://127.0.0.1:{port}/{name}"]


GETFILE = Server(
    "getfile-server",
    (),
    lambda port, data, _name: [
        *peers.getfile_module_command(),
        *("serve", "-q", "--port", str(port), str(data)),
    ],
)
OURS = Contender("getfile", "`getfile serve` -> `getfile get`", GETFILE, _getfile)
CURL = Contender("curl", "`python -m http.server` -> `curl -o`", HTTP, _curl)


def evict(path: Path) -> tuple[int | None, str]:
    """Drop ``path`` from the page cache; the bytes still resident (None: unknown) and how."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    resident, how = resident_bytes(path), "fadvise"
    if resident != 0 and os.access(DROP_CACHES, os.W_OK):
        DROP_CACHES.write_text("1\n")  # page cache only; dentries and inodes stay
        resident, how = resident_bytes(path), "fadvise + drop_caches"
    return resident, how


def resident_bytes(path: Path) -> int | None:
    if shutil.which("fincore") is None:
        return None
    done = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    try:
        return int(done.stdout.split()[0])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Run:
    """One cold start: seconds from spawn and from connect to the first bytes, or why not."""

    from_spawn: float = float("nan")
    from_connect: float = float("nan")
    problem: str = ""
    resident: int | None = None
    how: str = "not dropped"


def measure(
    data: Path,
    out: Path,
    name: str,
    runs: int,
    missing: list[str],
    progress: Callable[[str], None],
) -> tuple[list[Outcome], str]:
    """``runs`` interleaved rounds of each contender; also how the cache was dropped."""
    source = data / name
    with open(source, "rb") as handle:
        prefix = handle.read(PREFIX)
    contenders = [c for c in (OURS, CURL) if c.key != "curl" or "curl" not in missing]
    outcomes = {c.key: Outcome(c) for c in contenders}
    how = "not dropped"
    for round_ in range(runs):
        order = contenders[round_ % 2 :] + contenders[: round_ % 2]
        for contender in order:
            outcome = outcomes[contender.key]
            clear(out)
            now = time.time_ns()
            os.utime(source, ns=(now, now))  # a new file to any digest cache
            try:
                run = _one_run(contender, data, out, name, prefix)
            except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                run = Run(problem=f"{error.__class__.__name__}: {error}"[:200])
            finally:
                clear(out)
            how = run.how if run.how != "not dropped" else how
            if run.resident is not None:
                outcome.resident.append(run.resident)
            if run.problem:
                outcome.failures.append(run.problem)
            else:
                outcome.seconds.append(run.from_spawn)
                outcome.after_connect.append(run.from_connect)
        progress(f"first byte: round {round_ + 1}/{runs} done")
    return list(outcomes.values()), how


def _one_run(contender: Contender, data: Path, out: Path, name: str, prefix: bytes) -> Run:
    """A fresh server, an unshaped relay (it notes when the client connects), one client."""
    port = peers.free_port()
    server = Peer(
        f"first-byte-{contender.key}", contender.server.argv(port, data, name), port, data
    )
    with server, LinkEmulator(port, idle_timeout=DEADLINE) as relay:
        resident, how = evict(data / name)
        argv = contender.client(relay.port, name, out)
        began = time.monotonic()
        client = subprocess.Popen(
            argv,
            cwd=out,
            env=peers.child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            arrived, problem = _wait_first_bytes(client, out, prefix, began)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(client.pid, signal.SIGKILL)
            _, errors = client.communicate(timeout=10)
        connected = relay.stats().first_connected
    if problem:
        last = errors.decode(errors="replace").strip().splitlines()[-1:]
        return Run(problem=": ".join([problem, *last])[:300], resident=resident, how=how)
    if connected is None:
        return Run(problem="data arrived without a connection through the relay")
    return Run(arrived - began, arrived - connected, "", resident, how)


def _wait_first_bytes(
    client: subprocess.Popen[bytes], out: Path, prefix: bytes, began: float
) -> tuple[float, str]:
    """When (``time.monotonic()``) a file in ``out`` starts with ``prefix``, or why never.

    Any file in the (fresh) folder counts, so the partial file's name (``.part``,
    ``.getfile-part``, curl's own) does not matter.
    """
    while (elapsed := time.monotonic() - began) < DEADLINE:
        exited = client.poll() is not None
        with contextlib.suppress(OSError), os.scandir(out) as entries:
            for entry in entries:
                with contextlib.suppress(OSError), open(entry.path, "rb") as output:
                    if output.read(PREFIX) == prefix:
                        return time.monotonic(), ""
        if exited:
            return 0.0, f"client exited {client.returncode} after {elapsed:.2f} s without the data"
        time.sleep(0.001)
    return 0.0, f"no first byte within {DEADLINE:.0f} s"


def report(
    outcomes: list[Outcome], size: int, how: str
) -> tuple[str, list[tuple[str, float, float]]]:
    """The table, and (target, value, threshold): the target compares from connect.

    From connect is the server's share (what issue 9 is about); from spawn
    adds each client's own start-up (curl ~10 ms, Python ~100 ms), which
    the start-up rows of the bench measure on their own.
    """
    by_key = {o.contender.key: o for o in outcomes}
    curl = by_key.get("curl")
    rows = []
    for outcome in outcomes:
        failed = outcome.failures
        resident = max(outcome.resident) if outcome.resident else None
        rows.append(
            [
                outcome.contender.label,
                spread([s * 1000 for s in outcome.after_connect]),
                _times(outcome.after_connect, curl.after_connect if curl else []),
                spread([s * 1000 for s in outcome.seconds]),
                _times(outcome.seconds, curl.seconds if curl else []),
                str(len(outcome.seconds))
                + (f" ({len(failed)} failed: {_cell(failed[0])})" if failed else ""),
                "unknown (no fincore)" if resident is None else f"{resident / 2**20:.1f} MiB",
            ]
        )
    title = f"First byte of a cold, never-hashed {size / 2**30:g} GiB file"
    header = ["server -> client", "ms from connect, median (min-max)", "x curl"]
    header += ["ms from spawn, median (min-max)", "x curl", "runs", "still cached after drop (max)"]
    text = f"### {title}\n\n" + table(header, rows)
    text += f"\n\nPage cache dropped before each run by {how} (see bench/first_byte.py)."
    ours = by_key.get("getfile")
    ratio = float("nan")
    if ours and curl:
        ratio = median(ours.after_connect) / median(curl.after_connect)
    label = "first byte from connect, cold never-hashed file: getfile / curl"
    verdict_row = [label, f"{ratio:.2f}", f"<= {WANTED_RATIO:g}"]
    verdict_row.append(verdict(ratio, WANTED_RATIO, at_most=True))
    text += "\n\n" + table(["target", "measured", "wanted", ""], [verdict_row])
    return text, [(label, ratio, WANTED_RATIO)]


def _times(values: list[float], base: list[float]) -> str:
    if not values or not base:
        return "-"
    return f"{median(values) / median(base):.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("`", "'").replace("\n", " ")


__all__ = ["Outcome", "Run", "evict", "measure", "report"]
