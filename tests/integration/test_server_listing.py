"""LIST pages cost the page, not the folder; listings at once are bounded."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.protocol import Request, Response, Status, Verb
from getfile_core.server import listing
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import raw_exchange

NAMES = 3000


async def list_page(port: int, after: bytes | None, limit: int = 100) -> Response | tuple:
    request = Request(Verb.LIST, b"many", after=after, limit=limit)
    head, body = await raw_exchange(port, request)
    if head.status is not Status.OK:
        return head
    return head, protocol.decode_listing(body, head.entries or 0)


@pytest.fixture
def many(root: Path) -> Path:
    folder = root / "many"
    folder.mkdir()
    for index in range(NAMES):
        (folder / f"f{index:05d}").touch()
    return folder


async def test_paging_through_a_big_folder_reads_it_once(
    server: FileServer, many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[object] = []
    real_listdir = os.listdir

    def counting_listdir(path: object = ".") -> list[str]:
        if isinstance(path, int):  # the server lists by descriptor; the test by name
            reads.append(path)
        return real_listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(listing.os, "listdir", counting_listdir)
    names: list[bytes] = []
    after = None
    for _ in range(NAMES // 100 + 2):
        head, entries = await list_page(server.port_bound, after)
        names += [entry.name for entry in entries]
        after = head.next_after
        if after is None:
            break
    assert names == sorted(os.fsencode(n) for n in os.listdir(many))
    assert len(reads) == 1, "the folder was read again for a later page"
    (many / "new-file").touch()  # the folder changed: its listing is read afresh
    _, entries = await list_page(server.port_bound, b"f02999")
    assert [e.name for e in entries] == [b"new-file"]


async def test_listings_at_once_are_bounded(
    root: Path, many: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, entered = threading.Event(), threading.Event()
    real_scan = listing.scan

    def held_scan(*args: object) -> object:
        entered.set()
        release.wait(20)
        return real_scan(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(listing, "scan", held_scan)
    limits = ServerLimits(grace=1, max_listings=1, request_timeout=0.5)
    server = FileServer(root, limits=limits)
    await server.start()
    try:
        first = asyncio.ensure_future(list_page(server.port_bound, None))
        assert await asyncio.to_thread(entered.wait, 20), "the first listing never began"
        second = await list_page(server.port_bound, None)
        release.set()
        head, entries = await asyncio.wait_for(first, 20)
    finally:
        release.set()
        await server.stop(grace=1)
    assert isinstance(second, Response) and second.status is Status.BUSY
    assert head.status is Status.OK and len(entries) == 100
