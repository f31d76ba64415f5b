"""``Options.expected``: a published checksum checked by the client library itself.

The command line's flags are tested in ``test_cli_checksum``; here the
library's contract: ``FetchResult.checksum`` says what matched, a mismatch
is ``ChecksumMismatchError`` (an ``IntegrityError``) with the ``.part`` kept
and no final file, and a retry that resumes still checks the whole file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from getfile_core.checksums import ExpectedDigest
from getfile_core.cli.exit_codes import exit_code_for
from getfile_core.client import Options, fetch, part_name
from getfile_core.errors import ChecksumMismatchError, IntegrityError
from getfile_core.server.fileserver import FileServer
from tests.support import target_for, wait_until

DATA = "sub/data.bin"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_match_is_reported_in_the_result(
    server: FileServer, root: Path, dest: Path
) -> None:
    expected = ExpectedDigest("sha256", sha256_of(root / DATA))
    result = await fetch(target_for(server, DATA), str(dest), options=Options(expected=expected))
    assert result.checksum == f"sha256:{sha256_of(root / DATA)}"
    assert result.digest is not None and not result.legacy
    assert sha256_of(dest / "data.bin") == sha256_of(root / DATA)


async def test_no_checksum_asked_means_none_in_the_result(server: FileServer, dest: Path) -> None:
    result = await fetch(target_for(server, DATA), str(dest))
    assert result.checksum is None


async def test_a_mismatch_keeps_the_part_and_makes_no_final_file(
    server: FileServer, root: Path, dest: Path
) -> None:
    expected = ExpectedDigest("sha1", hashlib.sha1(b"not it").hexdigest(), source="SHA1SUMS line 3")
    with pytest.raises(ChecksumMismatchError) as caught:
        await fetch(target_for(server, DATA), str(dest), options=Options(expected=expected))
    assert isinstance(caught.value, IntegrityError) and exit_code_for(caught.value) == 7
    assert "(SHA1SUMS line 3)" in str(caught.value)
    assert not (dest / "data.bin").exists()
    assert (dest / part_name("data.bin")).read_bytes() == (root / DATA).read_bytes()
    # Not retried: a published digest that differs will differ again.
    await wait_until(lambda: len(server.log) >= 1, "the server logged the GET")
    assert [r.kind for r in server.log] == ["GET"]


async def test_a_resumed_download_is_checked_as_a_whole(
    server: FileServer, root: Path, dest: Path
) -> None:
    body = (root / DATA).read_bytes()
    (dest / part_name("data.bin")).write_bytes(body[:100_000])
    whole = ExpectedDigest("md5", hashlib.md5(body).hexdigest())
    result = await fetch(
        target_for(server, DATA), str(dest), resume=True, options=Options(expected=whole)
    )
    assert result.resumed_from == 100_000 and result.checksum == f"md5:{whole.hex}"
    # The tail alone would not match: the prefix really went through the check.
    (dest / "data.bin").unlink()
    (dest / part_name("data.bin")).write_bytes(body[:100_000])
    tail_only = ExpectedDigest("md5", hashlib.md5(body[100_000:]).hexdigest())
    with pytest.raises(ChecksumMismatchError):
        await fetch(
            target_for(server, DATA), str(dest), resume=True, options=Options(expected=tail_only)
        )
