"""History: the last server, bounded recent servers, bookmarks with token paths only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.history import (
    MAX_BOOKMARKS,
    MAX_RECENT,
    Bookmark,
    History,
    HistoryStore,
    Server,
)


def test_empty_history_has_no_last_server(tmp_path: Path):
    assert HistoryStore(tmp_path).load() == History()
    assert History().last is None


def test_default_folder_follows_xdg_state_home(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert HistoryStore().path == tmp_path / "getfile" / "history.json"


def test_remember_puts_the_last_first_without_duplicates():
    history = History().remember("a", 1).remember("b", 2).remember("a", 1)
    assert history.last == Server("a", 1)
    assert history.recent == (Server("a", 1), Server("b", 2))
    # Same host, other port: a different server.
    assert history.remember("a", 2).recent[:2] == (Server("a", 2), Server("a", 1))


def test_recent_is_bounded():
    history = History()
    for port in range(1, MAX_RECENT + 10):
        history = history.remember("host", port)
    assert len(history.recent) == MAX_RECENT
    assert history.last == Server("host", MAX_RECENT + 9)


@settings(deadline=None)  # no timing assertions: the machine is shared
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 4)), max_size=60))
def test_recent_is_always_unique_bounded_and_most_recent_first(uses):
    history = History()
    for host, port in uses:
        history = history.remember(host, port)
    assert len(set(history.recent)) == len(history.recent) <= MAX_RECENT
    if uses:
        assert history.last == Server(*uses[-1])


def test_saved_history_comes_back_equal_and_private(tmp_path: Path):
    store = HistoryStore(tmp_path)
    history = (
        History()
        .remember("files.example", 50001)
        .remember("::1", 6000)
        .with_bookmark(Bookmark("isos", "mirror.example", 50001, "/pub/iso", "~/.getfile-token"))
    )
    assert store.save(history)
    assert HistoryStore(tmp_path).load() == history
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_bookmarks_replace_by_name_remove_and_are_bounded():
    history = History().with_bookmark(Bookmark("a", "h", 1))
    history = history.with_bookmark(Bookmark("a", "h", 2))
    assert history.bookmarks["a"].port == 2 and len(history.bookmarks) == 1
    assert history.without_bookmark("a").bookmarks == {}
    for number in range(MAX_BOOKMARKS - 1):
        history = history.with_bookmark(Bookmark(f"b{number}", "h", 1))
    with pytest.raises(ValueError, match="at most"):
        history.with_bookmark(Bookmark("one too many", "h", 1))


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"name": ""}, "name is not 1-64"),
        ({"name": "x" * 65}, "name is not 1-64"),
        ({"name": "a\x1b[2Jb"}, "name has control characters"),
        ({"host": "evil host"}, "host is not"),
        ({"host": "h/../x"}, "host is not"),
        ({"host": "x" * 300}, "host is not"),
        ({"port": 0}, "port is not from 1"),
        ({"port": True}, "port is not from 1"),
        ({"folder": "/a\nb"}, "folder has control characters"),
        ({"token_file": ""}, "token_file is empty"),
        ({"token_file": "relative/token"}, "token_file is not an absolute path"),
        ({"token_file": "/t\x9b31m"}, "token_file has control characters"),
    ],
)
def test_bad_bookmark_fields_are_refused(fields: dict, why: str):
    with pytest.raises(ValueError, match=why):
        Bookmark(**{"name": "n", "host": "h", "port": 1, **fields})


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "history.json"
    path.write_text(json.dumps(document))
    return path


def test_a_bookmark_holding_a_token_is_dropped_with_a_line(tmp_path: Path):
    _write(
        tmp_path,
        {
            "format": "getfile-history",
            "version": 1,
            "bookmarks": [
                {"name": "leaky", "host": "h", "port": 1, "token": "s3cret"},
                {"name": "good", "host": "h", "port": 1, "token_file": "/run/token"},
            ],
        },
    )
    store = HistoryStore(tmp_path)
    history = store.load()
    assert list(history.bookmarks) == ["good"]
    (line,) = store.problems
    assert "bookmark 1 dropped: holds a token" in line and "s3cret" not in line
    store.save(history)
    assert "s3cret" not in store.path.read_text()


def test_bad_recent_entries_are_dropped_quietly(tmp_path: Path):
    recent = [{"host": "ok", "port": 1}, {"host": "bad host", "port": 1}, [1], "x", {"port": 2}]
    _write(tmp_path, {"format": "getfile-history", "version": 1, "recent": recent * 20})
    store = HistoryStore(tmp_path)
    assert store.load().recent == (Server("ok", 1),)
    assert store.problems == []


@pytest.mark.parametrize(
    "content",
    [b"{broken", b"[]", b'{"format": "other"}', b'{"format": "getfile-history"}'],
)
def test_damaged_file_is_moved_aside(tmp_path: Path, content: bytes):
    (tmp_path / "history.json").write_bytes(content)
    store = HistoryStore(tmp_path)
    assert store.load() == History()
    assert "moved aside to history.json.bad-" in store.problems[0]
    assert [p.read_bytes() for p in tmp_path.glob("history.json.bad-*")] == [content]


def test_newer_format_is_never_overwritten(tmp_path: Path):
    path = _write(tmp_path, {"format": "getfile-history", "version": 7})
    store = HistoryStore(tmp_path)
    assert store.load() == History() and store.read_only
    assert store.save(History().remember("h", 1)) is False
    assert json.loads(path.read_text())["version"] == 7


def test_failed_save_is_reported(tmp_path: Path):
    (tmp_path / "file").write_text("not a folder")
    store = HistoryStore(tmp_path / "file")
    assert store.save(History().remember("h", 1)) is False
    assert store.save_error.startswith("could not save the history")
