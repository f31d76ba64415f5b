"""Our client against our server over real loopback sockets.

Servers that misbehave on purpose (lying digests, stalls, extra bytes) are
small scripted peers from ``tests.support``; everything else is the real
``FileServer`` from the ``server`` fixture.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.cli.exit_codes import exit_code_for
from getfile_core.client.api import Progress, fetch, list_folder
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.state import Options
from getfile_core.errors import (
    BusyError,
    ConnectError,
    ForbiddenError,
    IntegrityError,
    InterruptedError_,
    LocalFileError,
    NotFoundError,
    ProtocolError,
    RemoteError,
)
from getfile_core.protocol import Request, Status, Verb
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import (
    MIB,
    PATIENCE,
    digest_bytes,
    digest_of,
    join_transfer_threads,
    ok_head,
    raw_exchange,
    scripted_server,
    target_for,
    wait_until,
    write_random,
)


def assert_no_file(dest: Path, name: str, *, part: bool | None = False) -> None:
    """No file under the final name; ``part`` says whether a ``.part`` must (not) remain."""
    assert not (dest / name).exists()
    if part is not None:
        assert (dest / f"{name}{PART_SUFFIX}").exists() is part


def local(port: int, path: str) -> Target:
    return Target("127.0.0.1", port, path.encode())


# ---------------------------------------------------------------- files of every size


async def test_small_file(server: FileServer, root: Path, dest: Path) -> None:
    result = await fetch(target_for(server, "hello.txt"), str(dest))
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    assert result.path == str(dest / "hello.txt")
    assert result.size == 13 and result.resumed_from == 0 and not result.legacy
    assert result.digest == digest_bytes(b"hello, world\n")
    assert not (dest / ("hello.txt" + PART_SUFFIX)).exists()
    assert (dest / "hello.txt").stat().st_mtime_ns == (root / "hello.txt").stat().st_mtime_ns


async def test_zero_byte_file(server: FileServer, dest: Path) -> None:
    result = await fetch(target_for(server, "empty.bin"), str(dest))
    assert (dest / "empty.bin").read_bytes() == b""
    assert result.size == 0 and result.digest == digest_bytes(b"")
    assert_no_file(dest, "nothing", part=False)


async def test_file_in_a_subfolder_lands_as_its_basename(
    server: FileServer, root: Path, dest: Path
) -> None:
    await fetch(target_for(server, "sub/data.bin"), str(dest))
    assert digest_of(dest / "data.bin") == digest_of(root / "sub" / "data.bin")
    assert sorted(p.name for p in dest.iterdir()) == ["data.bin"]


async def test_empty_remote_path_is_refused_locally(server: FileServer, dest: Path) -> None:
    with pytest.raises(LocalFileError):
        await fetch(target_for(server, ""), str(dest))
    assert list(dest.iterdir()) == []
    assert server.log == []  # refused before connecting


async def test_large_file(server: FileServer, root: Path, dest: Path) -> None:
    expected = write_random(root / "large.bin", 100 * MIB + 12345)
    result = await fetch(target_for(server, "large.bin"), str(dest))
    assert result.digest == expected
    assert (dest / "large.bin").stat().st_size == 100 * MIB + 12345
    assert digest_of(dest / "large.bin") == expected


async def test_many_files_at_once(server: FileServer, root: Path, dest: Path) -> None:
    folder = root / "many"
    folder.mkdir()
    digests = {f"f{i:02d}.bin": write_random(folder / f"f{i:02d}.bin", i * 4099) for i in range(50)}
    results = await asyncio.gather(
        *(fetch(target_for(server, f"many/{name}"), str(dest)) for name in digests)
    )
    assert {Path(r.path).name: r.digest for r in results} == digests
    assert {p.name: digest_of(p) for p in dest.iterdir()} == digests
    assert [r.status for r in server.log].count("ok") == 50
    assert join_transfer_threads() == []


# ---------------------------------------------------------------- resume


async def test_resume_continues_a_truncated_part(
    server: FileServer, root: Path, dest: Path
) -> None:
    expected = write_random(root / "big.bin", 3 * MIB + 7)
    whole = (root / "big.bin").read_bytes()
    (dest / ("big.bin" + PART_SUFFIX)).write_bytes(whole[:1_234_567])
    result = await fetch(target_for(server, "big.bin"), str(dest), resume=True)
    assert result.resumed_from == 1_234_567 and result.size == len(whole)
    assert result.digest == expected and digest_of(dest / "big.bin") == expected
    assert not (dest / ("big.bin" + PART_SUFFIX)).exists()
    assert server.log[-1].sent == len(whole) - 1_234_567


async def test_resume_of_a_complete_part_only_verifies(
    server: FileServer, root: Path, dest: Path
) -> None:
    whole = (root / "sub" / "data.bin").read_bytes()
    (dest / ("data.bin" + PART_SUFFIX)).write_bytes(whole)
    result = await fetch(target_for(server, "sub/data.bin"), str(dest), resume=True)
    assert result.resumed_from == len(whole) and result.digest == digest_bytes(whole)
    assert (dest / "data.bin").read_bytes() == whole
    assert not (dest / ("data.bin" + PART_SUFFIX)).exists()
    assert server.log[-1].sent == 0


async def test_resume_verifies_the_whole_file(server: FileServer, root: Path, dest: Path) -> None:
    write_random(root / "big.bin", 2 * MIB)
    whole = (root / "big.bin").read_bytes()
    corrupt = bytes([whole[0] ^ 0xFF]) + whole[1:1000]  # the kept prefix is wrong
    (dest / ("big.bin" + PART_SUFFIX)).write_bytes(corrupt)
    with pytest.raises(IntegrityError) as caught:
        await fetch(target_for(server, "big.bin"), str(dest), resume=True)
    assert exit_code_for(caught.value) == 7
    assert_no_file(dest, "big.bin", part=False)


async def test_resume_from_beyond_the_end_is_refused(
    server: FileServer, root: Path, dest: Path
) -> None:
    (dest / ("hello.txt" + PART_SUFFIX)).write_bytes(b"x" * 100)
    with pytest.raises(RemoteError) as caught:
        await fetch(target_for(server, "hello.txt"), str(dest), resume=True)
    assert caught.value.status is Status.BAD_OFFSET
    assert_no_file(dest, "hello.txt", part=True)


async def test_leftover_part_without_resume_is_refused(server: FileServer, dest: Path) -> None:
    (dest / ("hello.txt" + PART_SUFFIX)).write_bytes(b"hel")
    with pytest.raises(LocalFileError):
        await fetch(target_for(server, "hello.txt"), str(dest))
    assert (dest / ("hello.txt" + PART_SUFFIX)).read_bytes() == b"hel"
    assert_no_file(dest, "hello.txt", part=True)


# ---------------------------------------------------------------- lying and broken servers


async def test_digest_mismatch_is_an_integrity_error(dest: Path) -> None:
    body = os.urandom(200_000)

    async def liar(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_head(body, digest=digest_bytes(b"something else")) + body)

    async with scripted_server(liar) as port:
        with pytest.raises(IntegrityError) as caught:
            await fetch(local(port, "file.bin"), str(dest))
    assert exit_code_for(caught.value) == 7
    assert_no_file(dest, "file.bin", part=False)


async def test_digest_mismatch_from_our_server_with_a_poisoned_cache(
    server: FileServer, root: Path, dest: Path
) -> None:
    info = os.stat(root / "hello.txt")
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    server.digests._done[key] = digest_bytes(b"not the content")
    with pytest.raises(IntegrityError):
        await fetch(target_for(server, "hello.txt"), str(dest))
    assert_no_file(dest, "hello.txt", part=False)


async def test_extra_bytes_are_a_protocol_error(dest: Path) -> None:
    body = b"exactly this"

    async def chatty(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_head(body) + body + b" and then some")

    async with scripted_server(chatty) as port:
        with pytest.raises(ProtocolError):
            await fetch(local(port, "f.txt"), str(dest))
    assert_no_file(dest, "f.txt", part=False)


async def test_short_body_keeps_the_part_for_resume(dest: Path) -> None:
    body = os.urandom(50_000)

    async def cut(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_head(body) + body[:30_000])

    async with scripted_server(cut) as port:
        with pytest.raises(InterruptedError_) as caught:
            await fetch(local(port, "f.bin"), str(dest), options=Options(retries=0))
    assert exit_code_for(caught.value) == 12 and "--resume" in str(caught.value)
    assert (dest / ("f.bin" + PART_SUFFIX)).read_bytes() == body[:30_000]
    assert_no_file(dest, "f.bin", part=None)


async def test_a_malformed_head_is_a_protocol_error(dest: Path) -> None:
    async def garbage(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n")

    async with scripted_server(garbage) as port:
        with pytest.raises(ProtocolError):
            await fetch(local(port, "f.bin"), str(dest))
    assert list(dest.iterdir()) == []


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("path", "error", "status", "exit_code"),
    [
        ("missing.txt", NotFoundError, Status.NOT_FOUND, 5),
        ("../outside.txt", ForbiddenError, Status.FORBIDDEN, 6),
        ("/etc/passwd", ForbiddenError, Status.FORBIDDEN, 6),
        ("sub", RemoteError, Status.IS_A_DIRECTORY, 5),
    ],
)
async def test_refusals_map_to_errors_and_exit_codes(
    server: FileServer,
    dest: Path,
    path: str,
    error: type[RemoteError],
    status: Status,
    exit_code: int,
) -> None:
    with pytest.raises(error) as caught:
        await fetch(target_for(server, path), str(dest))
    assert caught.value.status is status
    assert exit_code_for(caught.value) == exit_code
    assert str(caught.value).count("\n") == 0 and status.token in str(caught.value)
    assert list(dest.iterdir()) == []
    assert server.log[-1].status == status.token


async def test_busy_when_every_transfer_slot_is_taken(root: Path, dest: Path) -> None:
    write_random(root / "huge.bin", 32 * MIB)
    records: list = []
    server = FileServer(
        root, "127.0.0.1", 0, limits=ServerLimits(max_transfers=1), on_access=records.append
    )
    await server.start()
    try:
        # A client that asks and then never reads holds the only slot.
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
        writer.write(protocol.encode_request(Request(Verb.GET, b"huge.bin")))
        await wait_until(lambda: server.active_transfers == 1, "the slow transfer to start")
        with pytest.raises(BusyError) as caught:
            await fetch(local(server.port_bound, "hello.txt"), str(dest))
        assert exit_code_for(caught.value) == 10 and caught.value.status is Status.BUSY
        assert list(dest.iterdir()) == []
        writer.transport.abort()
        await wait_until(lambda: server.active_transfers == 0, "the slot to be released")
        await fetch(local(server.port_bound, "hello.txt"), str(dest))
        assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    finally:
        await server.stop(grace=1)
    assert "busy" in [r.status for r in records]


# ---------------------------------------------------------------- local files


async def test_existing_file_is_not_overwritten(server: FileServer, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"mine")
    os.utime(dest / "hello.txt", ns=(1, 1))
    with pytest.raises(LocalFileError) as caught:
        await fetch(target_for(server, "hello.txt"), str(dest))
    assert exit_code_for(caught.value) == 8 and "--overwrite" in str(caught.value)
    assert (dest / "hello.txt").read_bytes() == b"mine"
    assert (dest / "hello.txt").stat().st_mtime_ns == 1
    assert sorted(p.name for p in dest.iterdir()) == ["hello.txt"]


async def test_overwrite_replaces_an_existing_file(server: FileServer, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"mine")
    await fetch(target_for(server, "hello.txt"), str(dest), overwrite=True)
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    assert sorted(p.name for p in dest.iterdir()) == ["hello.txt"]


# ---------------------------------------------------------------- cancel and progress


def stalling_script(body: bytes, first: int, release: asyncio.Event):  # type: ignore[no-untyped-def]
    """A server that sends ``first`` bytes of ``body``, then waits for ``release``."""

    async def script(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_head(body) + body[:first])
        await writer.drain()
        await asyncio.wait_for(release.wait(), PATIENCE)
        writer.write(body[first:])

    return script


async def test_cancel_keeps_the_part_and_stops_the_thread(dest: Path) -> None:
    body = os.urandom(8 * MIB)
    release = asyncio.Event()
    snapshots: list[Progress] = []
    started = asyncio.Event()

    def on_progress(progress: Progress) -> None:
        snapshots.append(progress)
        if progress.done > 0:
            started.set()

    async with scripted_server(stalling_script(body, 3 * MIB, release)) as port:
        task = asyncio.create_task(
            fetch(local(port, "big.bin"), str(dest), on_progress=on_progress, interval=0.01)
        )
        await asyncio.wait_for(started.wait(), PATIENCE)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, PATIENCE)
        release.set()
    assert join_transfer_threads() == []
    assert_no_file(dest, "big.bin", part=True)
    kept = (dest / ("big.bin" + PART_SUFFIX)).read_bytes()
    assert 0 < len(kept) <= 3 * MIB and body.startswith(kept)
    assert snapshots[-1].phase == "cancelled"


async def test_progress_grows_and_ends_with_a_final_snapshot(dest: Path) -> None:
    body = os.urandom(6 * MIB)
    release = asyncio.Event()
    snapshots: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        snapshots.append(progress)
        if 0 < progress.done < len(body):
            release.set()  # a mid-transfer snapshot was seen: let the rest flow

    async with scripted_server(stalling_script(body, 2 * MIB, release)) as port:
        result = await fetch(
            local(port, "big.bin"), str(dest), on_progress=on_progress, interval=0.01
        )
    assert result.size == len(body) and digest_of(dest / "big.bin") == digest_bytes(body)
    done = [s.done for s in snapshots]
    assert done == sorted(done), "progress went backwards"
    assert any(0 < d < len(body) for d in done)
    final = snapshots[-1]
    assert (final.phase, final.done, final.total) == ("done", len(body), len(body))
    assert final.fraction == 1.0 and not final.legacy


# ---------------------------------------------------------------- listing


async def test_listing_pages_through_more_than_a_thousand_entries(
    server: FileServer, root: Path
) -> None:
    folder = root / "crowd"
    folder.mkdir()
    names = [f"n{i:05d}" for i in range(2345)]
    for name in names:
        (folder / name).touch()
    entries, cut = await list_folder(target_for(server, "crowd"))
    assert not cut
    assert [e.name.decode() for e in entries] == sorted(names)
    assert [r.kind for r in server.log].count("LIST") == 3  # 1000 + 1000 + 345

    entries, cut = await list_folder(target_for(server, "crowd"), max_entries=1500)
    assert cut and len(entries) == 1500


async def test_listing_pages_with_a_small_limit(server: FileServer, root: Path) -> None:
    folder = root / "crowd"
    folder.mkdir()
    names = sorted(os.fsencode(f"{i:04d}-{'é' if i % 3 else 'x'}") for i in range(1100))
    for name in names:
        (folder / os.fsdecode(name)).touch()
    seen: list[bytes] = []
    after = None
    for _ in range(20):  # 1100 / 97 pages, bounded
        response, body = await raw_exchange(
            server.port_bound, Request(Verb.LIST, b"crowd", after=after, limit=97)
        )
        assert response.status is Status.OK and response.entries is not None
        page = protocol.decode_listing(body, response.entries)
        assert len(page) <= 97
        seen += [e.name for e in page]
        if response.next_after is None:
            break
        assert response.next_after == page[-1].name
        after = response.next_after
    assert seen == names


async def test_listing_kinds_sizes_and_times(
    server: FileServer, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    (root / "link-out").symlink_to(tmp_path / "outside.txt")
    (root / "link-in").symlink_to(root / "hello.txt")
    os.mkfifo(root / "pipe")
    entries, cut = await list_folder(target_for(server, ""))
    by_name = {e.name.decode(): e for e in entries}
    assert not cut
    assert [e.name for e in entries] == sorted(e.name for e in entries)
    assert set(by_name) == {"hello.txt", "empty.bin", "sub", "link-out", "link-in", "pipe"}
    assert (by_name["hello.txt"].kind, by_name["hello.txt"].size) == ("file", 13)
    assert by_name["hello.txt"].mtime_ns == (root / "hello.txt").stat().st_mtime_ns
    assert by_name["sub"].kind == "dir"
    assert by_name["pipe"].kind == "other"
    assert by_name["link-in"].kind == "file"
    assert by_name["link-out"].kind == "other" and by_name["link-out"].size == 0


@pytest.mark.parametrize(
    ("path", "error", "status"),
    [
        ("nowhere", NotFoundError, Status.NOT_FOUND),
        ("hello.txt", RemoteError, Status.NOT_A_DIRECTORY),
        ("..", ForbiddenError, Status.FORBIDDEN),
    ],
)
async def test_listing_refusals(
    server: FileServer, path: str, error: type[RemoteError], status: Status
) -> None:
    with pytest.raises(error) as caught:
        await list_folder(target_for(server, path))
    assert caught.value.status is status


# ---------------------------------------------------------------- graceful stop


async def _read_all(reader: asyncio.StreamReader, limit: int) -> bytes:
    data = bytearray()
    async with asyncio.timeout(PATIENCE):
        while chunk := await reader.read(MIB):
            data += chunk
            assert len(data) <= limit
    return bytes(data)


async def test_stop_lets_a_running_transfer_finish(
    server: FileServer, root: Path, dest: Path
) -> None:
    expected = write_random(root / "huge.bin", 32 * MIB)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
    writer.write(protocol.encode_request(Request(Verb.GET, b"huge.bin")))
    await wait_until(lambda: server.active_transfers == 1, "the transfer to start")
    port = server.port_bound
    stopping = asyncio.create_task(server.stop(grace=PATIENCE))
    await wait_until(lambda: server._stopping, "the stop to begin")
    # New connections are no longer answered while the old transfer runs on.
    with pytest.raises(ConnectError):
        await fetch(local(port, "hello.txt"), str(dest))
    data = await _read_all(reader, 33 * MIB)
    writer.close()
    await asyncio.wait_for(stopping, PATIENCE)
    head, _, body = data.partition(b"\n\n")
    assert protocol.parse_response_head(head).digest == expected
    assert digest_bytes(body) == expected
    assert server.log[-1].status == "ok" and server.log[-1].sent == 32 * MIB


async def test_stop_cuts_a_transfer_that_outlives_the_grace(server: FileServer, root: Path) -> None:
    write_random(root / "huge.bin", 32 * MIB)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port_bound)
    writer.write(protocol.encode_request(Request(Verb.GET, b"huge.bin")))
    await wait_until(lambda: server.active_transfers == 1, "the transfer to start")
    await asyncio.wait_for(server.stop(grace=0.2), PATIENCE)  # the reader never reads
    data = await _read_all(reader, 33 * MIB)
    writer.close()
    assert 0 < len(data) < 32 * MIB
    assert server.active_transfers == 0
    assert "cut at shutdown" in [r.note for r in server.log]
