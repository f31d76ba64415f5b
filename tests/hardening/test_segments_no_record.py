"""A segmented download that cannot write its ranges record (a full disk) keeps a ``.part``
that ``--resume`` can trust.

Found by hand on a 5 MiB tmpfs: ``get --segments 4`` of 12 MiB stopped at
"disk full" (exit 9) before the first record was written, and left a sparse
12 MiB ``.part`` with no record; ``--resume`` read it as a plain prefix (all
12 MiB "done"), failed the digest (exit 7) and removed the 5 MiB that were
good. Here the record's writer fails as it does on a full disk, and the
ranges stop because the link resets every connection after 1 MiB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client import Options, fetch, ranges, segments
from getfile_core.errors import GetfileError, LocalFileError
from tests.support import MIB, digest_of, write_random
from tests.support.links import Link, LinkEmulator

SIZE = 12 * MIB
PART = "big.bin.getfile-part"


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "served"
    folder.mkdir()
    return folder, write_random(folder / "big.bin", SIZE)


async def test_without_a_record_the_part_is_cut_to_what_came_in_order(
    served: tuple[Path, str], dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import running_server

    folder, digest = served

    def full(dir_fd: int, name: str, record: ranges.Record) -> None:
        raise LocalFileError(f"cannot write {name}: No space left on device")

    async with running_server(folder) as server:
        async with LinkEmulator(server.port_bound, Link(reset_every=MIB)) as relay:
            target = Target("127.0.0.1", relay.port, b"big.bin")
            with monkeypatch.context() as patch:
                patch.setattr(segments.ranges, "save", full)
                with pytest.raises(GetfileError):
                    await fetch(target, str(dest), options=Options(segments=4, retries=0))
        # Slice 0 brought its first MiB (less its head) in order; the other slices'
        # bytes lie beyond a hole, and without a record nothing could say so: the
        # .part ends where slice 0 stopped.
        assert sorted(p.name for p in dest.iterdir()) == [PART]
        kept = (dest / PART).stat().st_size
        assert MIB - 4096 < kept <= MIB, kept
        target = Target("127.0.0.1", server.port_bound, b"big.bin")
        result = await fetch(target, str(dest), resume=True, options=Options(segments=4))
    assert result.resumed_from == kept
    assert digest_of(dest / "big.bin") == digest
    assert sorted(p.name for p in dest.iterdir()) == ["big.bin"]
