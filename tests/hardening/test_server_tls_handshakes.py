"""TLS handshakes are connections like any other: counted, bounded, and quiet in the log.

asyncio used to run the handshake before the handler counted the
connection, with its own 60 s timeout: silent TLS connections escaped
``--max-connections`` and ``--request-timeout``. Now the TCP connection is
counted first and the handshake gets ``request_timeout``; failures are one
log line per cause per interval.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client import Options
from getfile_core.client.api import fetch
from getfile_core.server.access import AccessRecord, RepeatFilter
from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.tls import client_context, server_context
from tests.support import CertSet, make_cert_set, wait_until

SILENT = 40


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(tmp_path_factory.mktemp("certs"))


async def test_silent_tls_connections_are_counted_cut_and_logged_once(
    root: Path, dest: Path, certs: CertSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    records: list[AccessRecord] = []
    context = server_context(str(certs.good.cert), str(certs.good.key))
    limits = ServerLimits(grace=1, request_timeout=1.0, max_connections=SILENT + 8)
    server = FileServer(root, limits=limits, ssl_context=context, on_access=records.append)
    await server.start()
    silent: list[socket.socket] = []
    try:
        for _ in range(SILENT):
            silent.append(socket.create_connection(("127.0.0.1", server.port_bound), timeout=10))
        # Counted as connections while their handshake is pending.
        await wait_until(lambda: server.connections == SILENT, "silent ones counted", 10)
        # A real client still gets through meanwhile.
        target = Target("127.0.0.1", server.port_bound, b"hello.txt", tls=True)
        options = Options(ssl_context=client_context(str(certs.trusted_ca)), timeout=5)
        await asyncio.wait_for(fetch(target, str(dest), options=options), 20)
        assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
        # And the silent ones are cut after request_timeout, not asyncio's 60 s
        # (the wait fails after 15 s).
        await wait_until(lambda: server.connections == 0, "silent ones cut", 15)
    finally:
        for sock in silent:
            sock.close()
        await server.stop(grace=1)
    failures = [r for r in records if r.kind == "TLS"]
    assert len(failures) == 1, failures
    assert failures[0].note.startswith("handshake timed out")
    assert [r.path for r in records if r.kind == "GET"] == ["hello.txt"]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_repeat_filter_folds_a_flood_into_one_line_per_interval() -> None:
    folded = RepeatFilter(interval=10)
    assert folded.admit("timeout", now=0) == 0
    assert [folded.admit("timeout", now=t) for t in (1, 2, 3)] == [None, None, None]
    assert folded.admit("reset", now=3) == 0  # another cause has its own line
    assert folded.admit("timeout", now=11) == 3


async def test_a_flood_of_broken_handshakes_is_one_line_per_cause(
    root: Path, certs: CertSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    records: list[AccessRecord] = []
    context = server_context(str(certs.good.cert), str(certs.good.key))
    server = FileServer(
        root, limits=ServerLimits(grace=1), ssl_context=context, on_access=records.append
    )
    await server.start()
    try:
        for _ in range(SILENT):  # plain-text requests to a TLS port: not a ClientHello
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
            writer.write(b"\x00getfile/1 GET hello.txt\n")
            await asyncio.wait_for(reader.read(), 10)  # the server closes on us
            writer.close()
        await wait_until(lambda: server.connections == 0, "all closed", 10)
    finally:
        await server.stop(grace=1)
    causes = [r.note for r in records]
    assert len(causes) == 1 and causes[0].startswith("TLS error"), causes
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
