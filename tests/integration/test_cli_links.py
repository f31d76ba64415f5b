"""The "Real links" flags (issue 9): ``get --retries``, ``get/serve --limit-rate``."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core.server import FileServer, ServerLimits
from tests.support import (
    MIB,
    CuttingProxy,
    LoopThread,
    Plan,
    assert_one_error_line,
    run_cli,
    run_cli_on_terminal,
    serve_process,
)


@pytest.mark.parametrize("command", ["get", "serve"])
@pytest.mark.parametrize(
    ("rate", "words"),
    [("fast", "not a rate"), ("0", "at least 1 byte"), ("-5", "not a rate"), ("2X", "not a rate")],
)
def test_a_bad_rate_is_one_line_exit_2(command: str, rate: str, words: str) -> None:
    where = ["getfile://127.0.0.1:1/f"] if command == "get" else [".", "--port", "0"]
    done = run_cli(command, *where, f"--limit-rate={rate}", timeout=20)
    assert done.returncode == 2 and done.stdout == ""
    line = assert_one_error_line(done.stderr)
    assert "--limit-rate" in line and words in line


def test_negative_retries_are_a_usage_error() -> None:
    done = run_cli("get", "--retries", "-1", "getfile://127.0.0.1:1/f")
    assert done.returncode == 2 and "must be 0 or more" in done.stderr


# ---------------------------------------------------------------- through a resetting relay

SIZE = 2 * MIB + 4321
#: The relay resets the connection after this many bytes, for the first CUTS connections.
EVERY = 768 * 1024
CUTS = 2


def make_relay(root: Path, *, reset: bool) -> Iterator[tuple[CuttingProxy, bytes]]:
    source = os.urandom(SIZE)
    (root / "big.bin").write_bytes(source)
    loop = LoopThread()
    server = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    loop.run(server.start())
    proxy = loop.run(CuttingProxy(server.port_bound).start())
    proxy.plans.extend(Plan(cut_at=EVERY, reset=reset) for _ in range(CUTS))
    try:
        yield proxy, source
    finally:
        loop.run(proxy.close())
        loop.run(server.stop(grace=1))
        loop.close()


@pytest.fixture
def relay(root: Path) -> Iterator[tuple[CuttingProxy, bytes]]:
    """Resets (RST) every EVERY bytes: what the client had not read yet is lost each time."""
    yield from make_relay(root, reset=True)


@pytest.fixture
def closing_relay(root: Path) -> Iterator[tuple[CuttingProxy, bytes]]:
    """Closes (FIN) every EVERY bytes: nothing relayed is lost, so the bytes can be counted."""
    yield from make_relay(root, reset=False)


def big_url(proxy: CuttingProxy) -> str:
    return f"getfile://127.0.0.1:{proxy.port}/big.bin"


def get_big(proxy: CuttingProxy, dest: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_cli("get", *flags, big_url(proxy), "-o", str(dest))


def get_resuming(proxy: CuttingProxy, source: bytes, dest: Path) -> None:
    """A plain get through the relay completes, one retry line per cut."""
    done = get_big(proxy, dest)
    assert done.returncode == 0, done.stderr
    assert_only_retry_lines(done.stderr, CUTS)
    assert (dest / "big.bin").read_bytes() == source


def assert_only_retry_lines(stderr: str, count: int) -> None:
    """Off a terminal too, each retry is one line (a log shows why a download took long)."""
    lines = stderr.splitlines()
    assert len(lines) == count, stderr
    retry = re.compile(r"getfile: big\.bin: retrying in \d+ s \(\d+/10\): .+")
    assert all(retry.fullmatch(line) for line in lines), stderr


def test_quiet_get_prints_no_retry_lines(relay: tuple[CuttingProxy, bytes], dest: Path) -> None:
    proxy, source = relay
    done = get_big(proxy, dest, "-q")
    assert (done.returncode, done.stderr) == (0, "")
    assert (dest / "big.bin").read_bytes() == source


def test_plain_get_through_a_cutting_relay_resumes_instead_of_restarting(
    closing_relay: tuple[CuttingProxy, bytes], dest: Path
) -> None:
    proxy, source = closing_relay
    get_resuming(proxy, source, dest)
    # Each retry resumed from the .part: the file's size and three heads crossed the
    # relay, not a restart each time (which would be SIZE + CUTS * EVERY).
    assert SIZE <= proxy.relayed < SIZE + (CUTS + 1) * 4096, proxy.relayed


def test_plain_get_through_a_resetting_relay_completes_resuming(
    relay: tuple[CuttingProxy, bytes], dest: Path
) -> None:
    proxy, source = relay
    get_resuming(proxy, source, dest)
    # A reset discards what sat unread in the client's socket buffer, so the count
    # varies with load; at most a restart's worth each time.
    assert SIZE <= proxy.relayed <= SIZE + CUTS * EVERY + (CUTS + 1) * 4096, proxy.relayed


def test_each_retry_is_one_line_on_a_terminal(
    relay: tuple[CuttingProxy, bytes], dest: Path
) -> None:
    proxy, source = relay
    code, out, terminal = run_cli_on_terminal("get", big_url(proxy), "-o", str(dest))
    assert (code, out) == (0, ""), terminal
    # One line per cut; the backoff starts again after an attempt that made progress.
    retries = re.findall(r"getfile: big\.bin: retrying in \d+ s \(\d+/10\): \S", terminal)
    assert len(retries) == CUTS, terminal
    assert "Traceback" not in terminal
    assert (dest / "big.bin").read_bytes() == source


def test_retries_0_fails_with_12_and_keeps_the_part(
    relay: tuple[CuttingProxy, bytes], dest: Path
) -> None:
    proxy, source = relay
    done = get_big(proxy, dest, "--retries", "0")
    assert done.returncode == 12
    assert_one_error_line(done.stderr)
    assert not (dest / "big.bin").exists()
    [part] = [p for p in dest.iterdir()]
    kept = part.read_bytes()
    assert 0 < len(kept) < SIZE and source.startswith(kept)


# ---------------------------------------------------------------- rate limits

RATE = "1M"


def test_get_limit_rate_caps_all_downloads_together(root: Path, dest: Path) -> None:
    for name in ("a.bin", "b.bin"):
        (root / name).write_bytes(os.urandom(MIB))
    with serve_process(["serve", str(root), "--port", "0"]) as server:
        began = time.monotonic()
        done = run_cli(
            "get",
            "--limit-rate",
            RATE,
            "-j",
            "2",
            server.url("a.bin"),
            server.url("b.bin"),
            "-o",
            str(dest),
        )
        took = time.monotonic() - began
    assert (done.returncode, done.stderr) == (0, "")
    # 2 MiB at 1 MiB/s shared: at least ~2 s (less the limiter's 0.1 s burst);
    # two separate 1 MiB/s limits would take ~1 s.
    assert took >= 1.7, took
    assert sorted(p.name for p in dest.iterdir()) == ["a.bin", "b.bin"]


def test_serve_limit_rate_caps_each_connection(root: Path, dest: Path) -> None:
    source = os.urandom(2 * MIB)
    (root / "slow.bin").write_bytes(source)
    with serve_process(["serve", str(root), "--port", "0", "--limit-rate", RATE]) as server:
        began = time.monotonic()
        done = run_cli("get", server.url("slow.bin"), "-o", str(dest))
        took = time.monotonic() - began
    assert (done.returncode, done.stderr) == (0, "")
    assert took >= 1.7, took
    assert (dest / "slow.bin").read_bytes() == source
