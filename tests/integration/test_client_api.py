"""The client's public API: typed phases, the shared contract's names, and no swallowed bugs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import getfile_core
import getfile_core.client
from getfile_core.client.api import Progress, fetch
from getfile_core.client.state import Phase, RetryNotice
from getfile_core.server.fileserver import FileServer
from tests.support import join_transfer_threads, target_for


async def test_a_bug_in_the_progress_callback_is_raised_not_swallowed(
    server: FileServer, root: Path, dest: Path
) -> None:
    (root / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))

    def broken_handler(progress: Progress) -> None:
        raise ZeroDivisionError("a bug in the app's handler")

    with pytest.raises(ZeroDivisionError, match="a bug in the app"):
        async with asyncio.timeout(30):
            await fetch(target_for(server, "big.bin"), str(dest), on_progress=broken_handler)
    assert not (dest / "big.bin").exists()
    assert join_transfer_threads() == [], "the transfer thread kept running"


async def test_progress_carries_a_typed_phase(server: FileServer, dest: Path) -> None:
    seen: list[Progress] = []
    await fetch(target_for(server, "hello.txt"), str(dest), on_progress=seen.append)
    assert all(isinstance(p.phase, Phase) for p in seen)
    assert seen[-1].phase is Phase.DONE and seen[-1].phase == "done"
    assert seen[-1].retry is None and seen[-1].note == ""


def test_the_shared_contract_is_public() -> None:
    for module in (getfile_core, getfile_core.client):
        assert module.RetryNotice is RetryNotice and "RetryNotice" in module.__all__
        assert module.Phase is Phase
        assert module.part_name("x") == "x" + module.PART_SUFFIX
    notice = RetryNotice(attempt=2, attempts=10, delay=4.0, reason="connection reset")
    with pytest.raises(AttributeError):
        notice.delay = 1.0  # type: ignore[misc]
    assert {p.value for p in Phase} == {
        "queued", "connecting", "waiting", "downloading", "verifying",
        "retrying", "done", "failed", "cancelled",
    }  # fmt: skip


def test_download_is_the_function_even_after_every_module_is_loaded() -> None:
    """A submodule named like an exported function would shadow it on the package."""
    import getfile_core.client.api  # noqa: F401  (loads every client module)
    from getfile_core.client import download, fetch, list_folder

    assert callable(download) and callable(fetch) and callable(list_folder)
    assert download.__module__ == "getfile_core.client.get"
