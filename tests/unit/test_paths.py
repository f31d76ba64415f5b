"""Names in both directions: the local name a download gets, and the served root's basics.

The large hostile-path corpus lives with the confinement tests; here are the
direct cases that pin down each rule.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from getfile_core.client.names import PART_SUFFIX, UnsafeName, safe_local_name
from getfile_core.protocol import MAX_NAME, Status
from getfile_core.server.root import Refused, ServedRoot

# ---------------------------------------------------------------- safe_local_name


@pytest.mark.parametrize(
    ("remote", "local"),
    [
        ("hello.txt", "hello.txt"),
        ("docs/report.pdf", "report.pdf"),
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("a\\b", "b"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("dir/", "dir"),
        ("  spaced.txt  ", "spaced.txt"),
        (b"dir/plain.bin", "plain.bin"),
        ("tab\there", "tab_here"),
        ("new\nline", "new_line"),
        ("\x1b[31mred", "_[31mred"),
        ("evil\u202etxt.exe", "evil_txt.exe"),
        ("nul\x00byte", "nul_byte"),
        ("café.txt", "café.txt"),
    ],
)
def test_safe_local_name(remote: str | bytes, local: str) -> None:
    assert safe_local_name(remote) == local


@pytest.mark.parametrize(
    "remote", ["", ".", "..", "...", "/", "a/..", "a/.", "\\", "../", "   ", b"", b"x/.."]
)
def test_names_with_nothing_to_save_are_refused(remote: str | bytes) -> None:
    with pytest.raises(UnsafeName):
        safe_local_name(remote)


def test_non_utf8_bytes_give_an_encodable_name() -> None:
    name = safe_local_name(b"dir/caf\xe9 \xff.txt")
    encoded = os.fsencode(name)  # would raise on a lone surrogate
    assert name.startswith("caf") and name.endswith(".txt")
    assert b"/" not in encoded and b"\x00" not in encoded
    name.encode("utf-8")  # printable, storable anywhere


def _fits(name: str) -> bool:
    return len(os.fsencode(name + PART_SUFFIX)) <= MAX_NAME


def test_very_long_name_is_trimmed_to_fit_with_part_suffix() -> None:
    name = safe_local_name("a" * 1000)
    assert _fits(name)
    assert name == "a" * (MAX_NAME - len(PART_SUFFIX))


def test_very_long_name_keeps_its_extension() -> None:
    name = safe_local_name("b" * 400 + ".tar.gz")
    assert _fits(name)
    assert name.endswith(".gz") and name.startswith("bbbb")


def test_very_long_name_with_an_absurd_extension_drops_it() -> None:
    name = safe_local_name("c" * 300 + "." + "e" * 300)
    assert _fits(name)
    assert name.startswith("ccc")


def test_long_multibyte_name_is_cut_on_a_character_boundary() -> None:
    name = safe_local_name("é" * 300 + ".txt")
    assert _fits(name)
    assert name.endswith(".txt") and set(name[:-4]) == {"é"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600)))
def test_any_name_is_a_plain_name_or_refused(remote: str | bytes) -> None:
    try:
        name = safe_local_name(remote)
    except UnsafeName:
        return
    encoded = os.fsencode(name)
    assert encoded and b"/" not in encoded and b"\\" not in encoded and b"\x00" not in encoded
    assert name not in (".", "..") and name == name.strip()
    assert _fits(name)
    assert os.path.basename(name) == name


# ---------------------------------------------------------------- ServedRoot


@pytest.fixture
def served(tmp_path: Path) -> ServedRoot:
    folder = tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    (folder / "hello.txt").write_bytes(b"hello\n")
    (tmp_path / "secret.txt").write_bytes(b"secret\n")
    (folder / "escape").symlink_to(tmp_path / "secret.txt")
    (folder / "inside").symlink_to(folder / "hello.txt")
    os.mkfifo(folder / "fifo")
    return ServedRoot.open(folder)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_open_requires_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        ServedRoot.open(tmp_path / "file")
    assert ServedRoot.open(tmp_path).path == os.path.realpath(tmp_path)


def test_lexical_maps_under_the_root(served: ServedRoot) -> None:
    assert served.lexical(b"hello.txt") == os.path.join(served.path, "hello.txt")
    assert served.lexical(b"sub/./x") == os.path.join(served.path, "sub", "x")
    inside = os.path.join(served.path, "hello.txt")
    assert served.lexical(os.fsencode(inside)) == inside


@pytest.mark.parametrize(
    ("requested", "status"),
    [
        (b"", Status.BAD_REQUEST),
        (b"a\x00b", Status.BAD_REQUEST),
        (b"x" * 4097, Status.BAD_REQUEST),
        (b"x" * 256, Status.BAD_REQUEST),
        (b"../secret.txt", Status.FORBIDDEN),
        (b"sub/../../secret.txt", Status.FORBIDDEN),
        (b"/etc/passwd", Status.FORBIDDEN),
    ],
)
def test_lexical_refuses(served: ServedRoot, requested: bytes, status: Status) -> None:
    with pytest.raises(Refused) as caught:
        served.lexical(requested)
    assert caught.value.status is status and caught.value.reason


def test_open_file_gives_a_descriptor_and_its_stat(served: ServedRoot) -> None:
    for requested in (b"hello.txt", b"inside"):
        fd, info = served.open_file(requested)
        try:
            assert stat.S_ISREG(info.st_mode) and info.st_size == 6
            assert os.read(fd, 100) == b"hello\n"
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    ("requested", "status"),
    [
        (b"missing.txt", Status.NOT_FOUND),
        (b"hello.txt/x", Status.NOT_FOUND),
        (b"sub", Status.IS_A_DIRECTORY),
        (b"fifo", Status.FORBIDDEN),
        (b"escape", Status.FORBIDDEN),
        (b"../secret.txt", Status.FORBIDDEN),
    ],
)
def test_open_file_refuses_without_leaking_descriptors(
    served: ServedRoot, requested: bytes, status: Status
) -> None:
    before = _open_fds()
    with pytest.raises(Refused) as caught:
        served.open_file(requested)
    assert caught.value.status is status
    assert _open_fds() == before


@pytest.mark.parametrize("requested", [b"", b".", b"/", b"sub", b"sub/"])
def test_open_dir_opens_folders_under_the_root(served: ServedRoot, requested: bytes) -> None:
    fd = served.open_dir(requested)
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("requested", "status"),
    [
        (b"missing", Status.NOT_FOUND),
        (b"hello.txt", Status.NOT_A_DIRECTORY),
        (b"..", Status.FORBIDDEN),
        (b"/tmp", Status.FORBIDDEN),
    ],
)
def test_open_dir_refuses(served: ServedRoot, requested: bytes, status: Status) -> None:
    before = _open_fds()
    with pytest.raises(Refused) as caught:
        served.open_dir(requested)
    assert caught.value.status is status
    assert _open_fds() == before


@pytest.fixture
def linked(tmp_path: Path) -> ServedRoot:
    """A root whose folders are reached through symlinks: one inside it, one leading out."""
    folder = tmp_path / "root"
    (folder / "real" / "deep").mkdir(parents=True)
    (folder / "real" / "deep" / "f.txt").write_bytes(b"inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret\n")
    (folder / "alias").symlink_to(folder / "real")
    (folder / "out").symlink_to(outside)
    return ServedRoot.open(folder)


def test_a_folder_symlink_inside_the_root_is_followed(linked: ServedRoot) -> None:
    for requested in (b"real/deep/f.txt", b"alias/deep/f.txt"):
        fd, _ = linked.open_file(requested)
        try:
            assert os.read(fd, 100) == b"inside\n"
        finally:
            os.close(fd)
    os.close(linked.open_dir(b"alias/deep"))


def test_a_folder_symlink_leading_out_is_refused_before_anything_is_opened(
    linked: ServedRoot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: object, **kwargs: object) -> int:
        fd = real_open(path, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(os.readlink(f"/proc/self/fd/{fd}"))  # what was really opened
        return fd

    monkeypatch.setattr(os, "open", spy)
    for call in (lambda: linked.open_file(b"out/secret.txt"), lambda: linked.open_dir(b"out")):
        with pytest.raises(Refused) as caught:
            call()
        assert caught.value.status is Status.FORBIDDEN
    outside = os.path.realpath(tmp_path / "outside")
    assert not [path for path in opened if path.startswith(outside)]
