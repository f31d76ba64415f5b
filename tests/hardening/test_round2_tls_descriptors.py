"""A crowd of silent TLS connections cannot use up the server's descriptors (issue 10 #3).

The attack as found: 1130 TLS connections that never send a ClientHello
used all 1024 descriptors, because asyncio held them in its handshake
before the server counted them; accept() then failed for everyone, and
asyncio logged a traceback for every failed accept (220,681 of them in 66 s,
even with ``-q``). Here the same crowd meets a real ``getfile serve`` whose
descriptor limit is 1024: the server must keep answering (surplus turned
away at once), serve again once the crowd leaves, and log no traceback.
Measured on the code before the fix (cf76974): the server's 1024
descriptors were all used and it logged 31,148 tracebacks in about 4 s; now
it holds about 270 and turns the other 870 away at once.
"""

from __future__ import annotations

import asyncio
import re
import resource
import socket
import subprocess
from pathlib import Path

from getfile_core.tls import client_context
from tests.support import GETFILE, PROJECT, extended_get, raise_fd_limit, wait_until_sync
from tests.support.certs import make_cert_set

CROWD = 1130
DESCRIPTORS = 1024  # a common default, as in the attack


def limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


def start_tls_server(root: Path, cert: Path, key: Path, log: Path) -> tuple[subprocess.Popen, int]:
    command = [*GETFILE, "serve", str(root), "--host", "127.0.0.1"]
    command += ["--port", "0", "--tls-cert", str(cert), "--tls-key", str(key), "--quiet"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=limit_descriptors,
        )
    ports: list[int] = []

    def announced() -> bool:
        assert proc.poll() is None, f"server exited: {log.read_text()}"
        match = re.search(r"getfiles://127\.0\.0\.1:(\d+)/", log.read_text())
        if match:
            ports.append(int(match[1]))
        return bool(ports)

    wait_until_sync(announced, "the server announces its port", 20)
    return proc, ports[-1]


def fetch_over_tls(port: int, context, timeout: float) -> bytes:  # type: ignore[no-untyped-def]
    """One raw extended GET over TLS; b"" if the server turned us away."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(extended_get(b"hello.txt"))
            data = bytearray()
            while chunk := sock.recv(65536):
                data += chunk
            return bytes(data)
    except (ConnectionError, OSError) as error:
        if isinstance(error, TimeoutError):
            raise AssertionError("the server hung instead of answering or refusing") from error
        return b""


async def test_silent_tls_crowd_leaves_descriptors_and_log_clean(tmp_path: Path) -> None:
    if raise_fd_limit(CROWD + 256) < CROWD + 256:
        raise AssertionError("this test needs more descriptors than the crowd")
    certs = make_cert_set(tmp_path / "certs")
    root = tmp_path / "served"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello, crowd\n")
    log = tmp_path / "serve.log"
    proc, port = start_tls_server(root, certs.good.cert, certs.good.key, log)
    context = client_context(str(certs.trusted_ca))
    crowd: list[asyncio.StreamWriter] = []
    try:
        # One after another, as the attacker did: each is accepted before the next
        # arrives (all at once, most would wait in the kernel's queue instead).
        for _ in range(CROWD):  # they never send a ClientHello
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            crowd.append(writer)
        # Beyond what fits: turned away or served, but at once; a hang fails here.
        answer = await asyncio.to_thread(fetch_over_tls, port, context, 10.0)
        assert answer == b"" or answer.startswith(b"getfile/1 200 ok"), answer[:80]
        for writer in crowd:
            writer.transport.abort()
        crowd = []
        answers: list[bytes] = []

        def served_again() -> bool:
            answers.append(fetch_over_tls(port, context, 10.0))
            return answers[-1] != b""

        await asyncio.to_thread(
            wait_until_sync, served_again, "served again after the crowd left", 15
        )
        assert answers[-1].startswith(b"getfile/1 200 ok")
        assert answers[-1].endswith(b"hello, crowd\n")
        assert proc.poll() is None
    finally:
        for writer in crowd:
            writer.transport.abort()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Too many open files" not in text, text[-2000:]
