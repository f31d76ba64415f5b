"""Every spelling of "somewhere else", asked of a real server in both dialects.

The corpus (``tests/data/hostile_paths.txt``) is tried against an in-process
server, where leaks can be counted, and against ``getfile serve`` running as
an unprivileged user (when the tests run as root), where "a file the server
user cannot read" means what it says. Whatever the spelling, the secret next
to the served folder never crosses the wire and the server always answers.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core.errors import ProtocolError
from getfile_core.protocol import MAGIC, Status, decode_listing, encode_path
from getfile_core.server.fileserver import AccessRecord, FileServer
from tests.support import (
    UNPRIVILEGED_UID,
    HostileTree,
    ServerProcess,
    build_hostile_tree,
    exchange,
    extended_get,
    fds_under,
    load_corpus,
    recording_task_failures,
    split_response,
    wait_until,
)

CORPUS = load_corpus()
RAW_TOKEN = re.compile(rb"[!-~]+")


@pytest.fixture(scope="module")
def tree() -> Iterator[HostileTree]:
    made = build_hostile_tree()
    try:
        yield made
    finally:
        shutil.rmtree(made.base, ignore_errors=True)


def probes(tree: HostileTree, entry: bytes) -> list[tuple[str, bytes]]:
    """The requests one entry is tried as: legacy, extended exact, extended raw token."""
    path = tree.expand(entry)
    tries = [("legacy", path + b"\n")]
    try:
        tries.append(("extended", extended_get(path)))
    except ProtocolError:  # longer than a request may be: send it anyway, the server must cope
        tries.append(("extended", MAGIC + b"1 GET " + encode_path(path) + b"\n"))
    if RAW_TOKEN.fullmatch(path):
        tries.append(("extended-raw", MAGIC + b"1 GET " + path + b"\n"))
    if len(path) <= 4096:
        tries.append(("list", MAGIC + b"1 LIST " + encode_path(path) + b"\n"))
    return tries


def inside_names(tree: HostileTree) -> set[bytes]:
    """Every name a listing may show: those of the folders inside the root."""
    folders = [tree.root, tree.root / "sub", tree.root / "folder"]
    return {os.fsencode(name) for folder in folders for name in os.listdir(folder)}


def check_refused(tree: HostileTree, dialect: str, request: bytes, answer: bytes) -> None:
    """The one rule for every corpus entry: refused, in the dialect's way, and no secret.

    A listing is the exception: ``.``, ``sub/`` or ``{ROOT}`` are folders
    inside the root and may be listed, but only ever with names from inside.
    """
    where = f"{dialect} {request[:120]!r}"
    assert tree.marker not in answer, f"secret leaked for {where}"
    if dialect == "list":
        response, body = split_response(answer)
        assert response.status is not Status.SERVER_ERROR, f"server error for {where}"
        if response.status is Status.OK:
            assert response.entries is not None
            names = {entry.name for entry in decode_listing(body, response.entries)}
            assert names <= inside_names(tree), f"listed outside names for {where}: {names}"
        return
    if dialect == "legacy" and not request.startswith(b"\x00"):
        assert answer == b"", f"legacy request got bytes: {where}: {answer[:80]!r}"
        return
    response, body = split_response(answer)
    assert response.status is not Status.OK, f"served: {where}"
    assert response.status is not Status.SERVER_ERROR, f"server error for {where}"
    assert body == b"", f"a refusal carried a body: {where}"


async def run_corpus(tree: HostileTree, port: int) -> int:
    sent = 0
    for _line, entry in CORPUS:
        for dialect, request in probes(tree, entry):
            answer = await asyncio.to_thread(exchange, port, [request], "half-close", 10.0)
            check_refused(tree, dialect, request, answer)
            sent += 1
    return sent


def test_corpus_is_large_and_covers_every_spelling() -> None:
    entries = [entry for _line, entry in CORPUS]
    assert len(entries) >= 300
    assert len(set(entries)) == len(entries)

    def has(pattern: bytes) -> bool:
        return any(pattern in e for e in entries)

    for needle in (
        b"..",
        b"%2e%2e",
        b"\xc0\xae",
        b"\\",
        b"/etc/passwd",
        b"~",
        b"\x00",
        b"\xff",
        b"{ROOT}",
        b"link_out",
        b"loop_a",
        b"hardlink_secret",
        b"fifo",
        b"sock",
        b"zero_device",
        b"folder",
    ):
        assert has(needle), needle
    assert max(len(e) for e in entries) > 16 * 1024
    assert any(len(e) > 255 and b"/" not in e for e in entries)


async def test_in_process_server_refuses_the_whole_corpus(tree: HostileTree) -> None:
    records: list[AccessRecord] = []
    with recording_task_failures() as failures:
        server = FileServer(tree.root, "127.0.0.1", 0, on_access=records.append)
        await server.start()
        try:
            sent = await run_corpus(tree, server.port_bound)
            await wait_until(lambda: server.connections == 0, "all connections closed", 10)
            # Still serving: a plain request after a thousand hostile ones.
            answer = await asyncio.to_thread(
                exchange, server.port_bound, [extended_get(b"hello.txt")]
            )
            response, body = split_response(answer)
            assert response.status is Status.OK and body == b"hello from inside\n"
        finally:
            await server.stop(grace=1)
    assert sent >= 2 * len(CORPUS)
    assert failures.errors == []
    assert fds_under(tree.base) == [], "the server left files of the tree open"
    served = [r for r in records if r.status == "ok" and r.kind != "LIST"]
    assert len(served) == 1  # the plain request, nothing else
    assert len(records) == sent + 1


async def test_unprivileged_server_process_refuses_the_whole_corpus(
    tree: HostileTree, tmp_path: Path
) -> None:
    """``getfile serve`` as it would run in production: its own process, no root."""
    as_uid = UNPRIVILEGED_UID if os.geteuid() == 0 else None
    server = ServerProcess(tree.root, "--quiet", as_uid=as_uid, log=tmp_path / "serve.log")
    server.start()
    try:
        if as_uid is not None:
            status = Path(f"/proc/{server.pid}/status").read_text()
            assert re.search(rf"^Uid:\s+{as_uid}\s+{as_uid}\s", status, re.MULTILINE), status
        sent = await run_corpus(tree, server.port)
        assert server.alive()
        answer = await asyncio.to_thread(exchange, server.port, [extended_get(b"unreadable.bin")])
        response, _ = split_response(answer)
        assert response.status is Status.FORBIDDEN  # the server user cannot read it
    finally:
        server.stop()
    assert sent >= 2 * len(CORPUS)
    assert "Traceback" not in server.log_text()


FIXTURE_STATUS = {
    b"link_out": Status.FORBIDDEN,
    b"link_out_abs": Status.FORBIDDEN,
    b"chain_out": Status.FORBIDDEN,
    b"link_dir_out/secret.txt": Status.FORBIDDEN,
    b"link_root/etc/passwd": Status.FORBIDDEN,
    b"link_zero": Status.FORBIDDEN,
    b"sub/link_up/link_out": Status.FORBIDDEN,
    b"loop_a": Status.FORBIDDEN,
    b"self_loop": Status.FORBIDDEN,
    b"hardlink_secret": Status.FORBIDDEN,
    b"sub/hardlink_secret2": Status.FORBIDDEN,
    b"fifo": Status.FORBIDDEN,
    b"sock": Status.FORBIDDEN,
    b"folder": Status.IS_A_DIRECTORY,
    b"sub/link_up": Status.IS_A_DIRECTORY,  # the root itself, reached from inside
}


async def test_each_fixture_is_refused_for_its_own_reason(tree: HostileTree) -> None:
    expected = dict(FIXTURE_STATUS)
    for name in tree.specials:
        expected.setdefault(name.encode(), Status.FORBIDDEN)
    server = FileServer(tree.root, "127.0.0.1", 0, on_access=None)
    await server.start()
    try:
        for path, status in expected.items():
            answer = await asyncio.to_thread(exchange, server.port_bound, [extended_get(path)])
            response, _ = split_response(answer)
            assert response.status is status, (path, response)
            assert tree.marker not in answer
        # Refusing the FIFO did not leave it open: no reader, so a writer cannot open it.
        with pytest.raises(OSError) as error:
            os.open(tree.root / "fifo", os.O_WRONLY | os.O_NONBLOCK)
        assert error.value.errno == errno.ENXIO
        # What a root-run server may legitimately do: root reads a mode-000 file.
        answer = await asyncio.to_thread(
            exchange, server.port_bound, [extended_get(b"unreadable.bin")]
        )
        response, body = split_response(answer)
        if os.geteuid() == 0:
            assert response.status is Status.OK and body == b"only the owner may read this\n"
        else:
            assert response.status is Status.FORBIDDEN
    finally:
        await server.stop(grace=1)


async def test_hard_links_are_served_only_when_allowed_explicitly(tree: HostileTree) -> None:
    """A hard link is the outside file under an inside name; only an opt-in serves it."""
    server = FileServer(tree.root, "127.0.0.1", 0, on_access=None, allow_hardlinks=True)
    await server.start()
    try:
        answer = await asyncio.to_thread(
            exchange, server.port_bound, [extended_get(b"hardlink_secret")]
        )
        response, body = split_response(answer)
        assert response.status is Status.OK and tree.marker in body
        legacy = await asyncio.to_thread(exchange, server.port_bound, [b"hardlink_secret\n"])
        assert tree.marker in legacy
    finally:
        await server.stop(grace=1)


def swap_folder_with_link(folder: Path, outside: Path, stop: threading.Event) -> int:
    """Replace a folder inside the root by a symlink out of it and back, until told to stop."""
    away = folder.with_name(folder.name + ".away")
    flips = 0
    while not stop.is_set() and flips < 1_000_000:
        os.rename(folder, away)
        os.symlink(outside, folder)
        os.unlink(folder)
        os.rename(away, folder)
        flips += 1
    return flips


def hammer(port: int, path: bytes, count: int) -> list[bytes]:
    return [exchange(port, [extended_get(path)]) for _ in range(count)]


async def test_a_folder_swapped_for_a_symlink_mid_request_never_leaks(tmp_path: Path) -> None:
    """The check-then-open race: the path is resolved while ``racy`` is a real folder and
    opened after it became a symlink out. Only the check on the open descriptor stops it."""
    root, outside = tmp_path / "served", tmp_path / "outside"
    (root / "racy").mkdir(parents=True)
    outside.mkdir()
    (root / "racy" / "secret.txt").write_bytes(b"decoy inside\n")
    (outside / "secret.txt").write_bytes(b"RACE-SECRET\n")
    server = FileServer(root, "127.0.0.1", 0, on_access=None)
    await server.start()
    stop = threading.Event()
    flipper = asyncio.ensure_future(
        asyncio.to_thread(swap_folder_with_link, root / "racy", outside, stop)
    )
    try:
        answers = await asyncio.to_thread(hammer, server.port_bound, b"racy/secret.txt", 2000)
    finally:
        stop.set()
        flips = await flipper
        await server.stop(grace=1)
    statuses = Counter()
    for answer in answers:
        assert b"RACE-SECRET" not in answer
        response, body = split_response(answer)
        statuses[response.status] += 1
        assert response.status in (Status.OK, Status.FORBIDDEN, Status.NOT_FOUND), response
        if response.status is Status.OK:
            assert body == b"decoy inside\n"
    assert flips > 0 and len(statuses) >= 2, statuses  # the race did happen
