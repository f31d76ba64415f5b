"""The tree's disk thread (``tree_disk``): order, errors, and never a hang."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from getfile_core.client.tree_disk import DiskWriter
from getfile_core.client.tree_local import LocalTree
from getfile_core.errors import GetfileError, LocalFileError


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
    writer._savers[0].thread.join(5)
    with pytest.raises(LocalFileError, match="stopped"):
        writer.save(Job("b"), b"y", None)
    writer.close()
    local.close()
