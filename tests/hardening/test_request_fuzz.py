"""Arbitrary bytes, split arbitrarily, sent over real sockets to a running server.

The parser's own fuzzing (in memory) lives in ``tests/unit/test_protocol.py``;
this module proves the server around it: after each example settles the
server has as many tasks and descriptors as before, no handler task died
of an exception, it still answers a plain request, and no byte of the
secret beside its root ever reached a client.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from getfile_core import protocol
from getfile_core.protocol import MAGIC, Status
from getfile_core.server.fileserver import AccessRecord, FileServer, ServerLimits
from tests.support import (
    HostileTree,
    LoopThread,
    build_hostile_tree,
    exchange,
    extended_get,
    open_fd_count,
    split_response,
    wait_until_sync,
)

PATH_PIECES = [
    b"..",
    b"/",
    b".",
    b"%2e%2e",
    b"%2f",
    b"%00",
    b"%",
    b"%ff",
    b"\\",
    b"~",
    b"\xff",
    b"\xc0\xae",
    b"secret.txt",
    b"outside",
    b"hello.txt",
    b"sub",
    b"data.bin",
    b"link_out",
    b"link_dir_out",
    b"hardlink_secret",
    b"fifo",
    b"sock",
    b"loop_a",
    b"zero_device",
    b"folder",
    b"{ROOT}",
    b"{OUTSIDE}",
    b"a" * 300,
]
LINE_PIECES = [
    MAGIC,
    b"\x00",
    b"getfile/",
    b"1",
    b"2",
    b"0",
    b" ",
    b"GET",
    b"LIST",
    b"AUTH",
    b"offset=",
    b"limit=",
    b"after=",
    b"=",
    b"18446744073709551616",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    *PATH_PIECES,
]

#: Whole paths that reach the secret if any check is missing: fuzzing aims at them often.
TARGETS = [
    b"../outside/secret.txt",
    b"%2e%2e/outside/secret.txt",
    b"{OUTSIDE}/secret.txt",
    b"{ROOT}/../outside/secret.txt",
    b"link_out",
    b"chain_out",
    b"link_dir_out/secret.txt",
    b"sub/link_up/link_out",
    b"hardlink_secret",
    b"{ROOT}/hardlink_secret",
    b"sub/hardlink_secret2",
    b"link_root{OUTSIDE}/secret.txt",
    b"link_dir_out",
]
paths = st.one_of(
    st.sampled_from(TARGETS),
    st.lists(st.sampled_from(PATH_PIECES + TARGETS), min_size=1, max_size=8).map(b"".join),
)
well_formed_lines = st.builds(
    lambda verb, path, extra: MAGIC + b"1 " + verb + b" " + path + extra + b"\n",
    st.sampled_from([b"GET", b"LIST"]),
    paths,
    st.sampled_from(
        [
            b"",
            b" offset=0",
            b" offset=5",
            b" offset=99999999",
            b" limit=1",
            b" after=a",
            b" offset=1 offset=2",
            b" bogus=1",
        ]
    ),
)
payloads = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(LINE_PIECES), max_size=24).map(b"".join),
    well_formed_lines,
    paths.map(lambda p: p + b"\n"),  # legacy
    st.binary(max_size=80).map(lambda b: MAGIC + b),
)
endings = st.sampled_from(["half-close", "half-close", "half-close", "close", "reset"])


@dataclass
class Harness:
    tree: HostileTree
    loop: LoopThread
    server: FileServer
    fd_baseline: int
    #: Everything a client may legitimately receive as a file body.
    servable: list[bytes]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    tree = build_hostile_tree()
    loop = LoopThread()
    records: list[AccessRecord] = []
    server = FileServer(
        tree.root,
        "127.0.0.1",
        0,
        limits=ServerLimits(request_timeout=2, stall_timeout=5, grace=1),
        on_access=records.append,
    )
    loop.run(server.start())
    try:
        # Warm up (default executor, digests) before taking the baseline.
        for path in (b"hello.txt", b"sub/data.bin"):
            exchange(server.port_bound, [extended_get(path)])
        wait_until_sync(lambda: loop.call(lambda: server.connections) == 0, "warm-up done", 10)
        inside = [tree.root / "hello.txt", tree.root / "sub" / "data.bin"]
        if os.access(tree.root / "unreadable.bin", os.R_OK):  # root may: it is inside the root
            inside.append(tree.root / "unreadable.bin")
        servable = [path.read_bytes() for path in inside]
        yield Harness(tree, loop, server, open_fd_count(), servable)
    finally:
        loop.run(server.stop(grace=1))
        loop.close()
        shutil.rmtree(tree.base, ignore_errors=True)


def split(payload: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(payload)})
    edges = [0, *points, len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(edges)]


def check_answer(h: Harness, payload: bytes, ending: str, answer: bytes) -> None:
    assert h.tree.marker not in answer, f"secret leaked for {payload[:200]!r}"
    if payload.startswith(b"\x00") and ending == "half-close":
        assert answer, "an extended request got no answer at all"
    if not answer:
        return
    if payload.startswith(b"\x00"):
        response, body = split_response(answer)  # every extended answer is a well-formed head
        if response.status is Status.OK and response.entries is None:
            assert any(content.endswith(body) for content in h.servable), "served an unknown body"
        elif response.status is Status.OK:
            protocol.decode_listing(body, response.entries)
        else:
            assert body == b""
    else:
        assert answer in h.servable, f"legacy answer is no file of the root: {answer[:80]!r}"


def settle(h: Harness) -> None:
    """Wait until the server holds nothing more than it did before the example."""
    wait_until_sync(
        lambda: h.loop.call(lambda: h.server.connections) == 0, "connections closed", 10
    )
    wait_until_sync(lambda: h.loop.task_count() == 0, "no task left on the server's loop", 10)
    wait_until_sync(
        lambda: open_fd_count() <= h.fd_baseline,
        f"descriptors back to {h.fd_baseline} (now {open_fd_count()})",
        10,
    )
    assert h.loop.failures.errors == [], "a server task died of an exception"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads, cuts=st.lists(st.integers(0, 700), max_size=8), ending=endings)
def test_hostile_bytes_never_crash_leak_or_escape(
    harness: Harness, payload: bytes, cuts: list[int], ending: str
) -> None:
    payload = harness.tree.expand(payload)
    answer = exchange(harness.server.port_bound, split(payload, cuts), ending, timeout=10)
    check_answer(harness, payload, ending, answer)
    settle(harness)
    plain = exchange(harness.server.port_bound, [extended_get(b"hello.txt")])
    response, body = split_response(plain)
    assert response.status is Status.OK and body == harness.servable[0]
