"""The persisted queue: atomic writes, one writer at a time, damaged and hostile files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui import queue_store
from tui.queue_store import (
    MAX_GROUP_NAMES,
    MAX_PROBLEM_LINES,
    MAX_STATE_BYTES,
    MAX_TRANSFERS,
    QueuedTransfer,
    QueueStore,
    SavedGroup,
    SavedState,
    write_atomically,
)


def _transfer(**fields) -> QueuedTransfer:
    fields = {"url": "getfile://h:50001/big.iso", "destination": "/tmp/dl", **fields}
    return QueuedTransfer(**fields)


def _write_document(folder: Path, document: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.json"
    path.write_text(json.dumps(document))
    return path


def _entries(folder: Path, *entries: object) -> Path:
    return _write_document(
        folder, {"format": "getfile-queue", "version": 1, "transfers": list(entries)}
    )


def test_default_folder_follows_xdg_state_home(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert QueueStore().path == tmp_path / "getfile" / "state.json"


def test_saved_transfers_come_back_equal(tmp_path: Path):
    saved = [
        _transfer(name="renamed.iso", state=SavedState.ACTIVE, rate_limit=65536.0, size=10),
        _transfer(
            state=SavedState.DONE, mirrors=("getfile://m:1/big.iso",), finished=5.0, rate=1234.5
        ),
        _transfer(state=SavedState.PAUSED, error="connection closed\x1b[31m"),
    ]
    with QueueStore(tmp_path) as store:
        assert store.transfers == [] and not store.read_only
        assert store.save(saved)
    with QueueStore(tmp_path) as store:
        assert store.transfers[:2] == saved[:2]
        assert store.transfers[2].error == "connection closed [31m"
        assert [t.state for t in store.resumable()] == [SavedState.ACTIVE]
        assert store.problems == []


def test_write_is_private_and_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "deep" / "state.json"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]


def test_failed_write_keeps_the_old_file_whole(tmp_path: Path, monkeypatch):
    path = tmp_path / "state.json"
    write_atomically(path, b"old")

    def broken_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(queue_store.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, b"new" * 1000)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_second_instance_is_read_only_and_says_so(tmp_path: Path):
    with QueueStore(tmp_path) as first:
        first.save([_transfer()])
        with QueueStore(tmp_path) as second:
            assert second.read_only
            assert "another getfile-tui" in second.notice
            assert len(second.transfers) == 1  # it still shows the queue
            assert second.save([]) is False
        assert len(QueueStore(tmp_path).open()) == 1  # nothing was overwritten
    with QueueStore(tmp_path) as later:
        assert not later.read_only and later.notice is None


def test_unusable_state_folder_runs_read_only_and_says_why(tmp_path: Path):
    (tmp_path / "file").write_text("not a folder")
    with QueueStore(tmp_path / "file" / "getfile") as store:
        assert store.read_only and "cannot use" in store.notice and "\n" not in store.notice
        assert store.transfers == [] and store.save([_transfer()]) is False


def test_failed_save_is_reported_and_keeps_the_old_queue(tmp_path: Path, monkeypatch):
    with QueueStore(tmp_path) as store:
        assert store.save([_transfer(id="old")])

        def full_disk(source, target):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(queue_store.os, "replace", full_disk)
        assert store.save([_transfer(id="new")]) is False
        assert store.save_error.endswith("No space left on device")
        monkeypatch.undo()
        assert QueueStore(tmp_path).open()[0].id == "old"
        assert store.save([_transfer(id="new")]) and store.save_error is None


_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tui.queue_store import QueueStore
    store = QueueStore(Path(sys.argv[1]))
    store.open()
    print("locked" if not store.read_only else "refused", flush=True)
    sys.stdin.read()
    """
)


def test_lock_is_held_across_processes_and_dropped_when_one_dies(tmp_path: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with QueueStore(tmp_path) as store:
            assert store.read_only
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with QueueStore(tmp_path) as store:
        assert not store.read_only


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[1, 2]", "not a getfile queue"),
        (b'{"format": "someone-else", "version": 1}', "not a getfile queue"),
        (b'{"format": "getfile-queue", "version": "1"}', "no valid format version"),
        (b'{"format": "getfile-queue", "version": 1, "transfers": {}}', "no list"),
    ],
)
def test_damaged_file_is_moved_aside_with_one_line(tmp_path: Path, content: bytes, why: str):
    (tmp_path / "state.json").write_bytes(content)
    with QueueStore(tmp_path) as store:
        assert store.transfers == [] and not store.read_only
        (line,) = store.problems
        assert why in line and "moved aside to state.json.bad-" in line and "\n" not in line
        assert store.save([_transfer()])
    (aside,) = tmp_path.glob("state.json.bad-*")
    assert aside.read_bytes() == content


def test_huge_file_is_not_read_whole(tmp_path: Path):
    with (tmp_path / "state.json").open("wb") as stream:
        stream.truncate(MAX_STATE_BYTES + 1)
    with QueueStore(tmp_path) as store:
        assert "larger than" in store.problems[0]


def test_fifo_in_place_of_the_file_does_not_hang(tmp_path: Path):
    os.mkfifo(tmp_path / "state.json")
    with QueueStore(tmp_path) as store:
        assert "not a regular file; moved aside" in store.problems[0]
    assert not (tmp_path / "state.json").exists()


def test_read_only_instance_leaves_a_damaged_file_in_place(tmp_path: Path):
    with QueueStore(tmp_path) as first:
        (tmp_path / "state.json").write_bytes(b"garbage")
        with QueueStore(tmp_path) as second:
            assert first.problems == [] and "not using it" in second.problems[0]
    assert (tmp_path / "state.json").read_bytes() == b"garbage"
    assert list(tmp_path.glob("state.json.bad-*")) == []


def test_newer_format_is_left_alone_and_read_only(tmp_path: Path):
    path = _write_document(tmp_path, {"format": "getfile-queue", "version": 99, "transfers": []})
    before = path.read_bytes()
    with QueueStore(tmp_path) as store:
        assert store.read_only and "newer getfile (format 99)" in store.notice
        assert store.save([_transfer()]) is False
    assert path.read_bytes() == before


GOOD = {"url": "getfile://h/x", "destination": "/d"}


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("just text", "not an object"),
        ({"destination": "/d"}, "url is not text"),
        ({**GOOD, "url": "http://h/x"}, "url is not a getfile:// URL"),
        ({**GOOD, "url": "getfile://h/x\x1b]0;pwned\x07"}, "url has control characters"),
        ({**GOOD, "url": "getfile://h/" + "a" * 5000}, "url is empty or longer"),
        ({**GOOD, "destination": "relative/dir"}, "destination is not an absolute path"),
        ({**GOOD, "destination": "/d\nfake line"}, "destination has control characters"),
        ({**GOOD, "name": "../escape"}, "name is not a single file name"),
        ({**GOOD, "name": ".."}, "name is not a single file name"),
        ({**GOOD, "name": "é" * 200}, "name is not a single file name"),
        ({**GOOD, "state": "exploded"}, "state is not one of"),
        ({**GOOD, "size": True}, "size is not a whole number"),
        ({**GOOD, "size": -1}, "size is not from 0"),
        ({**GOOD, "received": 2**70}, "received is not from 0"),
        ({**GOOD, "rate_limit": "fast"}, "rate_limit is not a number"),
        ({**GOOD, "segments": 0}, "segments is not from 1"),
        ({**GOOD, "mirrors": ["x"] * 100}, "mirrors is not a list"),
        ({**GOOD, "mirrors": ["ftp://m/x"]}, "mirror is not a getfile:// URL"),
        ({**GOOD, "id": "../../x"}, "id is not 1-64"),
        ({**GOOD, "added": -5}, "added is not a time"),
    ],
)
def test_bad_entry_is_dropped_alone_with_its_reason(tmp_path: Path, entry: object, why: str):
    _entries(tmp_path, {**GOOD, "id": "keep"}, entry)
    with QueueStore(tmp_path) as store:
        assert [t.id for t in store.transfers] == ["keep"]
        (line,) = store.problems
        assert line.startswith("state.json: transfer 2 dropped: ") and why in line
        assert "\n" not in line and "\x1b" not in line


def test_overflowing_number_is_rejected_as_not_finite(tmp_path: Path):
    text = '{"format": "getfile-queue", "version": 1, "transfers": [%s]}'
    entry = '{"url": "getfile://h/x", "destination": "/d", "rate_limit": 1e400}'
    (tmp_path / "state.json").write_text(text % entry)
    with QueueStore(tmp_path) as store:
        assert store.transfers == [] and "rate_limit is not finite" in store.problems[0]


def test_repeated_ids_keep_the_first(tmp_path: Path):
    _entries(tmp_path, {**GOOD, "id": "a"}, {**GOOD, "id": "a", "destination": "/other"})
    with QueueStore(tmp_path) as store:
        assert [t.destination for t in store.transfers] == ["/d"]
        assert "repeated id" in store.problems[0]


def test_many_bad_entries_give_a_bounded_number_of_lines(tmp_path: Path):
    _entries(tmp_path, *([{"url": 1}] * (MAX_TRANSFERS + 50)))
    with QueueStore(tmp_path) as store:
        assert store.transfers == []
        assert len(store.problems) == MAX_PROBLEM_LINES + 1
        assert (
            store.problems[-1]
            == f"state.json: {MAX_TRANSFERS - MAX_PROBLEM_LINES + 1} more dropped"
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
fields = st.sampled_from(
    [
        "url",
        "destination",
        "name",
        "state",
        "id",
        "size",
        "received",
        "rate_limit",
        "mirrors",
        "group",
    ]
)


@settings(deadline=None)  # no timing assertions: the machine is shared
@given(
    st.dictionaries(
        fields,
        json_values
        | st.just("getfile://h/x")
        | st.just("/abs")
        | st.fixed_dictionaries({"folder": st.text(max_size=12), "names": json_values}),
    )
)
def test_any_entry_is_accepted_clean_or_rejected_with_value_error(entry: dict):
    try:
        transfer = QueuedTransfer.from_json(entry)
    except ValueError as error:
        assert "\n" not in str(error)
    else:
        assert transfer.url.startswith("getfile://")
        assert os.path.isabs(transfer.destination)
        assert QueuedTransfer.from_json(json.loads(json.dumps(transfer.to_json()))) == transfer


# --- Grouped rows (format 2): a folder download survives like a single file -----------------

ROOT = "getfile://h:50001/"


def _group_entry(**group) -> dict:
    return {"url": ROOT, "destination": "/d", "group": {"folder": "photos", "names": ["a"],
            **group}}  # fmt: skip


def test_a_group_comes_back_equal_with_names_that_are_not_utf8(tmp_path: Path):
    group = SavedGroup(b"photos/2024", (b"caf\xe9 \xff.jpg", b"100%", b"sub dir"), 3, 9)
    saved = [
        _transfer(url=ROOT, state=SavedState.ACTIVE, group=group, segments=4),
        _transfer(url="getfiles://h:50002/x.iso", state=SavedState.DONE),  # TLS
    ]
    with QueueStore(tmp_path) as store:
        assert store.save(saved)
    document = json.loads((tmp_path / "state.json").read_text())
    assert document["version"] == 2
    assert document["transfers"][0]["group"]["names"] == ["caf%E9%20%FF.jpg", "100%25", "sub%20dir"]
    with QueueStore(tmp_path) as store:
        assert store.transfers == saved and not store.problems


def test_a_version_1_file_still_loads(tmp_path: Path):
    _write_document(
        tmp_path,
        {"format": "getfile-queue", "version": 1, "transfers": [{**GOOD, "state": "active"}]},
    )
    with QueueStore(tmp_path) as store:
        [transfer] = store.transfers
        assert transfer.group is None and transfer.state is SavedState.ACTIVE
        assert not store.read_only and not store.problems


def test_an_older_app_opens_a_format_2_file_read_only(tmp_path: Path, monkeypatch):
    """A format-1 app would take a group entry for a file named after the server."""
    with QueueStore(tmp_path) as store:
        store.save([_transfer(url=ROOT, group=SavedGroup(b"", (b"photos",)))])
    before = (tmp_path / "state.json").read_bytes()
    monkeypatch.setattr(queue_store, "VERSION", 1)
    with QueueStore(tmp_path) as store:
        assert store.read_only and store.transfers == []
        assert store.save([_transfer()]) is False
    assert (tmp_path / "state.json").read_bytes() == before


@pytest.mark.parametrize(
    ("group", "why"),
    [
        ({"names": []}, "group names is not a list of 1 to"),
        ({"names": "a"}, "group names is not a list"),
        ({"names": ["a"] * (MAX_GROUP_NAMES + 1)}, "group names is not a list of 1 to"),
        ({"names": ["a", "a"]}, "group names repeat"),
        ({"names": [".."]}, "group name is not a single name"),
        ({"names": ["%2E%2E"]}, "group name is not a single name"),
        ({"names": ["a%2Fb"]}, "group name is not a single name"),
        ({"names": ["a/b"]}, "group name is not percent-encoded"),
        ({"names": [""]}, "group name is not a single name"),
        ({"names": ["x%1B%5B31m"]}, "group name has control characters"),
        ({"names": ["%C2%9B"]}, "group name has control characters"),  # C1 CSI, in UTF-8
        ({"names": ["a%00b"]}, "group name has control characters"),
        ({"names": ["a" * 256]}, "group name is longer than 255 bytes"),
        ({"names": ["%zz"]}, "group name is not percent-encoded"),
        ({"names": [7]}, "group name is not text"),
        ({"names": ["a" * 5000]}, "group name is not text of at most"),
        ({"folder": "..%2Fetc"}, "group folder has a part that is not a single name"),
        ({"folder": "%2Fetc"}, "group folder has a part that is not a single name"),
        ({"folder": "a%2F%2Fb"}, "group folder has a part that is not a single name"),
        ({"folder": "a%0Ab"}, "group folder has a part that has control characters"),
        ({"folder": None}, "group folder is not text"),
        ({"files_done": -1}, "group files_done is not from 0"),
        ({"files_total": "many"}, "group files_total is not a whole number"),
    ],
)
def test_bad_group_is_dropped_alone_with_its_reason(tmp_path: Path, group: dict, why: str):
    _entries(tmp_path, {**GOOD, "id": "keep"}, _group_entry(**group))
    with QueueStore(tmp_path) as store:
        assert [t.id for t in store.transfers] == ["keep"]
        (line,) = store.problems
        assert line.startswith("state.json: transfer 2 dropped: ") and why in line
        assert "\n" not in line and "\x1b" not in line


def test_a_group_that_is_not_an_object_is_dropped(tmp_path: Path):
    _entries(tmp_path, {**GOOD, "group": ["photos"]})
    with QueueStore(tmp_path) as store:
        assert store.transfers == [] and "group is not an object" in store.problems[0]


def test_the_root_folder_is_an_empty_folder(tmp_path: Path):
    _entries(tmp_path, _group_entry(folder=""))
    with QueueStore(tmp_path) as store:
        [transfer] = store.transfers
        assert transfer.group == SavedGroup(b"", (b"a",))
