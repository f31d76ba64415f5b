"""The measured choice of receive path (``client.strategy``): kept per machine, never wrong bytes.

Correctness only: which path wins is measured by ``bench/`` and the
calibration, never asserted here. Every test gets its own cache folder
(``XDG_CACHE_HOME``), so nothing from the user's real cache leaks in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import blake3
import pytest

from getfile_core.client import receive, strategy
from getfile_core.client.receive import (
    BufferReceiver,
    SpliceReceiver,
    ThreadedSpliceReceiver,
    open_receiver,
)
from getfile_core.errors import LocalFileError
from tests.integration.test_receive import BODY, copy_all, never_cancelled, sending


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(strategy.ENVIRONMENT, raising=False)
    monkeypatch.setattr(strategy, "_chosen", None)
    return tmp_path / "cache"


def measured(
    splice: float, buffer: float, thread_wall: float | list[float] = 9.0, rounds: int = 3
) -> dict:
    """Calibration figures: CPU as given, wall equal to CPU except the thread's."""
    cpu = {strategy.SPLICE: splice, strategy.BUFFER: buffer, strategy.THREAD: 9.0}
    thread = thread_wall if isinstance(thread_wall, list) else [thread_wall] * rounds
    walls = {strategy.SPLICE: [splice] * rounds, strategy.BUFFER: [buffer] * rounds}
    walls[strategy.THREAD] = thread
    wall = {choice: min(values) for choice, values in walls.items()}
    return {"cpu": cpu, "wall": wall, "rounds": walls}


def keep(choice: str, machine: str | None = None) -> None:
    path = strategy.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine or strategy.machine_key(), "choice": choice}
    path.write_text(json.dumps(record))


LARGE = strategy.CALIBRATE_FROM


def test_small_bodies_splice_without_reading_or_writing_the_cache() -> None:
    keep(strategy.BUFFER)
    assert strategy.choose(1024 * 1024) == strategy.SPLICE
    assert strategy.choose(None) == strategy.SPLICE
    strategy.cache_path().unlink()
    assert strategy.choose(LARGE - 1) == strategy.SPLICE
    assert not strategy.cache_path().exists()


def test_the_kept_choice_for_this_machine_is_used() -> None:
    keep(strategy.BUFFER)
    assert strategy.choose(LARGE) == strategy.BUFFER


def test_a_choice_kept_for_another_machine_is_measured_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keep(strategy.BUFFER, machine="another CPU | 1.0 | blake3 0")
    monkeypatch.setattr(strategy, "calibrate", lambda: measured(splice=1.0, buffer=2.0))
    assert strategy.choose(LARGE) == strategy.SPLICE
    assert json.loads(strategy.cache_path().read_text())["machine"] == strategy.machine_key()


@pytest.mark.parametrize("garbage", ["", "{", "[1]", '{"choice": "rm -rf"}'])
def test_a_damaged_cache_is_measured_again(garbage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = strategy.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(garbage)
    monkeypatch.setattr(strategy, "calibrate", lambda: measured(splice=2.0, buffer=1.0))
    assert strategy.choose(LARGE) == strategy.BUFFER
    assert json.loads(path.read_text())["choice"] == strategy.BUFFER


def test_a_failed_calibration_splices_and_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> dict[str, float]:
        raise OSError("no loopback here")

    monkeypatch.setattr(strategy, "calibrate", fail)
    assert strategy.choose(LARGE) == strategy.SPLICE
    assert not strategy.cache_path().exists()


def test_a_large_body_calibrates_once_and_keeps_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategy, "CALIBRATION_BYTES", 2 * 1024 * 1024 + 777)
    chosen = strategy.choose(LARGE)
    kept = json.loads(strategy.cache_path().read_text())
    assert kept["choice"] == chosen in strategy.CHOICES
    assert kept["machine"] == strategy.machine_key()
    costs = kept["seconds_per_gib"]
    for figures in (costs["cpu"], costs["wall"]):
        assert set(figures) == set(strategy.CHOICES)
        assert all(0 <= cost < float("inf") for cost in figures.values())
    assert all(len(walls) == 3 for walls in costs["rounds"].values())
    assert strategy.prefer(costs) == chosen
    leftovers = [p.name for p in strategy.cache_path().parent.iterdir()]
    assert leftovers == [strategy.CACHE_FILE]  # the scratch files are gone

    def measure_again() -> dict[str, float]:
        raise AssertionError("calibrated twice")

    monkeypatch.setattr(strategy, "calibrate", measure_again)
    monkeypatch.setattr(strategy, "_chosen", None)  # as a new process: from the cache
    assert strategy.choose(LARGE) == chosen


def test_a_challenger_needs_a_clear_margin() -> None:
    assert strategy.prefer(measured(splice=1.0, buffer=0.95)) == strategy.SPLICE
    assert strategy.prefer(measured(splice=1.0, buffer=0.80)) == strategy.BUFFER
    assert strategy.prefer(measured(splice=0.5, buffer=1.0)) == strategy.SPLICE
    # The thread is judged by wall time against the CPU winner.
    assert strategy.prefer(measured(splice=1.0, buffer=2.0, thread_wall=0.95)) == strategy.SPLICE
    assert strategy.prefer(measured(splice=1.0, buffer=2.0, thread_wall=0.7)) == strategy.THREAD
    assert strategy.prefer(measured(splice=2.0, buffer=1.0, thread_wall=0.95)) == strategy.BUFFER
    # ...in every round: one lucky round under other work is not enough.
    lucky = measured(splice=1.0, buffer=2.0, thread_wall=[0.6, 1.0, 0.6])
    assert strategy.prefer(lucky) == strategy.SPLICE


@pytest.mark.parametrize("forced", strategy.CHOICES)
def test_the_environment_forces_a_path_and_both_copy_and_hash_alike(
    forced: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(strategy.ENVIRONMENT, forced)
    keep(strategy.BUFFER if forced == strategy.SPLICE else strategy.SPLICE)  # overridden
    path = tmp_path / "file.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    hasher = blake3.blake3()
    with sending(BODY) as sock:
        receiver = open_receiver(sock, fd, hasher, never_cancelled, len(BODY))
        try:
            assert copy_all(receiver) == len(BODY)
            receiver.finish()
        finally:
            receiver.close()
            os.close(fd)
    expected = {
        strategy.SPLICE: SpliceReceiver,
        strategy.BUFFER: BufferReceiver,
        strategy.THREAD: ThreadedSpliceReceiver,
    }[forced]
    if hasattr(os, "splice") or forced == strategy.BUFFER:
        assert type(receiver) is expected
    assert path.read_bytes() == BODY
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()


def test_an_undigested_body_always_splices_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to hash: the read-back never happens, so splice is never the costlier."""
    if not hasattr(os, "splice"):
        pytest.skip("os.splice is Linux only")
    keep(strategy.BUFFER)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    with sending(b"x") as sock:
        receiver = open_receiver(sock, fd, None, never_cancelled, 1)
        receiver.close()
    os.close(fd)
    assert isinstance(receiver, SpliceReceiver)


def test_a_failed_read_back_in_the_hash_thread_fails_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread's error is not lost: the copying thread raises it, as a local file error."""

    def unreadable(*_args: object) -> None:
        raise OSError("file shrank while hashing")

    monkeypatch.setattr(receive, "hash_written", unreadable)
    fd = os.open(tmp_path / "file.part", os.O_RDWR | os.O_CREAT)
    with sending(BODY) as sock:
        receiver = ThreadedSpliceReceiver(sock, fd, blake3.blake3(), never_cancelled)
        try:
            with pytest.raises(LocalFileError, match="read back"):
                copy_all(receiver)
                receiver.finish()
        finally:
            receiver.close()
            os.close(fd)
    assert not receiver.worker.is_alive()
