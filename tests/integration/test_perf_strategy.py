"""The receive path's choice (``client.strategy``, ``client.trial``): kept, never wrong bytes.

Correctness only: which path wins is measured by ``bench/`` and the trial,
never asserted here. Every test gets its own cache folder
(``XDG_CACHE_HOME``), so nothing from the user's real cache leaks in.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import blake3
import pytest

from getfile_core.client import receive, strategy, trial
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
    monkeypatch.setattr(strategy, "_chosen", {})
    monkeypatch.setattr(strategy, "_trying", False)
    return tmp_path / "cache"


def trial_figures(
    splice: float, buffer: float, thread_wall: float | list[float] = 9.0, busy: float = 1.0
) -> dict:
    """A trial's figures: CPU per round as given, wall = CPU / busy, the thread's wall apart."""
    rounds = strategy.ROUNDS
    cpu = {strategy.SPLICE: [splice] * rounds, strategy.BUFFER: [buffer] * rounds}
    cpu[strategy.THREAD] = [0.1] * rounds
    wall = {choice: [cost / busy for cost in costs] for choice, costs in cpu.items()}
    wall[strategy.THREAD] = thread_wall if isinstance(thread_wall, list) else [thread_wall] * rounds
    return {"cpu": cpu, "wall": wall}


def keep(choice: str, machine: str | None = None, place: str = strategy.LOCAL) -> None:
    path = strategy.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine or strategy.machine_key(), place: {"choice": choice}}
    path.write_text(json.dumps(record))


def kept() -> dict:
    return json.loads(strategy.cache_path().read_text())


LARGE = strategy.TRIAL_BYTES
LOCAL = strategy.LOCAL


def test_small_bodies_splice_without_reading_or_writing_the_cache() -> None:
    keep(strategy.BUFFER)
    assert strategy.choose(1024 * 1024, LOCAL) == strategy.SPLICE
    assert strategy.choose(None, LOCAL) == strategy.SPLICE
    strategy.cache_path().unlink()
    assert strategy.choose(strategy.USE_FROM - 1, LOCAL) == strategy.SPLICE
    assert not strategy.cache_path().exists()


def test_the_kept_choice_for_this_machine_and_place_is_used() -> None:
    keep(strategy.SPLICE, place=LOCAL)
    assert strategy.choose(strategy.USE_FROM, LOCAL) == strategy.SPLICE
    # The other place has no verdict yet: a body big enough is the trial.
    assert strategy.choose(LARGE, strategy.REMOTE) == strategy.TRIAL


@pytest.mark.parametrize("garbage", ["", "{", "[1]", '{"local": {"choice": "rm -rf"}}'])
def test_a_damaged_cache_or_another_machines_means_a_new_trial(garbage: str) -> None:
    path = strategy.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(garbage)
    assert strategy.choose(LARGE, LOCAL) == strategy.TRIAL
    strategy.settle(LOCAL, None)
    keep(strategy.SPLICE, machine="another CPU | 1.0 | blake3 0")
    assert strategy.choose(LARGE, LOCAL) == strategy.TRIAL


def test_one_trial_at_a_time_and_the_prior_path_meanwhile() -> None:
    assert strategy.choose(LARGE, LOCAL) == strategy.TRIAL
    assert strategy.choose(LARGE, LOCAL) == strategy.PRIOR  # a second large body, same process
    assert strategy.choose(LARGE, strategy.REMOTE) == strategy.PRIOR
    assert strategy.settle(LOCAL, None) is None  # the trial's body ended early
    assert not strategy.cache_path().exists()
    assert strategy.choose(LARGE, LOCAL) == strategy.TRIAL  # the next large body tries again


def test_a_body_too_short_for_the_trial_takes_the_prior_path() -> None:
    assert strategy.choose(strategy.USE_FROM, LOCAL) == strategy.PRIOR
    assert strategy.choose(LARGE - 1, LOCAL) == strategy.PRIOR


def test_a_settled_trial_is_kept_beside_the_other_places_verdict() -> None:
    keep(strategy.SPLICE, place=strategy.REMOTE)
    assert strategy.choose(LARGE, LOCAL) == strategy.TRIAL
    figures = trial_figures(splice=1.0, buffer=0.8)
    assert strategy.settle(LOCAL, figures) == strategy.BUFFER
    record = kept()
    assert record["machine"] == strategy.machine_key()
    assert record[LOCAL] == {"choice": strategy.BUFFER, "trial_seconds_per_gib": figures}
    assert record[strategy.REMOTE]["choice"] == strategy.SPLICE
    leftovers = [p.name for p in strategy.cache_path().parent.iterdir()]
    assert leftovers == [strategy.CACHE_FILE]
    assert strategy.choose(LARGE, LOCAL) == strategy.BUFFER
    strategy._chosen.clear()  # as a new process: from the cache
    assert strategy.choose(LARGE, LOCAL) == strategy.BUFFER


def test_the_verdict_rules() -> None:
    prefer = strategy.prefer
    # splice must be MARGIN cheaper than the prior path to replace it.
    assert prefer(trial_figures(splice=0.95, buffer=1.0)) == strategy.BUFFER
    assert prefer(trial_figures(splice=0.8, buffer=1.0)) == strategy.SPLICE
    assert prefer(trial_figures(splice=1.0, buffer=0.8)) == strategy.BUFFER
    # The thread is judged by wall time against the CPU winner, in every round.
    assert prefer(trial_figures(splice=2.0, buffer=1.0, thread_wall=0.95)) == strategy.BUFFER
    assert prefer(trial_figures(splice=2.0, buffer=1.0, thread_wall=0.7)) == strategy.THREAD
    lucky = trial_figures(splice=2.0, buffer=1.0, thread_wall=[0.6, 1.0, 0.6])
    assert prefer(lucky) == strategy.BUFFER
    # A receiver that mostly waited (a slow link, a rate limit) proves nothing.
    assert prefer(trial_figures(splice=0.8, buffer=1.0, busy=0.2)) is None


def test_a_loopback_sender_is_local() -> None:
    with sending(b"") as sock:
        assert strategy.place_of(sock) == LOCAL
    unconnected = socket.socket()
    with unconnected:
        assert strategy.place_of(unconnected) == strategy.REMOTE


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


def receive_as_trial(sock: socket.socket, fd: int, hasher: blake3.blake3) -> receive.Receiver:
    receiver = open_receiver(sock, fd, hasher, never_cancelled, len(BODY))
    try:
        assert isinstance(receiver, trial.TrialReceiver)
        assert copy_all(receiver) == len(BODY)
    finally:
        receiver.close()
    return receiver


@pytest.fixture
def short_segments(monkeypatch: pytest.MonkeyPatch) -> int:
    """Segments of an odd size (not a page, a pipe or a hash window): the trial ends mid-body."""
    segment = 256 * 1024 + 333
    monkeypatch.setattr(strategy, "SEGMENT", segment)
    monkeypatch.setattr(strategy, "BUSY", 0.0)  # a loaded test machine must not void the trial
    monkeypatch.setenv(strategy.ENVIRONMENT, strategy.TRIAL)
    assert segment * (1 + strategy.ROUNDS * len(strategy.CHOICES)) < len(BODY)
    return segment


@pytest.mark.parametrize("start", [0, 4097], ids=["fresh", "resumed"])
def test_a_trial_takes_turns_then_keeps_the_winner_and_the_file_comes_out_whole(
    start: int, short_segments: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = os.urandom(start)
    path = tmp_path / "file.part"
    path.write_bytes(prefix)
    fd = os.open(path, os.O_RDWR)
    os.lseek(fd, start, os.SEEK_SET)
    hasher = blake3.blake3()
    try:
        with sending(BODY) as sock:
            receiver = receive_as_trial(sock, fd, hasher)
    finally:
        os.close(fd)
    assert path.read_bytes() == prefix + BODY
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()
    record = kept()[LOCAL]
    assert record["choice"] == receiver.verdict in strategy.CHOICES
    figures = record["trial_seconds_per_gib"]
    for measure in ("cpu", "wall"):  # every path had its turn in every round
        assert {path: len(costs) for path, costs in figures[measure].items()} == dict.fromkeys(
            strategy.CHOICES, strategy.ROUNDS
        )
    monkeypatch.delenv(strategy.ENVIRONMENT)  # no longer forced: the verdict is used
    assert strategy.choose(LARGE, LOCAL) == receiver.verdict


def test_a_body_shorter_than_the_trial_is_whole_and_keeps_no_verdict(
    short_segments: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(strategy, "SEGMENT", len(BODY) // 3)
    path = tmp_path / "file.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    hasher = blake3.blake3()
    try:
        with sending(BODY) as sock:
            receiver = receive_as_trial(sock, fd, hasher)
    finally:
        os.close(fd)
    assert receiver.verdict is None
    assert path.read_bytes() == BODY
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()
    assert not strategy.cache_path().exists()
    assert not strategy._trying  # the next large body may try


def test_a_trial_where_splice_is_refused_still_copies_and_hashes_everything(
    short_segments: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox that forbids splice: every turn falls back to ``recv_into``."""

    def refuse(*_args: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "splice", refuse, raising=False)
    path = tmp_path / "file.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    hasher = blake3.blake3()
    try:
        with sending(BODY) as sock:
            receive_as_trial(sock, fd, hasher)
    finally:
        os.close(fd)
    assert path.read_bytes() == BODY
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()


async def test_a_whole_download_run_as_the_trial_is_verified(
    short_segments: int, tmp_path: Path
) -> None:
    """Through the real client and server: the trial's switching is invisible in the result."""
    from getfile_core.client.api import fetch
    from tests.support import digest_of, running_server, target_for, write_random

    served = tmp_path / "served"
    served.mkdir()
    expected = write_random(served / "big.bin", 6 * 1024 * 1024 + 777)
    dest = tmp_path / "downloads"
    dest.mkdir()
    async with running_server(served) as server:
        result = await fetch(target_for(server, "big.bin"), str(dest))
    assert result.digest == expected
    assert digest_of(dest / "big.bin") == expected
    assert kept()[LOCAL]["choice"] in strategy.CHOICES


def test_a_cache_that_cannot_be_written_keeps_the_verdict_for_this_process_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(strategy.os, "replace", refuse)
    assert strategy.choose(LARGE, LOCAL) == strategy.TRIAL
    assert strategy.settle(LOCAL, trial_figures(splice=0.5, buffer=1.0)) == strategy.SPLICE
    assert strategy.choose(LARGE, LOCAL) == strategy.SPLICE
    assert list(strategy.cache_path().parent.iterdir()) == []  # no temporary file left behind
