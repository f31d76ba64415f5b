"""Hashing cannot hold the server hostage: a SIGTERM ends it within the grace.

A 1 TiB sparse file costs no disk, and hashing it would take minutes (zero
pages hash at memory speed, a few GB/s). One GET starts the hash, the client
hangs up, and the server is told to stop: it must be gone within its grace
and a few seconds, not when the hash would have ended. (Before, the hash ran
on asyncio's default executor, whose threads Python joins at exit.)
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from tests.support import ServerProcess, extended_get

TIB = 1024**4


def test_sigterm_during_a_long_hash_exits_within_the_grace(tmp_path: Path) -> None:
    root = tmp_path / "served"
    root.mkdir()
    with open(root / "huge.bin", "wb") as huge:
        huge.truncate(TIB)
    server = ServerProcess(root, "--grace", "1", "--quiet", log=tmp_path / "serve.log").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(extended_get(b"huge.bin"))
            first = sock.recv(64)
            assert first.startswith(b"getfile/1 102 processing"), first  # the hash runs
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(20)  # the hash alone would take minutes
        except subprocess.TimeoutExpired:
            raise AssertionError("the server did not stop while a hash was running") from None
    finally:
        server.kill()
    assert code == 0
    assert "Traceback" not in server.log_text()
