"""Fixtures shared by every test: a served folder and a real server on 127.0.0.1:0.

Fixtures only: the helpers tests import live in ``tests.support``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from getfile_core.server.fileserver import FileServer
from tests.support import LEGACY_PEER, running_server


@pytest.fixture(autouse=True)
def fresh_server_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test meets servers for the first time: no memory of slices (``client.known``)
    or of version-1 servers (``session``) from an earlier test, in this process or in
    ``~/.cache``: a port is reused, and a relay on a version-1 test's old port was taken
    for a version-1 server (a segmented download then fell back to one connection)."""
    from getfile_core.client import known, session

    known.forget_all()
    with session._VERSION_1_LOCK:
        session._VERSION_1_ONLY.clear()
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        yield
    known.forget_all()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A served folder with a few files of known content."""
    served = tmp_path / "served"
    (served / "sub").mkdir(parents=True)
    (served / "hello.txt").write_bytes(b"hello, world\n")
    (served / "empty.bin").write_bytes(b"")
    (served / "sub" / "data.bin").write_bytes(os.urandom(300_000))
    return served


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
async def server(root: Path) -> AsyncIterator[FileServer]:
    """Our server on an ephemeral loopback port, access log kept in ``server.log``."""
    async with running_server(root) as srv:
        yield srv


@pytest.fixture
def legacy_server(root: Path) -> Iterator[int]:
    """The book's server (our rewrite from the note) serving ``root``; yields its port."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-u",
            str(LEGACY_PEER),
            "-mode",
            "server",
            "-host",
            "127.0.0.1",
            "-port",
            "0",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    drain: threading.Thread | None = None
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Server listening on port"), line
        # Keep reading its console so a chatty peer never blocks on a full pipe.
        drain = threading.Thread(target=proc.stdout.read, daemon=True)
        drain.start()
        yield int(line.split()[-1])
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if drain is not None:
            drain.join(timeout=5)  # the pipe hits EOF once the peer is dead
        if proc.stdout is not None:
            proc.stdout.close()
