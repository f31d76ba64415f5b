"""The folder API the CLI (and next, the TUI) drive: ``download_tree``, ``Tree``, ``cancel``."""

from __future__ import annotations

import os
from pathlib import Path

from getfile_core.address import Target
from getfile_core.client import Options, Tree, TreeOptions, download_tree
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
