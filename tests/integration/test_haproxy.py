"""Two `getfile serve` behind a real HAProxy: health checks, and a backend killed mid-transfer.

docs/scaling.md promises that getfile servers scale behind a TCP balancer
because a connection carries one request and the server keeps no session:
when the backend carrying a download dies, the client's own retry resumes
the `.part` through another backend and the whole file is still verified.
This is that promise, with Debian's HAProxy (scripts/test installs it) and
the configuration docs/scaling.md shows, filled with this test's ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    GETFILE,
    MIB,
    PATIENCE,
    digest_of,
    serve_process,
    unused_port,
    wait_until_sync,
    write_random,
)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SCALING_DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def haproxy_config(front: int, backends: list[int], stats: Path) -> str:
    """The `haproxy.cfg` of docs/scaling.md, with this test's ports and a stats socket put in."""
    text = SCALING_DOC.read_text()
    config = text.split("```haproxy\n", 1)[1].split("```", 1)[0]
    config = config.replace("0.0.0.0:50001", f"127.0.0.1:{front}")
    config = config.replace(
        "global\n", f"global\n    stats socket {stats} mode 600 level admin\n", 1
    )
    servers = "".join(
        f"    server s{i} 127.0.0.1:{port} check inter 200ms fall 1 rise 1\n"
        for i, port in enumerate(backends)
    )
    lines = [line for line in config.splitlines(keepends=True) if "    server " not in line]
    return "".join(lines) + servers


def established_on(port: int) -> int:
    """Established TCP connections whose local port is ``port`` (from /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":
                    count += 1
    return count


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[tuple[int, list]]:  # type: ignore[type-arg]
    """Two servers over identical folders, rate-capped so a transfer lasts seconds; HAProxy."""
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is not installed: scripts/test installs Debian's haproxy package")
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        root.mkdir()
    source = tmp_path / "source.bin"
    write_random(source, 12 * MIB)
    for root in roots:
        shutil.copyfile(source, root / "big.bin")
    argv = ["serve", "--port", "0", "--limit-rate", "3M", "--stall-timeout", "5"]
    with (
        serve_process([*argv, str(roots[0])]) as first,
        serve_process([*argv, str(roots[1])]) as second,
    ):
        front = unused_port()
        config = tmp_path / "haproxy.cfg"
        stats = tmp_path / "haproxy.sock"
        config.write_text(haproxy_config(front, [first.port, second.port], stats))
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until_sync(lambda: _listening(front), "haproxy to listen")
            wait_until_sync(lambda: server_states(stats) == ["UP", "UP"], "both backends UP")
            yield front, [first, second], stats
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=PATIENCE)


def server_states(stats: Path) -> list[str]:
    """Each backend server's status (UP, DOWN, …) from HAProxy's stats socket, in order."""
    if not stats.exists():
        return []
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(PATIENCE)
        try:
            sock.connect(str(stats))
        except OSError:
            return []
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    rows = [line.split(",") for line in data.decode().splitlines() if line.startswith("servers,")]
    return [row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")]


def _listening(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    return True
    return False


def test_health_checks_pass_without_touching_files(haproxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Both backends are UP by the PING check alone, a dead one goes DOWN, and no file was read."""
    front, servers, stats = haproxy
    assert not any(" GET " in s.stderr or " LIST " in s.stderr for s in servers)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [*GETFILE, "get", "-q", "-o", str(out), f"getfile://127.0.0.1:{front}/big.bin"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert digest_of(out / "big.bin") == digest_of(tmp_path / "source.bin")
    assert sum(s.stderr.count(" GET ") for s in servers) == 1
    servers[0].proc.send_signal(signal.SIGKILL)
    wait_until_sync(lambda: server_states(stats) == ["DOWN", "UP"], "the killed backend to go DOWN")


def test_backend_killed_mid_transfer_resumes_through_the_other(haproxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    front, servers, _ = haproxy
    out = tmp_path / "out"
    out.mkdir()
    client = subprocess.Popen(
        [*GETFILE, "get", "-o", str(out), f"getfile://127.0.0.1:{front}/big.bin"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        part_files = lambda: [p for p in out.iterdir() if p.name != "big.bin"]  # noqa: E731
        wait_until_sync(
            lambda: any(p.stat().st_size > MIB for p in part_files()), "1 MiB to arrive"
        )
        # The backend carrying the download: the one holding an established connection
        # in ten samples in a row (a health check lasts about a millisecond; the
        # transfer, seconds).
        carriers: list[list[bool]] = []

        def one_carrier_steady() -> bool:
            carriers.append([established_on(s.port) > 0 for s in servers])
            recent = carriers[-10:]
            return len(recent) == 10 and all(r == recent[0] for r in recent) and sum(recent[0]) == 1

        wait_until_sync(one_carrier_steady, "one backend to carry the transfer")
        carrier = servers[carriers[-1].index(True)]
        carrier.proc.send_signal(signal.SIGKILL)
        _, stderr = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=PATIENCE)
    assert client.returncode == 0, stderr
    assert "retrying" in stderr
    assert digest_of(out / "big.bin") == digest_of(tmp_path / "source.bin")
    survivor = next(s for s in servers if s is not carrier)
    assert "big.bin" in survivor.stderr
