"""The grouped row's bookkeeping and its runner, with a fake tree (no socket, no screen)."""

from __future__ import annotations

import asyncio
import threading

from getfile_core import Target
from getfile_core.client import TreeResult
from getfile_core.errors import RemoteError
from tui.group_runs import GroupRuns, group_label, tree_summary
from tui.groups import RECENT, SHOWN, Group, tree_progress
from tui.messages import LogLine
from tui.reports import TransferReports
from tui.transfers import State, Transfer


def test_group_keeps_a_bounded_window_on_its_files() -> None:
    group = Group(folder=b"d", names=(b"d",))
    for number in range(RECENT * 5):
        group.file_event(f"f{number}", "started")
        group.file_event(f"f{number}", "done" if number % 7 else "failed")
    group.file_event("now.bin", "started")
    assert len(group.recent) == RECENT  # 1000 files, 200 remembered
    assert group.files_done + group.files_failed == RECENT * 5
    lines = group.lines()
    assert lines[0] == ("getting", "now.bin") and len(lines) == SHOWN
    assert lines[1] == ("done", f"f{RECENT * 5 - 1}")
    group.settle()
    assert ("getting", "now.bin") not in group.lines()


def test_labels_and_summary() -> None:
    assert group_label((b"photos",)) == "photos"
    assert group_label((b"a", b"b\x1b[2J")) == "2 items"
    assert group_label((b"\x1b[2Jx",)) == "\\x1b[2Jx"  # printable, never a terminal command
    result = TreeResult(files=3, skipped=2, failed=1, bytes=2048, seconds=1.5)
    assert tree_summary(result) == (
        "3 file(s) fetched (2.00 KiB), 2 already there, "
        "1 failed (the log says why; Retry continues), 1.5 s"
    )


def run_group(runner) -> tuple[Transfer, list[object]]:  # type: ignore[no-untyped-def]
    posted: list[object] = []
    runs = GroupRuns(TransferReports(posted.append, set()), runner)
    transfer = Transfer(
        target=Target("127.0.0.1", 1, b"d"), folder="/tmp", name="d", group=Group(b"", (b"d",))
    )
    asyncio.run(runs.run(transfer, options=None))  # type: ignore[arg-type]
    return transfer, posted


def test_a_refused_tree_fails_the_row_with_the_servers_words() -> None:
    def runner(*_args: object) -> TreeResult:
        raise RemoteError("no such folder")

    transfer, posted = run_group(runner)
    assert transfer.state is State.FAILED and "no such folder" in transfer.error
    assert any(isinstance(m, LogLine) and "no such folder" in m.text for m in posted)


def test_files_that_failed_fail_the_group_and_callbacks_reach_the_row() -> None:
    def runner(target, out, options, tree_options, on_line, on_start, on_tick):  # type: ignore[no-untyped-def]
        assert tree_options.select == frozenset({"d"}) and out == "/tmp"
        done = threading.Event()

        def worker() -> None:  # a tree's worker thread
            on_line("d/x", "digest mismatch")
            done.set()

        threading.Thread(target=worker).start()
        assert done.wait(5)
        return TreeResult(files=1, failed=1, bytes=10, seconds=0.1)

    transfer, posted = run_group(runner)
    assert transfer.state is State.FAILED
    assert "1 failed" in transfer.error
    assert any(isinstance(m, LogLine) and "d/x: digest mismatch" in m.text for m in posted)


def test_the_rate_counts_bytes_moved_not_files_found_identical() -> None:
    transfer = Transfer(
        target=Target("h", 1, b"d"), folder="/tmp", name="d", group=Group(b"", (b"d",))
    )
    # A rerun: 90 MB already there count as done at once, 1 MB/s really moves.
    ticks = [(0, 0), (90_000_000, 1_000_000), (91_000_000, 2_000_000)]
    for second, (done, moved) in enumerate(ticks):
        transfer.observe(tree_progress(done, 100_000_000, float(second), State.DOWNLOADING))
        assert transfer.group is not None
        transfer.group.sample(float(second), moved)
    assert transfer.rate == 1_000_000
    assert transfer.eta == 9.0
