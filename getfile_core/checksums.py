"""Checksums people publish: ``--checksum ALGO:HEX`` and SHA256SUMS-style files.

A download is checked against a published digest in the same pass that
writes it (``ExpectedDigest.hasher()`` is fed every received chunk), so a
4 GiB image is read from the network once and never again from disk.

Formats read by ``parse_checksum_file``:

- GNU ``HEX  NAME`` (text mode) and ``HEX *NAME`` (binary mode), as
  ``sha256sum`` and friends write them, including their escaped form (a
  line starting with ``\\`` whose name holds ``\\\\``, ``\\n`` or ``\\r``).
- BSD ``ALGO (NAME) = HEX``, as ``sha256sum --tag``, ``shasum --tag`` and
  ``openssl dgst`` (``SHA2-256(NAME)= HEX``) write them.
- ``b3sum`` output, which is GNU's layout with a 64-digit BLAKE3 digest.
- Blank lines, ``#`` comments and an OpenPGP clear-signed wrapper (Fedora's
  ``CHECKSUM`` files) are skipped. The signature is NOT verified here.

A GNU line does not name its algorithm, so it is guessed from the digest's
length. 64 hex digits are both SHA-256 and BLAKE3; the rule, in order:

1. an explicit algorithm (``--checksum-algo``) wins, and a line of another
   length is an error;
2. a file name that says BLAKE3 (``B3SUMS``, ``*.b3``, anything containing
   ``b3sum`` or ``blake3``, any case) makes 64 digits BLAKE3;
3. otherwise 64 digits are SHA-256, by far the most published (Debian,
   Ubuntu, Fedora, Arch, Alpine, Python and Node release pages).

Cost of checking in the pass, measured on the project's 2-core VM (1 MiB
updates, one core): md5 792 MiB/s, sha1 2053, sha256 1851, sha512 795,
blake3 7933. Over any real network that is free; on loopback (about 3300
MB/s) a sha256 check is what limits the download, which is still cheaper
than reading a 4 GiB file a second time from a cold disk.

Hostile files are bounded: at most ``MAX_FILE_BYTES`` and ``MAX_LINE_CHARS``
per line; every malformed line is a one-line error naming its number.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from getfile_core.errors import UsageError

#: Hex digits per algorithm. Order matters for guessing: the first algorithm
#: of a length is the guess (sha256 before blake3, see the module docstring).
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "blake3": 64}
ALGORITHMS = tuple(HEX_LENGTHS)

#: SHA256SUMS of a whole Debian release is about 30 KiB; 4 MiB is ~40 000 lines.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: A 128-digit digest, a separator and a name up to Linux's PATH_MAX (4096 bytes).
MAX_LINE_CHARS = 4400

#: Spellings of algorithm names seen in the wild, folded to ours.
_ALIASES = {
    "sha-256": "sha256",
    "sha2-256": "sha256",
    "sha-512": "sha512",
    "sha2-512": "sha512",
    "sha-1": "sha1",
    "b3": "blake3",
}
_HEX = re.compile(r"[0-9a-fA-F]+")
_GNU = re.compile(r"(?P<hex>[0-9a-fA-F]+) (?P<mode>[ *])(?P<name>.+)")
_BSD = re.compile(r"(?P<algo>[A-Za-z0-9-]{2,16}) ?\((?P<name>.+)\) ?= ?(?P<hex>[0-9a-fA-F]+)")
_BLAKE3_HINT = re.compile(r"b3sum|blake3|^b3sums|\.b3$", re.I)


class ChecksumError(UsageError):
    """A checksum given by the user is malformed: a one-line reason (exit 2)."""


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


def normalise_algorithm(name: str) -> str:
    """``SHA-256``, ``sha2-256``, ``SHA256`` → ``sha256``; ``ChecksumError`` for an unknown one."""
    folded = name.strip().lower()
    folded = _ALIASES.get(folded, folded)
    if folded not in HEX_LENGTHS:
        shown = name if len(name) <= 20 else name[:20] + "…"
        raise ChecksumError(
            f"unknown checksum algorithm {shown!r} (known: {', '.join(ALGORITHMS)})"
        )
    return folded


@dataclass(frozen=True)
class ExpectedDigest:
    """A digest the downloaded bytes must have; ``name`` is the file it was published for."""

    algorithm: str
    hex: str
    name: str | None = None
    #: Where it came from, for messages: ``--checksum`` or ``SHA256SUMS line 12``.
    source: str = "--checksum"

    def __post_init__(self) -> None:
        algorithm = normalise_algorithm(self.algorithm)
        object.__setattr__(self, "algorithm", algorithm)
        if not _HEX.fullmatch(self.hex) or len(self.hex) != HEX_LENGTHS[algorithm]:
            raise ChecksumError(
                f"{self.source}: a {algorithm} digest is {HEX_LENGTHS[algorithm]} hex digits"
            )
        object.__setattr__(self, "hex", self.hex.lower())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> DigestCheck:
        """A fresh incremental check: feed it every byte of the file in order."""
        return DigestCheck(self)


class DigestCheck:
    """Hashes a download as it arrives; ``matches()`` once the last byte is in."""

    def __init__(self, expected: ExpectedDigest) -> None:
        self.expected = expected
        self._hasher = new_hasher(expected.algorithm)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hasher.update(data)

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def matches(self) -> bool:
        return self.hexdigest() == self.expected.hex

    def mismatch_message(self) -> str:
        """One line for a failed check, both digests in full (people compare them by eye)."""
        return (
            f"{self.expected.algorithm} mismatch: expected {self.expected.hex} "
            f"({self.expected.source}), got {self.hexdigest()}"
        )


class HashTogether:
    """Feeds one pass of bytes to several hashers; reads as the first one.

    How a published checksum rides along with the BLAKE3 digest: the body
    loop, the splice read-back and a resume's prefix hash call ``update``
    once, and every hasher sees each byte, so the file is never read twice.
    ``hexdigest`` is the first hasher's (the one the wire format checks).
    """

    def __init__(self, first: Hasher, *others: Hasher | DigestCheck) -> None:
        self.first = first
        self.all = (first, *others)

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        for hasher in self.all:
            hasher.update(data)

    def hexdigest(self) -> str:
        return self.first.hexdigest()


def require_match(check: DigestCheck | None, *, kept: str, vouched: bool) -> str | None:
    """After the last byte: ``algo:hex`` when ``check`` matched (None: no checksum asked).

    A mismatch raises ``ChecksumMismatchError`` (exit 7) saying that ``kept``
    (the ``.part``) stays; ``vouched``: the server's own digest matched, so
    the file arrived intact and is simply not the one published.
    """
    if check is None:
        return None
    if not check.matches():
        from getfile_core.errors import ChecksumMismatchError

        whose = (
            "the server's file is not the published one (it arrived intact)"
            if vouched
            else "the file differs from the published one"
        )
        raise ChecksumMismatchError(
            f"{check.mismatch_message()}: {whose}; kept {kept} to inspect "
            "(--overwrite downloads it again)"
        )
    return str(check.expected)


def hashing_with(hasher: Hasher | None, expected: ExpectedDigest | None) -> tuple:
    """``(feed, check)``: what the body loop updates, and the published check riding on it.

    ``feed`` is ``hasher`` alone without ``expected``, the check alone
    without ``hasher`` (a legacy server), or both at once.
    """
    check = expected.hasher() if expected is not None else None
    if check is None:
        return hasher, None
    if hasher is None:
        return check, check
    return HashTogether(hasher, check), check


def new_hasher(algorithm: str) -> Hasher:
    """hashlib (which releases the GIL for updates over 2 KiB) or blake3."""
    algorithm = normalise_algorithm(algorithm)
    if algorithm == "blake3":
        import blake3  # a dependency of getfile_core already (digest.py)

        return blake3.blake3()
    # md5 and sha1 are asked for because publishers still use them, not for security.
    return hashlib.new(algorithm, usedforsecurity=algorithm not in ("md5", "sha1"))


def parse_checksum(text: str, *, algorithm: str | None = None) -> ExpectedDigest:
    """``--checksum ALGO:HEX`` (or a bare HEX) → ``ExpectedDigest``; ``ChecksumError`` if bad.

    A bare HEX, as people paste it from a release page, takes ``algorithm``
    (``--checksum-algo``) or is guessed from its length like a GNU line
    (64 digits: sha256). An ``ALGO:`` prefix must agree with ``algorithm``.
    """
    text = text.strip()
    if not 0 < len(text) <= 200:
        raise ChecksumError("--checksum takes ALGO:HEX, e.g. sha256:9f86d081…")
    forced = normalise_algorithm(algorithm) if algorithm else None
    named, _, digits = text.rpartition(":")
    if named:
        named = normalise_algorithm(named)
        if forced and forced != named:
            raise ChecksumError(f"--checksum is {named}, but --checksum-algo is {forced}")
    elif not _HEX.fullmatch(digits):
        raise ChecksumError("--checksum takes ALGO:HEX, e.g. sha256:9f86d081…")
    chosen = named or forced or _guess_algorithm(len(digits), None, "--checksum")
    return ExpectedDigest(chosen, digits.strip(), source="--checksum")


def expected_digest(
    name: str,
    *,
    checksum: str | None = None,
    checksum_file: str | Path | None = None,
    algorithm: str | None = None,
) -> ExpectedDigest | None:
    """What the CLI's ``--checksum``, ``--checksum-file`` and ``--checksum-algo`` ask for
    the file ``name``, or None when neither was given. Both at once is an error."""
    if checksum is not None and checksum_file is not None:
        raise ChecksumError("give --checksum or --checksum-file, not both")
    if checksum is not None:
        return parse_checksum(checksum, algorithm=algorithm)
    if checksum_file is not None:
        return find_expected(load_checksum_file(checksum_file, algorithm=algorithm), name)
    if algorithm is not None:
        raise ChecksumError("--checksum-algo needs --checksum or --checksum-file")
    return None


def algorithm_from_file_name(file_name: str | None) -> str | None:
    """``blake3`` when a checksum file's name says so (``B3SUMS``, ``x.b3``), else None."""
    if file_name and _BLAKE3_HINT.search(Path(file_name).name):
        return "blake3"
    return None


def parse_checksum_file(
    text: str, *, file_name: str = "checksum file", algorithm: str | None = None
) -> list[ExpectedDigest]:
    """Every entry of a checksum file's text; ``ChecksumError`` naming the first bad line.

    ``file_name`` is used in messages and as the BLAKE3 hint; ``algorithm``
    is ``--checksum-algo``, which decides for GNU lines and must agree with BSD ones.
    """
    forced = normalise_algorithm(algorithm) if algorithm else None
    hinted = algorithm_from_file_name(file_name)
    label = Path(file_name).name or "checksum file"
    entries = []
    for number, line in _content_lines(text, label):
        where = f"{label} line {number}"
        entries.append(_parse_line(line, where, forced, hinted))
    if not entries:
        raise ChecksumError(f"{label}: no checksums in it")
    return entries


def load_checksum_file(path: str | Path, *, algorithm: str | None = None) -> list[ExpectedDigest]:
    """Read and parse a checksum file, bounded to ``MAX_FILE_BYTES``."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ChecksumError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ChecksumError(f"{path.name}: larger than {MAX_FILE_BYTES // 1024 // 1024} MiB")
    if b"\0" in raw:
        raise ChecksumError(f"{path.name}: not a checksum file (binary content)")
    text = raw.decode("utf-8", errors="surrogateescape")
    return parse_checksum_file(text, file_name=str(path), algorithm=algorithm)


def find_expected(entries: Iterable[ExpectedDigest], name: str) -> ExpectedDigest:
    """The entry for the downloaded file ``name``.

    An entry matches when its name, without a leading ``./``, equals ``name``;
    failing that, when its last path component does (``dir/x.iso`` for
    ``x.iso``), provided exactly one does. Anything else is an error rather
    than a guess: checking against the wrong line would fail a good download.
    """
    entries = list(entries)
    wanted = name.removeprefix("./")
    exact = [e for e in entries if e.name is not None and e.name.removeprefix("./") == wanted]
    if not exact:
        base = wanted.rsplit("/", 1)[-1]
        exact = [e for e in entries if e.name is not None and e.name.rsplit("/", 1)[-1] == base]
    digests = {(e.algorithm, e.hex) for e in exact}
    if len(digests) == 1:
        return exact[0]
    source = entries[0].source.rsplit(" line ", 1)[0] if entries else "checksum file"
    if not exact:
        raise ChecksumError(f"{source} has no line for {name!r}")
    raise ChecksumError(f"{source} has {len(exact)} different lines for {name!r}")


def _content_lines(text: str, label: str) -> Iterator[tuple[int, str]]:
    """Numbered lines worth parsing: no blanks, comments or OpenPGP armour."""
    signed = False  # inside a clear-signed message's header block
    in_signature = False
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if len(raw) > MAX_LINE_CHARS:
            raise ChecksumError(f"{label} line {number}: longer than {MAX_LINE_CHARS} characters")
        line = raw.removesuffix("\r")
        if line == "-----BEGIN PGP SIGNED MESSAGE-----":
            signed = True
            continue
        if signed:
            signed = line != ""  # armour headers ("Hash: SHA256") end at a blank line
            continue
        if line == "-----BEGIN PGP SIGNATURE-----":
            in_signature = True
        if in_signature:
            in_signature = line != "-----END PGP SIGNATURE-----"
            continue
        line = line.removeprefix("- ")  # dash-escaping of clear-signed text
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def _parse_line(line: str, where: str, forced: str | None, hinted: str | None) -> ExpectedDigest:
    escaped = line.startswith("\\")
    body = line[1:] if escaped else line
    bsd = _BSD.fullmatch(body)
    if bsd is not None and not _GNU.fullmatch(body):
        algorithm = normalise_algorithm_at(bsd["algo"], where)
        if forced and forced != algorithm:
            raise ChecksumError(f"{where}: a {algorithm} line, but {forced} was asked for")
        name = _unescape(bsd["name"], where) if escaped else bsd["name"]
        return ExpectedDigest(algorithm, bsd["hex"], name, where)
    gnu = _GNU.fullmatch(body)
    if gnu is None:
        raise ChecksumError(f"{where}: not a checksum line (HEX  NAME or ALGO (NAME) = HEX)")
    digits = gnu["hex"]
    algorithm = forced or _guess_algorithm(len(digits), hinted, where)
    name = _unescape(gnu["name"], where) if escaped else gnu["name"]
    return ExpectedDigest(algorithm, digits, name, where)


def normalise_algorithm_at(name: str, where: str) -> str:
    try:
        return normalise_algorithm(name)
    except ChecksumError as error:
        raise ChecksumError(f"{where}: {error}") from None


def _guess_algorithm(length: int, hinted: str | None, where: str) -> str:
    if hinted and HEX_LENGTHS[hinted] == length:
        return hinted
    for algorithm, digits in HEX_LENGTHS.items():
        if digits == length:
            return algorithm
    raise ChecksumError(f"{where}: {length} hex digits is no known digest (md5 32 … sha512 128)")


def _unescape(name: str, where: str) -> str:
    """GNU's escaped names: ``\\\\`` → ``\\``, ``\\n`` → newline, ``\\r`` → CR."""
    out = []
    pieces = iter(name)
    for char in pieces:
        if char != "\\":
            out.append(char)
            continue
        following = next(pieces, "")
        replacement = {"\\": "\\", "n": "\n", "r": "\r"}.get(following)
        if replacement is None:
            raise ChecksumError(f"{where}: bad escape in the file name")
        out.append(replacement)
    return "".join(out)
