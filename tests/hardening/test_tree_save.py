"""A tree's small files are written whole: the same rules as ``Destination``.

``get -r`` saves each small file in one go once it is verified in memory
(``tree_disk``): unnamed (``O_TMPFILE``, then ``linkat``) in five system
calls where it can (``tree_save``), else by ``save_whole`` in eight
instead of ~20. These tests
check it keeps every rule of the general path: only a ``.part`` it created
itself is written, a planted one (a symlink included) is removed and never
followed, the final name is never replaced without ``overwrite`` (with
``renameat2`` and with the hard-link fallback), and a failure leaves no
half-written file under any name.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core.client import destination, tree_save
from getfile_core.client.destination import rename_no_clobber, save_whole
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.tree_save import WholeSaver
from getfile_core.errors import LocalFileError

BODY = os.urandom(5000)
MTIME = 1_600_000_000_123_456_789


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


@pytest.fixture(params=["renameat2", "link"])
def rename_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of a no-clobber rename: ``renameat2``, and hard links where it is missing."""
    if request.param == "link":
        monkeypatch.setattr(destination, "_renameat2", lambda: None)
    return str(request.param)


def test_a_file_is_saved_whole_with_its_time(folder: tuple[Path, int], rename_way: str) -> None:
    path, fd = folder
    save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert (path / "a.bin").read_bytes() == BODY
    assert (path / "a.bin").stat().st_mtime_ns == MTIME
    assert sorted(os.listdir(path)) == ["a.bin"]


def test_an_existing_file_is_never_replaced(folder: tuple[Path, int], rename_way: str) -> None:
    path, fd = folder
    (path / "a.bin").write_bytes(b"mine")
    with pytest.raises(LocalFileError, match="appeared"):
        save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert (path / "a.bin").read_bytes() == b"mine"
    assert (path / ("a.bin" + PART_SUFFIX)).read_bytes() == BODY  # verified bytes are kept


def test_overwrite_replaces_the_file(folder: tuple[Path, int]) -> None:
    path, fd = folder
    (path / "a.bin").write_bytes(b"old")
    save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=True)
    assert (path / "a.bin").read_bytes() == BODY
    assert sorted(os.listdir(path)) == ["a.bin"]


def test_a_leftover_part_is_made_afresh(folder: tuple[Path, int]) -> None:
    path, fd = folder
    (path / ("a.bin" + PART_SUFFIX)).write_bytes(b"half of an earlier run" * 1000)
    save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert (path / "a.bin").read_bytes() == BODY
    assert sorted(os.listdir(path)) == ["a.bin"]


def test_a_symlink_planted_as_the_part_is_removed_not_followed(
    folder: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path, fd = folder
    victim = tmp_path_factory.mktemp("elsewhere") / "victim"
    victim.write_bytes(b"precious")
    (path / ("a.bin" + PART_SUFFIX)).symlink_to(victim)
    save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert victim.read_bytes() == b"precious"
    assert (path / "a.bin").read_bytes() == BODY
    assert not (path / "a.bin").is_symlink()


def test_a_folder_in_the_way_of_the_part_is_one_clear_error(folder: tuple[Path, int]) -> None:
    path, fd = folder
    (path / ("a.bin" + PART_SUFFIX)).mkdir()
    with pytest.raises(LocalFileError, match="cannot remove"):
        save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert not (path / "a.bin").exists()


def test_a_failed_write_leaves_no_part(
    folder: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, fd = folder

    def full(*_args: object) -> None:
        raise LocalFileError("disk full")

    monkeypatch.setattr(destination, "write_all", full)
    with pytest.raises(LocalFileError, match="disk full"):
        save_whole(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert os.listdir(path) == []


def test_rename_no_clobber_moves_or_refuses(folder: tuple[Path, int], rename_way: str) -> None:
    path, fd = folder
    (path / "src").write_bytes(b"s")
    (path / "taken").write_bytes(b"t")
    with pytest.raises(FileExistsError):
        rename_no_clobber(fd, "src", "taken", many=True)
    assert (path / "taken").read_bytes() == b"t"
    rename_no_clobber(fd, "src", "free", many=True)
    assert sorted(os.listdir(path)) == ["free", "taken"]


# ----------------------------------------------------------------- unnamed (O_TMPFILE) saves


@pytest.fixture(params=["unnamed", "named"])
def saver(request: pytest.FixtureRequest) -> WholeSaver:
    """A tree's saver both ways: ``O_TMPFILE`` + ``linkat``, and the named ``.part``."""
    whole = WholeSaver(unnamed=request.param == "unnamed")
    if request.param == "unnamed":
        assert whole.unnamed, "this system has O_TMPFILE and /proc: the unnamed path must be on"
    return whole


def test_the_saver_saves_whole_with_its_time(folder: tuple[Path, int], saver: WholeSaver) -> None:
    path, fd = folder
    saver.save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False, stale_part=False)
    assert (path / "a.bin").read_bytes() == BODY
    assert (path / "a.bin").stat().st_mtime_ns == MTIME
    assert (path / "a.bin").stat().st_nlink == 1
    assert sorted(os.listdir(path)) == ["a.bin"]


def test_the_saver_never_replaces_a_file(folder: tuple[Path, int], saver: WholeSaver) -> None:
    path, fd = folder
    (path / "a.bin").write_bytes(b"mine")
    with pytest.raises(LocalFileError, match="appeared"):
        saver.save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert (path / "a.bin").read_bytes() == b"mine"
    assert (path / ("a.bin" + PART_SUFFIX)).read_bytes() == BODY  # verified bytes are kept


def test_the_saver_never_follows_a_symlink_planted_as_the_name(
    folder: tuple[Path, int], saver: WholeSaver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path, fd = folder
    victim = tmp_path_factory.mktemp("elsewhere") / "victim"
    victim.write_bytes(b"precious")
    (path / "a.bin").symlink_to(victim)
    with pytest.raises(LocalFileError, match="appeared"):
        saver.save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert victim.read_bytes() == b"precious"
    assert (path / "a.bin").is_symlink()


def test_the_saver_removes_a_stale_part_never_following_it(
    folder: tuple[Path, int], saver: WholeSaver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path, fd = folder
    victim = tmp_path_factory.mktemp("elsewhere") / "victim"
    victim.write_bytes(b"precious")
    (path / ("a.bin" + PART_SUFFIX)).symlink_to(victim)
    (path / ("b.bin" + PART_SUFFIX)).write_bytes(b"half of an earlier run")
    saver.save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False, stale_part=True)
    saver.save(fd, str(path), "b.bin", BODY, MTIME, overwrite=False, stale_part=True)
    assert sorted(os.listdir(path)) == ["a.bin", "b.bin"]
    assert victim.read_bytes() == b"precious"
    assert (path / "b.bin").read_bytes() == BODY


def test_the_saver_overwrites_only_when_told(folder: tuple[Path, int], saver: WholeSaver) -> None:
    path, fd = folder
    (path / "a.bin").write_bytes(b"old")
    saver.save(fd, str(path), "a.bin", BODY, MTIME, overwrite=True)
    assert (path / "a.bin").read_bytes() == BODY
    assert sorted(os.listdir(path)) == ["a.bin"]


def test_an_unnamed_file_has_no_name_until_whole(
    folder: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, fd = folder
    seen: list[list[str]] = []
    real_write_all = tree_save.write_all

    def watching(out: int, view: memoryview) -> None:
        seen.append(os.listdir(path))
        real_write_all(out, view)
        seen.append(os.listdir(path))

    monkeypatch.setattr(tree_save, "write_all", watching)
    WholeSaver().save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False, stale_part=False)
    assert seen == [[], []]
    assert os.listdir(path) == ["a.bin"]


def test_a_failed_unnamed_write_leaves_nothing(
    folder: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, fd = folder

    def full(*_args: object) -> None:
        raise LocalFileError("disk full")

    monkeypatch.setattr(tree_save, "write_all", full)
    with pytest.raises(LocalFileError, match="disk full"):
        WholeSaver().save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert os.listdir(path) == []


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL])
def test_a_file_system_without_o_tmpfile_falls_back_for_the_run(
    folder: tuple[Path, int], monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    path, fd = folder
    real_open = os.open
    refused: list[str] = []

    def no_tmpfile(name: str, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(name)
            raise OSError(code, os.strerror(code))
        return real_open(name, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_tmpfile)
    whole = WholeSaver()
    for name in ("a.bin", "b.bin"):
        whole.save(fd, str(path), name, BODY, MTIME, overwrite=False)
    assert refused == ["."] and not whole.unnamed  # asked once, then the named way
    assert sorted(os.listdir(path)) == ["a.bin", "b.bin"]
    assert (path / "b.bin").read_bytes() == BODY
    assert (path / "b.bin").stat().st_mtime_ns == MTIME


def test_no_proc_to_name_the_file_falls_back(
    folder: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, fd = folder
    real_link = os.link

    def no_proc(source: str, *args: object, **kwargs: object) -> None:
        if str(source).startswith("/proc/"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", source)
        real_link(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", no_proc)
    whole = WholeSaver()
    whole.save(fd, str(path), "a.bin", BODY, MTIME, overwrite=False)
    assert not whole.unnamed
    assert os.listdir(path) == ["a.bin"]
    assert (path / "a.bin").read_bytes() == BODY
