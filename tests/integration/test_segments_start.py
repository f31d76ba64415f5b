"""How many connections a ``--segments 8`` start costs a server that cannot send ranges.

Each server sits behind a ``tests/support/links.py`` relay whose counter is
the number of TCP connections the server accepted. Before, every slice
asked at once whoever the server was: the book's server saw 10 connections
for one download (8 slices, a getfile request, the book's request) and a
version-1 server 17 (each slice's ``505`` asked again in version 1). Now a
server met for the first time gets slice 0 alone, and its answer decides
for the others (``client.known``).
"""

from __future__ import annotations

import os
from pathlib import Path

from getfile_core.address import Target
from getfile_core.client import Options, fetch, known
from getfile_core.client.segments import MIN_SEGMENTED
from tests.support import (
    assert_one_error_line,
    digest_of,
    ok_head,
    run_cli,
    scripted_server,
    serve_process,
    write_random,
)
from tests.support.links import LinkEmulator

SIZE = MIN_SEGMENTED * 3 + 1234


def test_the_books_server_sees_one_connection_before_its_download(
    legacy_server: int, root: Path, dest: Path
) -> None:
    source = os.urandom(SIZE)
    (root / "big.bin").write_bytes(source)
    with LinkEmulator(legacy_server) as relay:
        url = f"getfile://127.0.0.1:{relay.port}/big.bin"
        done = run_cli("get", "--segments", "8", url, "-o", str(dest))
        stats = relay.stats()
    assert done.returncode == 0, done.stderr
    line = assert_one_error_line(done.stderr)
    assert "cannot send byte ranges (a legacy server)" in line
    assert (dest / "big.bin").read_bytes() == source
    # Slice 0's request (silence), then the book's request at once: no getfile
    # request in between, and no other slice ever connected.
    assert stats.connections == 2, stats


async def test_a_version_1_server_sees_one_connection_before_its_download(dest: Path) -> None:
    body = os.urandom(SIZE)
    asked: list[bytes] = []

    async def version_1(line: bytes, writer) -> None:  # type: ignore[no-untyped-def]
        asked.append(line)
        writer.write(ok_head(body) + body)

    remarks: list[str] = []
    async with scripted_server(version_1) as port, LinkEmulator(port) as relay:
        target = Target("127.0.0.1", relay.port, b"big.bin")
        options = Options(segments=8, on_remark=remarks.append)
        result = await fetch(target, str(dest), options=options)
        stats = relay.stats()
    assert (dest / "big.bin").read_bytes() == body and result.size == len(body)
    assert len(remarks) == 1 and "a version-1 getfile server" in remarks[0], remarks
    # Slice 0's request (505: a range cannot be asked in version 1, so it is not
    # asked again), then the download, in version 1 at once.
    assert stats.connections == 2, stats
    assert len(asked) == 1 and asked[0].startswith(b"\0getfile/1 GET "), asked


def test_a_getfile_server_is_remembered_and_then_asked_on_every_connection_at_once(
    tmp_path: Path, dest: Path
) -> None:
    folder = tmp_path / "served"
    folder.mkdir()
    digest = write_random(folder / "big.bin", SIZE)
    memory = Path(os.environ["XDG_CACHE_HOME"]) / "getfile" / "servers"
    with (
        serve_process(["serve", str(folder), "--port", "0", "-q"]) as server,
        LinkEmulator(server.port) as relay,
    ):
        argv = ["get", "--segments", "4", f"getfile://127.0.0.1:{relay.port}/big.bin"]
        first = run_cli(*argv, "-o", str(dest))
        assert (first.returncode, first.stderr) == (0, "")
        # The answer to slice 0 is on disk for the next command.
        assert f"127.0.0.1 {relay.port}" in memory.read_text().splitlines()
        before = relay.stats().connections
        again = run_cli(*argv, "-o", str(dest), "--overwrite")
        stats = relay.stats()
    assert (again.returncode, again.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest
    assert before == 4 and stats.connections == 8, stats


def test_a_known_server_that_turned_legacy_costs_its_slices_once_then_is_forgotten(
    legacy_server: int, root: Path, dest: Path
) -> None:
    """The memory may be wrong (another server on the port now): it costs at most what it
    saved, once, and is corrected by the first answer."""
    source = os.urandom(SIZE)
    (root / "big.bin").write_bytes(source)
    with LinkEmulator(legacy_server) as relay:
        known.learned("127.0.0.1", relay.port, True, known.default_path())
        url = f"getfile://127.0.0.1:{relay.port}/big.bin"
        wrong = run_cli("get", "--segments", "8", url, "-o", str(dest))
        after_wrong = relay.stats().connections
        right = run_cli("get", "--segments", "8", url, "-o", str(dest), "--overwrite")
        stats = relay.stats()
    assert wrong.returncode == 0 and right.returncode == 0, (wrong.stderr, right.stderr)
    assert (dest / "big.bin").read_bytes() == source
    assert after_wrong == 9, after_wrong  # 8 slices at once, then the book's request
    assert stats.connections - after_wrong == 2, stats
