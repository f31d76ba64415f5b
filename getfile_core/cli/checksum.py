"""``get --checksum``, ``--checksum-file``, ``--checksum-algo``: one published digest per URL.

Everything is read and matched before the first byte is fetched, so a typo
in a digest or a checksum file without a line for one of the URLs is one
line and exit 2, and no download starts. Each URL is matched by its path
(``dir/x.iso``), then by its base name (``x.iso``), as ``find_expected`` does.
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from getfile_core.address import Target
    from getfile_core.checksums import ExpectedDigest
    from getfile_core.client import Options


def add_checksum_flags(get: argparse.ArgumentParser) -> None:
    group = get.add_argument_group("published checksums (verified in the same pass)")
    group.add_argument(
        "--checksum",
        metavar="ALGO:HEX",
        help="the file must have this digest: sha256:HEX, sha512, sha1, md5, blake3 "
        "(a bare HEX: guessed from its length, 64 digits = sha256)",
    )
    group.add_argument(
        "--checksum-file",
        metavar="FILE",
        help="SHA256SUMS-style file (GNU, BSD --tag or b3sum lines): each URL by its name",
    )
    group.add_argument(
        "--checksum-algo",
        metavar="ALGO",
        help="the algorithm of bare digests (64 hex digits: sha256 or blake3)",
    )


def published_checksums(args: argparse.Namespace, targets: list[Target]) -> None:
    """Read the checksum flags into ``args.expected`` (a digest per target); ``ChecksumError``.

    ``getfile_core.checksums`` (hashlib, re) is imported only when a flag asks
    for it: ``main`` imports this module for every command (start-up time).
    """
    checksum = getattr(args, "checksum", None)
    checksum_file = getattr(args, "checksum_file", None)
    algorithm = getattr(args, "checksum_algo", None)
    expected: dict[Target, ExpectedDigest] = {}
    if checksum is None and checksum_file is None and algorithm is None:
        args.expected = expected
        return
    from getfile_core.checksums import (
        ChecksumError,
        find_expected,
        load_checksum_file,
        parse_checksum,
    )

    if checksum is not None and checksum_file is not None:
        raise ChecksumError("give --checksum or --checksum-file, not both")
    if checksum is not None:
        if len(set(targets)) > 1:
            raise ChecksumError("--checksum is one file's digest: use --checksum-file for several")
        expected = dict.fromkeys(targets, parse_checksum(checksum, algorithm=algorithm))
    elif checksum_file is not None:
        entries = load_checksum_file(checksum_file, algorithm=algorithm)
        expected = {t: find_expected(entries, t.display_path.lstrip("/")) for t in targets}
    elif algorithm is not None:
        raise ChecksumError("--checksum-algo needs --checksum or --checksum-file")
    args.expected = expected


def with_checksum(options: Options, args: argparse.Namespace, target: Target) -> Options:
    """``options`` for ``target``: its own ``expected`` digest, everything else shared."""
    expected = getattr(args, "expected", {}).get(target)
    if expected is None:
        return options
    return options.replace(expected=expected)


def refuse_with_tree(args: argparse.Namespace) -> None:
    """``get -r`` with a checksum flag: an error, rather than a check silently not made."""
    if any(getattr(args, flag, None) for flag in ("checksum", "checksum_file", "checksum_algo")):
        from getfile_core.errors import UsageError

        raise UsageError("--checksum and --checksum-file check single files, not a folder (-r)")
