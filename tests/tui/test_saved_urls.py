"""The saved queue keeps a file's exact path, whatever bytes it holds (issue: `Target.url()`).

The app saves a single transfer as its URL; before URLs were percent-encoded a
file named ``a%41.txt`` came back as ``aA.txt``, ``x#y`` and ``q?z`` did not
come back at all, and a name that is not UTF-8 came back as ``\\xff`` spelled out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from getfile_core import Target
from tui.persist import QueueKeeper
from tui.queue_store import QueueStore, legacy_url
from tui.transfers import Transfer

NAMES = [b"a%41.txt", b"x#y", b"q?z", b"100% done", b"caf\xe9 \xff.bin", b"sub/d%20ir/f.txt"]


def _keeper(folder: Path) -> QueueKeeper:
    keeper = QueueKeeper(QueueStore(folder))
    keeper.open()
    return keeper


@pytest.mark.parametrize("path", NAMES)
def test_a_saved_transfer_comes_back_with_its_exact_path(tmp_path: Path, path: bytes) -> None:
    target = Target("127.0.0.1", 50001, path)
    keeper = _keeper(tmp_path / "state")
    assert keeper.save([Transfer(target=target, folder=str(tmp_path), name="local")]) is None
    keeper.close()
    keeper = _keeper(tmp_path / "state")
    [restored] = keeper.restore()
    keeper.close()
    assert restored.transfer.target == target
    assert restored.transfer.name == "local"


def _legacy_file(folder: Path, urls: list[str]) -> None:
    """A queue as the app wrote it before URLs were exact: no flag, paths unescaped."""
    folder.mkdir(parents=True)
    entries = [
        {"url": url, "destination": "/d", "state": "active", "id": f"i{n}"}
        for n, url in enumerate(urls)
    ]
    document = {"format": "getfile-queue", "version": 2, "transfers": entries}
    (folder / "state.json").write_text(json.dumps(document))


def test_an_old_queue_with_unescaped_urls_still_loads_each_path_as_it_was(tmp_path: Path) -> None:
    old_urls = [
        "getfile://h:5/a%41.txt",
        "getfile://h:5/x#y",
        "getfile://h:5/q?z",
        "getfile://h:5/100% done",
        "getfile://h:5/caf\xe9 \\xff.bin",  # the old display_path of b"caf\xc3\xa9 \xff.bin"
        "getfiles://[::1]:7/plain/name.iso",
    ]
    _legacy_file(tmp_path / "state", old_urls)
    keeper = _keeper(tmp_path / "state")
    restored = keeper.restore()
    assert [r.transfer.target.path for r in restored] == [
        b"a%41.txt",
        b"x#y",
        b"q?z",
        b"100% done",
        "caf\xe9 ".encode() + b"\xff.bin",
        b"plain/name.iso",
    ]
    assert restored[-1].transfer.target == Target("::1", 7, b"plain/name.iso", tls=True)
    assert all(r.unfinished for r in restored)
    # Saved again, the queue is exact from then on: a second load changes nothing.
    keeper.save([r.transfer for r in restored])
    keeper.close()
    document = json.loads((tmp_path / "state" / "state.json").read_text())
    assert document["exact_urls"] is True
    assert document["transfers"][0]["url"] == "getfile://h:5/a%2541.txt"
    keeper = _keeper(tmp_path / "state")
    again = keeper.restore()
    keeper.close()
    assert [r.transfer.target for r in again] == [r.transfer.target for r in restored]


def test_legacy_url_keeps_the_server_and_turns_back_only_lost_bytes() -> None:
    assert legacy_url("getfile://h:5/") == "getfile://h:5/"
    assert legacy_url("getfile://h:5/a\\x41\\xff") == "getfile://h:5/a%5Cx41%FF"
