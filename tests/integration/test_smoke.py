"""The one path everything else builds on: our client fetches from our server."""

from pathlib import Path

from getfile_core.client.api import fetch
from tests.support import target_for


async def test_fetch_small_file(server, root: Path, dest: Path) -> None:
    result = await fetch(target_for(server, "hello.txt"), str(dest))
    assert (dest / "hello.txt").read_bytes() == (root / "hello.txt").read_bytes()
    assert result.digest is not None and result.digest.startswith("blake3:")
    assert not result.legacy
    assert [r.status for r in server.log] == ["ok"]
