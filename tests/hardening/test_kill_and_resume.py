"""SIGKILL the server in the middle of a 100 MiB download; restart it; ``--resume`` finishes.

The kill must land mid-way every time, so the transfer is paced by a proxy
that relays the first 40 MiB and then holds: the test waits until the
``.part`` holds most of them (a size, not a time), then kills the server
while it still has 60 MiB to send.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from getfile_core.client.names import PART_SUFFIX
from tests.support import (
    GETFILE,
    MIB,
    PROJECT,
    CuttingProxy,
    LoopThread,
    Plan,
    ServerProcess,
    digest_of,
    wait_until_sync,
    write_random,
)

SIZE = 100 * MIB
HOLD_AT = 40 * MIB


def getfile(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*GETFILE, *argv],
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_mid_transfer_then_resume_matches_the_source(tmp_path: Path) -> None:
    root, dest = tmp_path / "served", tmp_path / "downloads"
    root.mkdir()
    dest.mkdir()
    source_digest = write_random(root / "big.bin", SIZE)
    part, final = dest / ("big.bin" + PART_SUFFIX), dest / "big.bin"

    server = ServerProcess(root, "--quiet", log=tmp_path / "serve.log").start()
    loop = LoopThread()
    client = None
    try:
        proxy = loop.run(CuttingProxy(server.port).start())
        proxy.plans.append(Plan(hold_at=HOLD_AT))
        url = f"getfile://127.0.0.1:{proxy.port}/big.bin"
        # --retries 0: this is the by-hand path; test_client_retries covers retrying.
        client = getfile("get", "--retries", "0", url, "-o", str(dest), "-q")
        wait_until_sync(
            lambda: (
                loop.call(proxy.holding.is_set)
                and part.exists()
                and part.stat().st_size >= HOLD_AT - 2 * MIB
            ),
            "the proxy holds at 40 MiB and the .part has most of them",
            60,
        )
        assert client.poll() is None

        server.kill()  # SIGKILL: no goodbye, 60 MiB unsent
        assert server.proc is not None and server.proc.returncode == -9
        loop.call(proxy.release)  # relay whatever the dead server's socket still had, then EOF
        _, err = client.communicate(timeout=60)
        message = err.decode()
        assert client.returncode == 12, message  # interrupted, .part kept
        assert len(message.strip().splitlines()) == 1 and "--resume" in message, message
        assert not final.exists()
        kept = part.stat().st_size
        assert HOLD_AT - 2 * MIB <= kept < SIZE

        # Start it again, on the same port, and resume straight from it.
        server = ServerProcess(
            root, "--quiet", port=server.port, log=tmp_path / "serve-again.log"
        ).start()
        url = f"getfile://127.0.0.1:{server.port}/big.bin"
        resume = getfile("get", "--resume", url, "-o", str(dest), "-q")
        _, err = resume.communicate(timeout=120)
        assert resume.returncode == 0, err.decode()
        assert not part.exists()
        assert digest_of(final) == source_digest
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait(10)
        server.kill()
        loop.close()
