"""The tree's disk thread (``tree_disk``): order, errors, and never a hang."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from getfile_core.client.tree_disk import DiskWriter
from getfile_core.client.tree_local import LocalTree
from getfile_core.errors import GetfileError, LocalFileError
from tests.support.waits import wait_until_sync


class Job:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.parts = ("sub", name)
        self.left_part = False
        self.fail = fail
        self.outcome: list[str] = []
        self.done = threading.Event()

    def saved(self, size: int) -> None:
        if self.fail:
            raise RuntimeError("a bug in the job")
        self.outcome.append(f"saved {size}")
        self.done.set()

    def give_up(self, error: GetfileError, *, quiet: bool = False) -> None:
        self.outcome.append(f"failed: {error}")
        self.done.set()


def test_files_are_saved_and_failures_told(tmp_path: Path) -> None:
    local = LocalTree(str(tmp_path), "top")
    local.make(("sub",))
    (tmp_path / "top" / "sub" / "taken").write_bytes(b"mine")
    writer = DiskWriter(local, overwrite=False)
    ok, taken = Job("new"), Job("taken")
    writer.save(ok, b"12345", None)
    writer.save(taken, b"xyz", None)
    writer.close()
    local.close()
    assert ok.outcome == ["saved 5"] and (tmp_path / "top" / "sub" / "new").read_bytes() == b"12345"
    assert taken.outcome[0].startswith("failed:") and "appeared" in taken.outcome[0]
    assert (tmp_path / "top" / "sub" / "taken").read_bytes() == b"mine"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_disk_thread_is_an_error_not_a_hang(tmp_path: Path) -> None:
    local = LocalTree(str(tmp_path), "top")
    local.make(("sub",))
    writer = DiskWriter(local, overwrite=False)
    writer.save(Job("a", fail=True), b"x", None)
    wait_until_sync(
        lambda: not all(saver.thread.is_alive() for saver in writer._savers),
        "the disk thread with the failing job to end",
        5,
    )
    with pytest.raises(LocalFileError, match="stopped"):
        writer.save(Job("b"), b"y", None)
    writer.close()
    local.close()


def test_files_in_one_folder_are_shared_by_every_disk_thread(tmp_path: Path) -> None:
    """Files are dealt in turn (an unnamed file is made without the folder's lock)."""
    local = LocalTree(str(tmp_path), "top")
    local.make(("sub",))
    writer = DiskWriter(local, overwrite=False, threads=2)
    names: dict[str, str] = {}

    class Named(Job):
        def saved(self, size: int) -> None:
            names[self.parts[-1]] = str(threading.get_ident())
            super().saved(size)

    jobs = [Named(f"f{index}") for index in range(20)]
    for job in jobs:
        writer.save(job, b"x" * 10, 1_600_000_000_000_000_000)
    writer.close()
    local.close()
    assert all(job.outcome == ["saved 10"] for job in jobs)
    assert len(set(names.values())) == 2
    saved = sorted(p.name for p in (tmp_path / "top" / "sub").iterdir())
    assert saved == sorted(job.parts[-1] for job in jobs)
    assert {(tmp_path / "top" / "sub" / n).stat().st_mtime_ns for n in saved} == {
        1_600_000_000_000_000_000
    }
