"""``errors.local_error``: a full disk is ``DiskFullError`` wherever it shows, EFBIG is not."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from getfile_core.client import destination
from getfile_core.client.tree_local import LocalTree
from getfile_core.errors import TOO_LARGE, DiskFullError, LocalFileError, local_error


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_no_room_is_disk_full(code: int) -> None:
    error = local_error(OSError(code, os.strerror(code)), "cannot create x")
    assert isinstance(error, DiskFullError) and str(error).startswith("disk full")


def test_a_file_too_big_is_its_own_plain_local_error() -> None:
    error = local_error(OSError(errno.EFBIG, os.strerror(errno.EFBIG)), "cannot write")
    assert type(error) is LocalFileError and str(error) == f"cannot write: {TOO_LARGE}"


def test_another_errno_keeps_its_words() -> None:
    error = local_error(OSError(errno.EACCES, os.strerror(errno.EACCES)), "cannot create x")
    assert type(error) is LocalFileError and str(error) == "cannot create x: Permission denied"


def refuse(code: int) -> Callable[..., None]:
    def call(*_: object, **__: object) -> None:
        raise OSError(code, os.strerror(code))

    return call


def test_a_folder_that_cannot_be_made_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = LocalTree(str(tmp_path), None)
    try:
        monkeypatch.setattr(os, "mkdir", refuse(errno.ENOSPC))
        with pytest.raises(DiskFullError):
            tree.make(("new",))
    finally:
        tree.close()


def test_a_part_that_cannot_be_created_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        monkeypatch.setattr(os, "open", refuse(errno.EDQUOT))
        with pytest.raises(DiskFullError):
            destination.keep_part(folder, str(tmp_path), "a.bin", b"data")
    finally:
        monkeypatch.undo()
        os.close(folder)
