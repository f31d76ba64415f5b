"""A proxy cuts the download at offsets hypothesis picks; resuming always ends identical.

Each example is a fresh download through the proxy, cut (by FIN or by RST)
at one offset per attempt, then resumed with ``fetch(resume=True)`` until it
completes. Between attempts nothing corrupt may exist: no final file, and
the ``.part`` is always a prefix of the source.

Cuts start at offset 1. A cut before the first byte looks exactly like the
book's server refusing an extended request (silence, then close), so a
client left to auto-detect falls back to the legacy dialect, which has no
size to notice a later cut with; that trade-off is the client's to make
and is reported, not tested here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from getfile_core.address import Target
from getfile_core.client.api import fetch
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.state import Options
from getfile_core.errors import GetfileError
from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support import CuttingProxy, LoopThread, Plan, wait_until_sync

SIZE = 3 * 1024 * 1024 + 12345
OPTIONS = Options(connect_timeout=5, timeout=10, retries=0)


@dataclass
class Rig:
    loop: LoopThread
    server: FileServer
    proxy: CuttingProxy
    source: bytes
    scratch: Path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("cutting")
    root = base / "served"
    root.mkdir()
    source = os.urandom(SIZE)
    (root / "src.bin").write_bytes(source)
    loop = LoopThread()
    server = FileServer(root, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    loop.run(server.start())
    proxy = loop.run(CuttingProxy(server.port_bound).start())
    try:
        yield Rig(loop, server, proxy, source, base)
    finally:
        loop.run(proxy.close())
        loop.run(server.stop(grace=1))
        loop.close()


def attempt(rig: Rig, dest: Path) -> GetfileError | None:
    target = Target("127.0.0.1", rig.proxy.port, b"src.bin")
    try:
        asyncio.run(fetch(target, str(dest), resume=True, options=OPTIONS))
    except GetfileError as error:
        return error
    return None


def check_nothing_corrupt(rig: Rig, dest: Path) -> None:
    assert not (dest / "src.bin").exists(), "a final file appeared after a cut"
    part = dest / ("src.bin" + PART_SUFFIX)
    if part.exists():
        kept = part.read_bytes()
        assert rig.source.startswith(kept), "the .part is not a prefix of the source"


cuts = st.lists(
    st.tuples(
        st.one_of(st.integers(1, 400), st.integers(1, SIZE + 400)),  # head cuts too
        st.booleans(),  # reset (RST) rather than FIN
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cuts=cuts)
def test_any_number_of_cuts_then_resume_yields_the_source(
    rig: Rig, cuts: list[tuple[int, bool]]
) -> None:
    dest = Path(tempfile.mkdtemp(dir=rig.scratch))
    try:
        finished = False
        interruptions = 0
        for offset, reset in cuts:
            rig.proxy.plans.append(Plan(cut_at=offset, reset=reset))
            error = attempt(rig, dest)
            assert not rig.proxy.plans, "the client opened a second connection"
            if error is None:
                finished = True
                break
            interruptions += 1
            event(f"cut: {error.kind}")
            assert error.kind in ("interrupted", "protocol"), f"{error.kind}: {error}"
            assert "\n" not in str(error)
            check_nothing_corrupt(rig, dest)
        if not finished:
            assert attempt(rig, dest) is None
        event(f"identical after {interruptions} interruption(s)")
        assert (dest / "src.bin").read_bytes() == rig.source
        assert not (dest / ("src.bin" + PART_SUFFIX)).exists()
    finally:
        rig.proxy.plans.clear()
        shutil.rmtree(dest, ignore_errors=True)


def test_the_server_is_left_clean_after_all_the_cuts(rig: Rig) -> None:
    """Runs after the property (same module rig): every cut connection was let go."""
    wait_until_sync(lambda: rig.loop.call(lambda: rig.server.connections) == 0, "server idle", 15)
    assert rig.loop.call(lambda: rig.server.active_transfers) == 0
    assert rig.loop.failures.errors == []
