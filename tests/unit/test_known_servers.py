"""``client.known``: the memory of servers that answered slices, and its file (a cache: hostile)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from getfile_core.client import known


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "getfile" / "servers"


def test_a_server_learned_is_written_and_read_back_by_another_process(memory: Path) -> None:
    assert not known.answers_slices("far.example", 50001, str(memory))
    known.learned("far.example", 50001, True, str(memory))
    assert memory.read_text() == "getfile-servers 1\nfar.example 50001\n"
    assert oct(memory.stat().st_mode & 0o777) == "0o600"
    known.forget_all()  # as a new process
    assert known.answers_slices("far.example", 50001, str(memory))
    assert not known.answers_slices("far.example", 50002, str(memory))


def test_a_server_that_stopped_answering_slices_is_forgotten(memory: Path) -> None:
    known.learned("a", 1, True, str(memory))
    known.learned("b", 2, True, str(memory))
    known.learned("a", 1, False, str(memory))
    assert memory.read_text().splitlines() == ["getfile-servers 1", "b 2"]
    known.forget_all()
    assert not known.answers_slices("a", 1, str(memory))


def test_the_file_keeps_the_most_recent_servers_only(memory: Path) -> None:
    for port in range(1, known.MAX_ENTRIES + 11):
        known.learned("h", port, True, str(memory))
    lines = memory.read_text().splitlines()
    assert len(lines) == 1 + known.MAX_ENTRIES
    assert lines[1] == "h 11" and lines[-1] == f"h {known.MAX_ENTRIES + 10}"


def test_garbage_in_the_file_is_skipped_line_by_line(memory: Path) -> None:
    memory.parent.mkdir(parents=True)
    lines = [
        "getfile-servers 1",
        "good 7",
        "no-port",
        "bad 0",
        "bad 65536",
        "bad -1",
        "bad\x1b[31m 5",
        "x" * 300 + " 5",
        "",
        "also.good 8",
    ]
    memory.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe 9\n")
    assert known.answers_slices("good", 7, str(memory))
    assert known.answers_slices("also.good", 8, str(memory))
    assert not known.answers_slices("bad", 5, str(memory))
    assert not known.answers_slices("bad\x1b[31m", 5, str(memory))


@pytest.mark.parametrize(
    "content", [b"", b"something else\ngood 7\n", b"getfile-servers 2\ngood 7\n"]
)
def test_a_file_that_is_not_ours_is_ignored(memory: Path, content: bytes) -> None:
    memory.parent.mkdir(parents=True)
    memory.write_bytes(content)
    assert not known.answers_slices("good", 7, str(memory))


def test_a_huge_file_is_read_only_up_to_its_bound(memory: Path) -> None:
    memory.parent.mkdir(parents=True)
    with memory.open("w") as handle:
        handle.write("getfile-servers 1\n")
        handle.write("filler 1\n" * (known.MAX_BYTES // 9 + 1000))
        handle.write("late 9\n")  # past MAX_BYTES: never read
    assert not known.answers_slices("late", 9, str(memory))
    known.forget_all()
    assert known.answers_slices("filler", 1, str(memory))


def test_a_symlink_or_a_fifo_in_its_place_is_neither_followed_nor_waited_on(
    memory: Path, tmp_path: Path
) -> None:
    memory.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("getfile-servers 1\nplanted 1\n")
    memory.symlink_to(elsewhere)
    assert not known.answers_slices("planted", 1, str(memory))
    known.learned("new", 2, True, str(memory))  # replaces the link, never writes through it
    assert elsewhere.read_text() == "getfile-servers 1\nplanted 1\n"
    assert not memory.is_symlink() and "new 2" in memory.read_text()
    memory.unlink()
    known.forget_all()
    os.mkfifo(memory)
    assert not known.answers_slices("new", 2, str(memory))  # returns: no writer needed


def test_an_unwritable_cache_costs_nothing_but_the_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    path = str(blocked / "getfile" / "servers")  # its folder cannot be made
    known.learned("h", 1, True, path)
    assert known.answers_slices("h", 1, path)  # still known in this process
    assert list(tmp_path.iterdir()) == [blocked]


def test_the_default_place_follows_xdg_and_the_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert known.default_path() == "/x/cache/getfile/servers"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not absolute: ignored, as the spec says
    monkeypatch.setenv("HOME", "/home/u")
    assert known.default_path() == "/home/u/.cache/getfile/servers"
