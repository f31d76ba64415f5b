"""Fixtures for driving the app; the helpers live in ``tests.support.tui``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import StallingLegacyPeer


@pytest.fixture
async def stalling_peer() -> AsyncIterator[tuple[StallingLegacyPeer, int]]:
    peer = StallingLegacyPeer()
    port = await peer.start()
    try:
        yield peer, port
    finally:
        await peer.stop()
