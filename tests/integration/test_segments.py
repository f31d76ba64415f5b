"""``get --segments N`` and ``get --mirror URL`` (issue 13) through the link emulator.

Every download here crosses ``tests/support/links.py`` relays, so the
relays' counters say how many connections were made and which source
carried how many bytes. Files are a few MiB, links a few MiB/s: a bug that
serialises the connections, or never gives work to a mirror, shows within
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client import Options, fetch, known, slices
from getfile_core.client.segments import MIN_SEGMENTED
from getfile_core.errors import GetfileError, UnauthorizedError
from getfile_core.protocol import _wire as wire
from tests.support import (
    GETFILE,
    MIB,
    PATIENCE,
    assert_one_error_line,
    digest_bytes,
    digest_of,
    ok_head,
    run_cli,
    running_server,
    scripted_server,
    serve_process,
    wait_until,
    wait_until_sync,
    write_random,
)
from tests.support.links import KiB, Link, LinkEmulator

SIZE = 12 * MIB + 4321
#: A first server slow enough (3 s for SIZE) that a mirror is always checked before the end.
SLOW_FIRST = Link(rate=4 * MIB)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    """A getfile server (a child process) with one random file; yields (port, file, digest)."""
    folder = tmp_path / "served"
    folder.mkdir()
    digest = write_random(folder / "big.bin", SIZE)
    with serve_process(["serve", str(folder), "--port", "0", "-q"]) as server:
        yield server.port, folder / "big.bin", digest


def url(relay: LinkEmulator, name: str = "big.bin") -> str:
    return f"getfile://127.0.0.1:{relay.port}/{name}"


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name != "big.bin")


def test_segments_complete_identical_over_several_connections(
    served: tuple[int, Path, str], dest: Path
) -> None:
    port, _, digest = served
    # A window-bound path (10 ms each way, 256 KiB window): one connection
    # moves at most 12.8 MiB/s, so the ranges really run side by side.
    with LinkEmulator(port, Link(delay=0.01, window=256 * KiB)) as relay:
        done = run_cli("get", "--segments", "4", url(relay), "-o", str(dest), timeout=60)
        stats = relay.stats()
    assert (done.returncode, done.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest
    assert leftovers(dest) == []  # no .part, no ranges record
    # One connection per segment, and none for a head alone: each asked for
    # its slice at once. (4 pieces of 3 MiB, under MIN_SPLIT: no stealing.)
    assert stats.connections == 4, stats
    # Ranges, not copies: every connection asked for exactly its piece, so no
    # byte crossed twice (beyond the file: 4 heads and trailers).
    assert SIZE <= stats.bytes_down < SIZE + 4 * KiB, stats


def test_a_small_file_is_carried_by_one_connection(tmp_path: Path, dest: Path) -> None:
    """Under ``MIN_SEGMENTED`` no slice but the first has bytes (the client's floor)."""
    folder = tmp_path / "served"
    folder.mkdir()
    digest = write_random(folder / "small.bin", MIN_SEGMENTED - 1)
    with (
        serve_process(["serve", str(folder), "--port", "0", "-q"]) as server,
        LinkEmulator(server.port) as relay,
    ):
        argv = ["get", "--segments", "8", url(relay, "small.bin"), "-o", str(dest)]
        done = run_cli(*argv, timeout=60)
        first = relay.stats()
        again = run_cli(*argv, "--overwrite", timeout=60)
        second = relay.stats()
    assert (done.returncode, done.stderr) == (0, "")
    assert (again.returncode, again.stderr) == (0, "")
    assert digest_of(dest / "small.bin") == digest
    # A server met for the first time: slice 0 asked alone, and its head
    # (a file under two floors) said no other slice has a byte.
    assert first.connections == 1, first
    assert MIN_SEGMENTED - 1 <= first.bytes_down < MIN_SEGMENTED + KiB, first
    # Known now: eight connections asked at once (nobody knew the size); slice 0
    # brought the whole file, the seven others an empty answer: no byte twice.
    assert second.connections - first.connections == 8, second
    down = second.bytes_down - first.bytes_down
    assert MIN_SEGMENTED - 1 <= down < MIN_SEGMENTED + 8 * KiB, second  # + the heads
    assert sorted(p.name for p in dest.iterdir()) == ["small.bin"]  # no .part, no record


def test_a_reset_segment_is_retried_and_the_file_completes(
    served: tuple[int, Path, str], dest: Path
) -> None:
    port, _, digest = served
    # Every connection is reset after 2 MiB: each of the 4 ranges (3 MiB) is cut once.
    link = Link(reset_every=2 * MIB)
    with LinkEmulator(port, link) as relay:
        done = run_cli("get", "--segments", "4", url(relay), "-o", str(dest), timeout=90)
        stats = relay.stats()
    assert done.returncode == 0, done.stderr
    assert digest_of(dest / "big.bin") == digest
    assert stats.resets >= 1, stats
    lines = done.stderr.strip().splitlines()
    assert lines and all("retrying in" in line for line in lines), lines
    assert leftovers(dest) == []


async def test_a_server_from_before_slices_is_asked_the_old_way_without_a_word(
    root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-2 server that does not know ``slice`` refuses it (400): today's start, silently.

    The server here parses requests as one from before slices did (it knows
    ``offset`` and ``length`` only), so every slice request is a bad request.
    """
    monkeypatch.setitem(wire._GET_PARAMS, 2, {b"offset", b"length"})
    data = os.urandom(SIZE)
    (root / "big.bin").write_bytes(data)
    remarks: list[str] = []
    async with (
        running_server(root) as server,
        LinkEmulator(server.port_bound, Link(delay=0.005)) as relay,
    ):
        target = Target("127.0.0.1", relay.port, b"big.bin")
        options = Options(segments=4, on_remark=remarks.append)
        result = await fetch(target, str(dest), options=options)
        stats = relay.stats()
    assert (dest / "big.bin").read_bytes() == data
    assert result.digest == digest_bytes(data)
    assert remarks == []  # nothing said: the old start works, only a round trip later
    # A server met for the first time: slice 0 asked alone and was refused, so no
    # other slice was asked; then the old start: the whole file, then 3 ranges.
    assert stats.connections == 5, stats
    refused = [r for r in server.log if r.status == "bad-request"]  # type: ignore[attr-defined]
    assert len(refused) == 1, server.log  # type: ignore[attr-defined]
    assert not known.answers_slices("127.0.0.1", target.port, None)


async def test_a_cancel_while_every_slice_awaits_its_head_ends_every_connection(
    dest: Path,
) -> None:
    """A server that reads the slice requests and never answers; the download is cancelled."""
    heard: list[bytes] = []
    release = asyncio.Event()

    async def silent(line: bytes, writer) -> None:  # type: ignore[no-untyped-def]
        heard.append(line)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), PATIENCE)

    async with scripted_server(silent, version_2=True) as port:
        known.learned("127.0.0.1", port, True, None)  # a server that answered slices before
        target = Target("127.0.0.1", port, b"big.bin")
        task = asyncio.ensure_future(fetch(target, str(dest), options=Options(segments=4)))
        await wait_until(lambda: len(heard) == 4, "the four slice requests", 10)
        assert all(b" slice=" in line for line in heard), heard
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Ended by the cancel, while the server still holds every connection.
        await wait_until(
            lambda: not [t for t in threading.enumerate() if t.name.startswith("getfile-segment")],
            "every slice's thread to end",
            10,
        )
        release.set()
    assert list(dest.iterdir()) == []  # not even a .part: no head ever came


async def test_every_slice_proves_the_token_and_a_wrong_one_is_refused_once(
    root: Path, dest: Path
) -> None:
    data = os.urandom(SIZE)
    (root / "big.bin").write_bytes(data)
    async with running_server(root, token=b"sesame") as server:
        target = Target("127.0.0.1", server.port_bound, b"big.bin")
        result = await fetch(target, str(dest), options=Options(segments=4, token=b"sesame"))
        assert (dest / "big.bin").read_bytes() == data and result.digest == digest_bytes(data)
        assert [r.status for r in server.log] == ["ok"] * 4  # type: ignore[attr-defined]
        (dest / "big.bin").unlink()
        with pytest.raises(UnauthorizedError, match="wrong token"):
            await fetch(target, str(dest), options=Options(segments=4, token=b"open up"))
    assert list(dest.iterdir()) == []


async def test_a_bug_in_one_slices_connection_ends_the_download_by_its_name(
    root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a hang: the slice's piece is held until its connection says how it went."""
    (root / "big.bin").write_bytes(os.urandom(SIZE))
    real = slices.open_slice

    def broken(target, options, sub, piece):  # type: ignore[no-untyped-def]
        if piece.index == 2:
            raise RuntimeError("a bug")
        return real(target, options, sub, piece)

    monkeypatch.setattr(slices, "open_slice", broken)
    async with running_server(root) as server:
        target = Target("127.0.0.1", server.port_bound, b"big.bin")
        with pytest.raises(GetfileError, match="connection 2: RuntimeError: a bug"):
            await asyncio.wait_for(fetch(target, str(dest), options=Options(segments=4)), PATIENCE)
    # No file; what the other connections brought may stay for --resume.
    assert {p.name for p in dest.iterdir()} <= {
        "big.bin.getfile-part",
        "big.bin.getfile-part.ranges",
    }


def test_a_legacy_server_falls_back_to_one_connection_with_one_line(
    legacy_server: int, root: Path, dest: Path
) -> None:
    source = os.urandom(MIN_SEGMENTED + 1000)
    (root / "big.bin").write_bytes(source)
    done = run_cli(
        "get", "--segments", "4", f"getfile://127.0.0.1:{legacy_server}/big.bin", "-o", str(dest)
    )
    assert done.returncode == 0, done.stderr
    line = assert_one_error_line(done.stderr)
    assert "cannot send byte ranges (a legacy server)" in line
    assert "one connection" in line
    assert (dest / "big.bin").read_bytes() == source


async def test_a_version_1_server_falls_back_to_one_connection_with_one_remark(
    dest: Path,
) -> None:
    body = os.urandom(MIN_SEGMENTED + 1000)
    requests: list[bytes] = []

    async def version_1(line: bytes, writer) -> None:  # type: ignore[no-untyped-def]
        requests.append(line)
        writer.write(ok_head(body) + body)

    remarks: list[str] = []
    async with scripted_server(version_1) as port:
        target = Target("127.0.0.1", port, b"big.bin")
        options = Options(segments=4, on_remark=remarks.append)
        result = await fetch(target, str(dest), options=options)
    assert (dest / "big.bin").read_bytes() == body
    assert result.size == len(body)
    assert len(remarks) == 1 and "a version-1 getfile server" in remarks[0], remarks
    assert all(b"length=" not in line for line in requests)


def test_ranges_from_a_server_that_cannot_send_them_are_refused_clearly(
    legacy_server: int, root: Path, dest: Path
) -> None:
    """A ranged .part cannot be continued by one connection from the start: say so."""
    (root / "big.bin").write_bytes(os.urandom(MIN_SEGMENTED + 1000))
    (dest / "big.bin.getfile-part").write_bytes(b"\0" * 100)
    (dest / "big.bin.getfile-part.ranges").write_bytes(b"getfile-ranges 1\nsize 100\nmtime -\n")
    done = run_cli(
        "get", "--resume", f"getfile://127.0.0.1:{legacy_server}/big.bin", "-o", str(dest)
    )
    assert done.returncode == 8
    line = assert_one_error_line(done.stderr)
    assert "cannot send ranges" in line and "--overwrite" in line


# ---------------------------------------------------------------- mirrors


def test_two_mirrors_both_carry_the_file_and_the_faster_carries_more(
    served: tuple[int, Path, str], dest: Path
) -> None:
    port, _, digest = served
    fast, slow = Link(rate=4 * MIB), Link(rate=1 * MIB)
    with LinkEmulator(port, fast) as first, LinkEmulator(port, slow) as second:
        done = run_cli("get", url(first), "--mirror", url(second), "-o", str(dest), timeout=90)
        one, two = first.stats(), second.stats()
    assert (done.returncode, done.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest
    assert two.bytes_down >= 512 * KiB, (one, two)  # the mirror did real work
    assert one.bytes_down > 2 * two.bytes_down, (one, two)  # stealing favoured the fast one
    assert one.bytes_down + two.bytes_down < SIZE + 256 * KiB, (one, two)


def test_a_mirror_with_a_different_file_is_dropped_with_one_line(
    served: tuple[int, Path, str], tmp_path: Path, dest: Path
) -> None:
    port, _, digest = served
    other = tmp_path / "other"
    other.mkdir()
    write_random(other / "big.bin", SIZE)  # same name, same size, other bytes
    with (
        serve_process(["serve", str(other), "--port", "0", "-q"]) as liar,
        LinkEmulator(port, SLOW_FIRST) as first,
        LinkEmulator(liar.port) as second,
    ):
        done = run_cli("get", url(first), "--mirror", url(second), "-o", str(dest), timeout=60)
        written_by_liar, label = second.stats().bytes_down, f"127.0.0.1:{second.port}"
    assert done.returncode == 0, done.stderr
    line = assert_one_error_line(done.stderr)
    assert f"mirror {label}: different file (digest blake3:" in line
    assert line.endswith("not used")
    assert digest_of(dest / "big.bin") == digest
    assert written_by_liar < 64 * KiB  # heads only: no byte of its file was fetched


def test_a_mirror_of_another_size_is_dropped_with_one_line(
    served: tuple[int, Path, str], tmp_path: Path, dest: Path
) -> None:
    port, _, digest = served
    other = tmp_path / "other"
    other.mkdir()
    write_random(other / "big.bin", SIZE - 1)
    with (
        serve_process(["serve", str(other), "--port", "0", "-q"]) as liar,
        LinkEmulator(port, SLOW_FIRST) as first,
    ):
        done = run_cli(
            "get",
            url(first),
            "--mirror",
            f"getfile://127.0.0.1:{liar.port}/big.bin",
            "-o",
            str(dest),
        )
    assert done.returncode == 0, done.stderr
    line = assert_one_error_line(done.stderr)
    assert f"different file (size {SIZE - 1}, not {SIZE}), not used" in line
    assert digest_of(dest / "big.bin") == digest


def test_a_mirror_killed_mid_way_has_its_ranges_taken_over(
    served: tuple[int, Path, str], tmp_path: Path, dest: Path
) -> None:
    port, source, digest = served
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "big.bin").write_bytes(source.read_bytes())
    link = Link(rate=1 * MIB)
    with (
        serve_process(["serve", str(copy), "--port", "0", "-q"]) as mirror,
        LinkEmulator(port, link) as first,
        LinkEmulator(mirror.port, link) as second,
    ):
        argv = [*GETFILE, "get", url(first), "--segments", "4"]
        argv += ["--mirror", url(second), "--retries", "2", "-o", str(dest)]
        label = f"127.0.0.1:{second.port}"
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            wait_until_sync(
                lambda: second.stats().bytes_down >= MIB or proc.poll() is not None,
                "the mirror carrying 1 MiB",
                30,
            )
            assert proc.poll() is None, proc.communicate()
            # Mid-way: the mirror and its link vanish (connections reset, new
            # ones refused), its ranges half done.
            mirror.kill()
            second.__exit__(None, None, None)
            _, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert proc.returncode == 0, err
    assert digest_of(dest / "big.bin") == digest
    assert leftovers(dest) == []
    lines = err.decode().strip().splitlines()
    # Retries name the mirror; if they ran out before the end, one line drops it.
    assert lines and all(label in line for line in lines), lines


def test_a_server_with_fewer_slots_than_segments_still_serves_the_file(
    tmp_path: Path, dest: Path
) -> None:
    """``busy`` for some connections: those step back, the others fetch every range.

    One slot, and eight slices asked at once: the first answer holds the
    slot while its 1.5 MiB drain through a 4 MiB/s link whose relay buffers
    only 64 KiB (about 0.35 s; with loopback's autotuned buffers it would
    leave the server within a millisecond and whether anyone is refused
    would be a race), so the slices asked meanwhile are refused.
    """
    folder = tmp_path / "served"
    folder.mkdir()
    digest = write_random(folder / "big.bin", SIZE)
    with (
        serve_process(["serve", str(folder), "--port", "0", "--max-transfers", "1"]) as srv,
        LinkEmulator(srv.port, Link(rate=4 * MIB, queue=64 * KiB)) as relay,
    ):
        done = run_cli("get", "--segments", "8", url(relay), "-o", str(dest), timeout=60)
        # Some connections were refused, and it did not matter.
        wait_until_sync(lambda: " busy " in srv.stderr, "a busy line in the access log", 10)
    assert (done.returncode, done.stderr) == (0, "")
    assert digest_of(dest / "big.bin") == digest


async def test_progress_reports_the_live_connections(
    served: tuple[int, Path, str], dest: Path
) -> None:
    port, _, digest = served
    seen: list[int] = []
    async with LinkEmulator(port, Link(rate=4 * MIB)) as relay:
        target = Target("127.0.0.1", relay.port, b"big.bin")
        result = await fetch(
            target,
            str(dest),
            options=Options(segments=4),
            on_progress=lambda progress: seen.append(progress.connections),
        )
    assert result.digest == digest
    assert max(seen) == 4 and seen[-1] == 0, seen
