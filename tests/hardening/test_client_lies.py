"""Two lies the client used to believe (issue 10 #8, #10).

* A getfile ``200 ok`` without a digest: the file, and the prefix a resume
  started from, would be saved unverified. Only a legacy server (which
  cannot send one) may leave a download unverified, and ``FetchResult``
  says so with ``digest is None``.
* ``102 processing`` heads forever: each one used to restart the head
  deadline, so the real bound was 3600 x ``--timeout``, not the hour the
  protocol documents. The cap is ``session.MAX_PREPARE_SECONDS``, shortened
  here to one second.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client import session as session_module
from getfile_core.client.api import Progress, fetch
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.state import Options, Phase
from getfile_core.errors import ProtocolError, TimeoutError_
from getfile_core.protocol import Response, Status
from tests.support import scripted_server

BOUND = 30
PROCESSING = b"getfile/1 102 processing\nmessage: hashing big.iso (40%)\n\n"


def local(port: int, path: str) -> Target:
    return Target("127.0.0.1", port, path.encode())


async def test_an_ok_without_a_digest_is_refused(dest: Path) -> None:
    body = os.urandom(10_000)
    head = protocol.encode_response_head(Response(Status.OK, size=len(body)))

    async def undigested(_line: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(head + body)

    async with scripted_server(undigested) as port:
        with pytest.raises(ProtocolError, match="no digest"):
            async with asyncio.timeout(BOUND):
                await fetch(local(port, "f.bin"), str(dest), options=Options(retries=0))
    assert not (dest / "f.bin").exists()
    assert not (dest / ("f.bin" + PART_SUFFIX)).exists()


async def test_processing_heads_cannot_hold_the_client_past_the_cap(
    dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "MAX_PREPARE_SECONDS", 1.0)
    notes: list[str] = []

    async def forever_preparing(_line: bytes, writer: asyncio.StreamWriter) -> None:
        for _ in range(int(BOUND / 0.1)):
            writer.write(PROCESSING)
            await writer.drain()
            await asyncio.sleep(0.1)  # the server's pace, not a synchronisation

    def on_progress(progress: Progress) -> None:
        if progress.phase is Phase.WAITING and progress.note:
            notes.append(progress.note)

    options = Options(timeout=0.5, retries=0)
    async with scripted_server(forever_preparing) as port:
        with pytest.raises(TimeoutError_, match="still preparing"):
            async with asyncio.timeout(BOUND / 2):
                await fetch(
                    local(port, "big.iso"), str(dest), options=options, on_progress=on_progress
                )
    assert notes and notes[-1] == "server is hashing big.iso (40%)"
