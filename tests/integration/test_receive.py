"""The body copy paths (splice and portable) over real loopback TCP.

Both must leave the same bytes in the file and the same digest, from any
starting offset, and end at once when the socket is shut down (a cancel).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from getfile_core.client import receive
from getfile_core.client.receive import (
    BufferReceiver,
    SpliceReceiver,
    ThreadedSpliceReceiver,
    open_receiver,
)
from getfile_core.digest import hash_written
from getfile_core.errors import InterruptedError_

#: Not a multiple of a page, a pipe or a hash window.
BODY = os.urandom(5 * 1024 * 1024 + 12_345)
PATIENCE = 10.0
KINDS = [SpliceReceiver, BufferReceiver, ThreadedSpliceReceiver]
KIND_IDS = ["splice", "portable", "splice-thread"]


@contextlib.contextmanager
def sending(data: bytes, *, close: bool = True) -> Iterator[socket.socket]:
    """A connected, blocking client socket whose peer sends ``data`` (then closes)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=PATIENCE)
        client.settimeout(None)
        peer, _ = listener.accept()
    done = threading.Event()

    def send() -> None:
        with contextlib.suppress(OSError):
            peer.sendall(data)
            if close:
                peer.shutdown(socket.SHUT_WR)
        done.wait(PATIENCE)
        peer.close()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield client
    finally:
        done.set()
        client.close()
        thread.join(PATIENCE)


def copy_all(receiver: receive.Receiver, limit: int = 1000) -> int:
    total = 0
    for _ in range(limit):
        count = receiver.receive(receive.BUFFER)
        if count == 0:
            break
        total += count
    receiver.finish()
    return total


def never_cancelled() -> None:
    return None


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("start", [0, 4097], ids=["fresh", "resumed"])
def test_both_paths_copy_and_hash_the_same(kind: type, start: int, tmp_path: Path) -> None:
    if issubclass(kind, SpliceReceiver) and not hasattr(os, "splice"):
        pytest.skip("os.splice is Linux only")
    prefix = os.urandom(start)
    path = tmp_path / "file.part"
    path.write_bytes(prefix)
    fd = os.open(path, os.O_RDWR)
    os.lseek(fd, start, os.SEEK_SET)
    hasher = blake3.blake3()
    with sending(BODY) as sock:
        receiver = kind(sock, fd, hasher, never_cancelled)
        try:
            assert copy_all(receiver) == len(BODY)
        finally:
            receiver.close()
            os.close(fd)
    assert path.read_bytes() == prefix + BODY
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()


def test_plain_tcp_gets_the_zero_copy_path(tmp_path: Path) -> None:
    if not hasattr(os, "splice"):
        pytest.skip("os.splice is Linux only")
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    with sending(b"x") as sock:
        receiver = open_receiver(sock, fd, None, never_cancelled)
        receiver.close()
    os.close(fd)
    assert isinstance(receiver, SpliceReceiver)


def test_a_kernel_that_refuses_splice_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox may forbid splice; the copy must still happen, by recv."""

    def refuse(*_args: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "splice", refuse, raising=False)
    path = tmp_path / "file.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    hasher = blake3.blake3()
    with sending(BODY) as sock:
        receiver = SpliceReceiver(sock, fd, hasher, never_cancelled)
        try:
            assert copy_all(receiver) == len(BODY)
        finally:
            receiver.close()
            os.close(fd)
    assert path.read_bytes() == BODY
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_shutdown_ends_a_blocked_receive(kind: type, tmp_path: Path) -> None:
    """A cancel shuts the socket down; the blocked call returns and the cancel is raised."""
    if issubclass(kind, SpliceReceiver) and not hasattr(os, "splice"):
        pytest.skip("os.splice is Linux only")
    cancelled = threading.Event()

    def check_cancelled() -> None:
        if cancelled.is_set():
            raise InterruptedError_("cancelled")

    fd = os.open(tmp_path / "file.part", os.O_RDWR | os.O_CREAT)
    with sending(b"first", close=False) as sock:
        receiver = kind(sock, fd, blake3.blake3(), check_cancelled)
        try:
            assert receiver.receive(receive.BUFFER) == 5
            outcome: list[BaseException] = []

            def blocked() -> None:
                try:
                    receiver.receive(receive.BUFFER)
                except BaseException as error:
                    outcome.append(error)

            thread = threading.Thread(target=blocked)
            thread.start()
            cancelled.set()
            sock.shutdown(socket.SHUT_RDWR)
            thread.join(PATIENCE)
            assert not thread.is_alive()
            assert len(outcome) == 1 and isinstance(outcome[0], InterruptedError_)
        finally:
            receiver.close()
            os.close(fd)


def test_hash_written_covers_unaligned_windows(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(BODY)
    fd = os.open(path, os.O_RDONLY)
    try:
        hasher = blake3.blake3()
        cuts = [0, 1, 4095, 4097, 2 * 1024 * 1024 + 3, len(BODY)]
        for start, end in itertools.pairwise(cuts):
            hash_written(fd, start, end, hasher)
    finally:
        os.close(fd)
    assert hasher.hexdigest() == blake3.blake3(BODY).hexdigest()
