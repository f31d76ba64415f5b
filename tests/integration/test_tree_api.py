"""The folder API the CLI (and next, the TUI) drive: ``download_tree``, ``Tree``, ``cancel``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from getfile_core.address import Target
from getfile_core.client import Options, Tree, TreeOptions, download_tree, multiplex, walk_tree
from getfile_core.client.pipeline import Lane
from tests.support import KIB, serve_process
from tests.support.links import Link, LinkEmulator


def make_tree(top: Path, files: int, size: int) -> None:
    for i in range(files):
        folder = top / f"d{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:03}").write_bytes(os.urandom(size))


def test_progress_then_cancel_keeps_what_it_has(tmp_path: Path) -> None:
    served = tmp_path / "served"
    make_tree(served / "top", 40, 64 * KIB)
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[int, int, int]] = []
    trees: list[Tree] = []

    def tick() -> None:
        tree = trees[0]
        seen.append((tree.files_total, tree.bytes_done, len(tree.in_flight())))
        if tree.bytes_done >= 256 * KIB:
            tree.cancel()

    with (
        serve_process(["serve", str(served), "--port", "0"]) as server,
        LinkEmulator(server.port, Link(rate=512 * KIB)) as relay,
    ):
        target = Target("127.0.0.1", relay.port, b"top")
        result = download_tree(
            target,
            str(out),
            Options(),
            TreeOptions(jobs=2),
            lambda *_: None,
            on_start=trees.append,
            on_tick=tick,
        )
    assert result.cancelled and result.failed == 0
    assert 0 < result.files < 40
    assert any(total == 40 for total, _, _ in seen)  # the whole plan was known early
    assert any(flight > 0 for _, _, flight in seen)
    done = [p for p in (out / "top").rglob("*") if p.is_file()]
    assert all(p.stat().st_size == 64 * KIB or p.name.endswith(".getfile-part") for p in done)


def test_progress_never_shows_more_than_the_listed_total(tmp_path: Path) -> None:
    """Answers in flight on a connection that is reset are asked for again: their bytes
    arrive twice, but the bar's "done" stays within the total (it showed 24.6/24.5 MB)."""
    served = tmp_path / "served"
    make_tree(served / "top", 60, 48 * KIB)
    out = tmp_path / "out"
    out.mkdir()
    trees: list[Tree] = []
    seen: list[tuple[int, int]] = []

    def tick() -> None:
        tree = trees[0]
        seen.append((tree.bytes_done, tree.bytes_total))

    with (
        serve_process(["serve", str(served), "--port", "0"]) as server,
        LinkEmulator(server.port, Link(reset_every=200 * KIB)) as relay,
    ):
        target = Target("127.0.0.1", relay.port, b"top")
        result = download_tree(
            target,
            str(out),
            Options(retries=20, timeout=5, retry_cap=0.1),
            TreeOptions(jobs=2),
            lambda *_: None,
            on_start=trees.append,
            on_tick=tick,
        )
        resets = relay.stats().resets
    assert result.failed == 0 and result.files == 60
    assert resets >= 3
    tree = trees[0]
    seen.append((tree.bytes_done, tree.bytes_total))
    assert all(done <= total for done, total in seen if total), seen
    assert seen[-1] == (60 * 48 * KIB, 60 * 48 * KIB)


def test_listings_are_spread_over_the_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While more connections may open, each carries at most ``LISTINGS_PER_LINK``
    listings: the server answers them side by side and files start sooner (all on the
    first connection, the first file waited for the last of 20 listings)."""
    served = tmp_path / "served"
    for folder in range(12):
        for index in range(3):
            path = served / "top" / f"d{folder:02}" / f"f{index}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(100))
    out = tmp_path / "out"
    out.mkdir()
    carried: dict[int, int] = {}  # link -> listings it was given
    most = [0]
    real_push = multiplex.Multiplexer._push

    def push(self: multiplex.Multiplexer, link: multiplex.Link) -> None:
        before = {id(job) for job in link.sent}
        real_push(self, link)
        new = [job for job in link.sent if id(job) not in before and job.lane is Lane.LIST]
        carried[id(link)] = carried.get(id(link), 0) + len(new)
        if len(self.links) < self.max_links:  # more may open: each takes a share
            most[0] = max(most[0], sum(job.lane is Lane.LIST for job in link.sent))

    real_init = multiplex.Link.__init__

    def opened(link: multiplex.Link, sock: object, first: Any, *rest: Any) -> None:
        real_init(link, sock, first, *rest)  # type: ignore[arg-type]
        carried[id(link)] = int(first.lane is Lane.LIST)

    monkeypatch.setattr(multiplex.Multiplexer, "_push", push)
    monkeypatch.setattr(multiplex.Link, "__init__", opened)
    with serve_process(["serve", str(served), "--port", "0"]) as server:
        target = Target("127.0.0.1", server.port, b"top")
        result = download_tree(target, str(out), Options(), TreeOptions(jobs=4), print)
    assert (result.files, result.failed) == (36, 0)
    assert most[0] <= multiplex.LISTINGS_PER_LINK
    assert sum(carried.values()) == 13  # the top folder and its 12
    assert len([link for link, count in carried.items() if count]) >= 3


def test_the_advice_for_a_file_url_is_the_callers(tmp_path: Path) -> None:
    """``get -r`` of a file points to plain ``get``; ``ls`` (``file_advice=""``) gets none."""
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "one.txt").write_bytes(b"x")
    said: dict[str, list[str]] = {"get": [], "ls": []}
    with serve_process(["serve", str(tmp_path / "served"), "--port", "0"]) as server:
        target = Target("127.0.0.1", server.port, b"one.txt")
        walk_tree(target, Options(), TreeOptions(), lambda _, t: said["get"].append(t))
        quiet = TreeOptions(file_advice="")
        walk_tree(target, Options(), quiet, lambda _, t: said["ls"].append(t))
    assert said["get"] == ["is a file, not a folder (use get without -r)"]
    assert said["ls"] == ["is a file, not a folder"]


def test_files_of_a_few_hundred_kib_are_spread_over_the_connections(tmp_path: Path) -> None:
    """Through a link that caps each connection (a window-limited path), a folder of six
    files of 300 KiB goes side by side: all six went down one connection (``DEPTH`` 32
    had room for them), at one connection's pace. ``multiplex.SPREAD_BYTES`` says why."""
    served = tmp_path / "served"
    (served / "top").mkdir(parents=True)
    bodies = {f"f{index}.dat": os.urandom(300 * KIB) for index in range(6)}
    for name, body in bodies.items():
        (served / "top" / name).write_bytes(body)
    out = tmp_path / "out"
    out.mkdir()
    with (
        serve_process(["serve", str(served), "--port", "0"]) as server,
        LinkEmulator(server.port, Link(rate=1024 * KIB)) as capped,
    ):
        target = Target("127.0.0.1", capped.port, b"top")
        result = download_tree(target, str(out), Options(), TreeOptions(jobs=8), print)
        most = capped.stats().most_at_once
    assert (result.files, result.failed) == (6, 0)
    assert {path.name: path.read_bytes() for path in (out / "top").iterdir()} == bodies
    assert most >= 3, f"{most} connection(s) at once for six files of 300 KiB"
