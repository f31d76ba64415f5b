"""Published checksums: --checksum ALGO:HEX, GNU/BSD/b3sum files, bounded and hostile input."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from getfile_core.checksums import (
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    ChecksumError,
    ExpectedDigest,
    HashTogether,
    expected_digest,
    find_expected,
    load_checksum_file,
    parse_checksum,
    parse_checksum_file,
)
from getfile_core.errors import UsageError

DATA = b"the quick brown fox\n" * 1000
SHA256 = hashlib.sha256(DATA).hexdigest()
B3 = blake3.blake3(DATA).hexdigest()


def test_checksum_option_parses_and_normalises_case():
    expected = parse_checksum(f"SHA-256:{SHA256.upper()}")
    assert (expected.algorithm, expected.hex) == ("sha256", SHA256)
    assert str(expected) == f"sha256:{SHA256}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nothex", "ALGO:HEX"),
        ("", "ALGO:HEX"),
        ("abcd", "4 hex digits is no known digest"),
        ("sha256:abc", "64 hex digits"),
        (f"sha256:{'g' * 64}", "64 hex digits"),
        (f"crc32:{'0' * 8}", "unknown checksum algorithm"),
        (f"md5:{SHA256}", "32 hex digits"),
        ("sha256:" + "0" * 500, "ALGO:HEX"),
        (f"sha256:{SHA256}:x", "unknown checksum algorithm"),
    ],
)
def test_bad_checksum_option_is_one_line_usage_error(text: str, reason: str):
    with pytest.raises(ChecksumError, match=reason) as caught:
        parse_checksum(text)
    assert isinstance(caught.value, UsageError)
    assert "\n" not in str(caught.value)


def test_bare_hex_is_guessed_or_takes_the_algorithm():
    assert parse_checksum(f"  {SHA256}\n").algorithm == "sha256"
    assert parse_checksum(B3, algorithm="blake3").algorithm == "blake3"
    assert parse_checksum("0" * 128).algorithm == "sha512"
    with pytest.raises(ChecksumError, match="is sha256, but --checksum-algo is blake3"):
        parse_checksum(f"sha256:{SHA256}", algorithm="BLAKE3")


def test_expected_digest_combines_the_three_options(tmp_path: Path):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{SHA256}  fox.txt\n{'0' * 64}  other\n")
    assert expected_digest("fox.txt") is None
    assert expected_digest("fox.txt", checksum=f"sha256:{SHA256}").hex == SHA256
    found = expected_digest("fox.txt", checksum_file=sums)
    assert (found.hex, found.source) == (SHA256, "SHA256SUMS line 1")
    with pytest.raises(ChecksumError, match="not both"):
        expected_digest("fox.txt", checksum=SHA256, checksum_file=sums)
    with pytest.raises(ChecksumError, match="needs --checksum"):
        expected_digest("fox.txt", algorithm="sha256")
    with pytest.raises(ChecksumError, match="SHA256SUMS has no line for 'missing'"):
        expected_digest("missing", checksum_file=sums)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512", "blake3"])
def test_hasher_fed_in_pieces_matches_the_whole(algorithm: str):
    if algorithm == "blake3":
        digest = blake3.blake3(DATA).hexdigest()
    else:
        digest = hashlib.new(algorithm, DATA).hexdigest()
    check = ExpectedDigest(algorithm, digest).hasher()
    view = memoryview(DATA)
    for start in range(0, len(DATA), 4093):
        check.update(view[start : start + 4093])
    assert check.matches()


def test_hash_together_feeds_every_hasher_once_and_reads_as_the_first():
    wire = blake3.blake3()
    check = ExpectedDigest("sha256", SHA256).hasher()
    together = HashTogether(wire, check)
    view = memoryview(DATA)
    for start in range(0, len(DATA), 5000):
        together.update(view[start : start + 5000])
    assert together.hexdigest() == B3 == wire.hexdigest()
    assert check.matches()


def test_hasher_reports_a_mismatch_with_both_digests():
    check = parse_checksum(f"sha256:{SHA256}").hasher()
    check.update(DATA + b"!")
    assert not check.matches()
    message = check.mismatch_message()
    assert SHA256 in message and check.hexdigest() in message and "\n" not in message


def _tool_output(tmp_path: Path, *command: str) -> str:
    (tmp_path / "fox.txt").write_bytes(DATA)
    return subprocess.run(
        [*command, "fox.txt"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize(
    ("command", "algorithm"),
    [
        (("sha256sum",), "sha256"),
        (("sha256sum", "--binary"), "sha256"),
        (("sha256sum", "--tag"), "sha256"),
        (("sha512sum",), "sha512"),
        (("sha1sum",), "sha1"),
        (("md5sum",), "md5"),
        (("md5sum", "--tag"), "md5"),
        (("openssl", "dgst", "-sha256"), "sha256"),
        (("openssl", "dgst", "-sha512"), "sha512"),
    ],
)
def test_real_tool_output_is_read(tmp_path: Path, command: tuple[str, ...], algorithm: str):
    entries = parse_checksum_file(_tool_output(tmp_path, *command), file_name="SUMS")
    expected = find_expected(entries, "fox.txt")
    assert expected.algorithm == algorithm
    check = expected.hasher()
    check.update(DATA)
    assert check.matches()


def test_escaped_gnu_name_with_newline(tmp_path: Path):
    weird = "we\nird"
    (tmp_path / weird).write_bytes(DATA)
    text = subprocess.run(
        ["sha256sum", weird], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert text.startswith("\\")
    assert find_expected(parse_checksum_file(text), weird).hex == SHA256


def test_b3sum_output_is_blake3_when_the_file_name_says_so():
    line = f"{B3}  fox.txt\n"
    for name in ("B3SUMS", "fox.txt.b3", "release.b3sum", "BLAKE3SUMS.txt"):
        assert parse_checksum_file(line, file_name=name)[0].algorithm == "blake3"
    # Without a hint, 64 digits are sha256 (the documented default).
    assert parse_checksum_file(line, file_name="SUMS")[0].algorithm == "sha256"
    assert parse_checksum_file(line, algorithm="blake3")[0].algorithm == "blake3"


def test_explicit_algorithm_must_agree_with_the_line():
    with pytest.raises(ChecksumError, match="line 2: a sha256 digest is 64"):
        parse_checksum_file(f"{SHA256}  a\n{'0' * 32}  b\n", algorithm="sha256")
    with pytest.raises(ChecksumError, match="line 1: a md5 line, but sha256"):
        parse_checksum_file(f"MD5 (a) = {'0' * 32}\n", algorithm="sha256")


def test_comments_blanks_crlf_bom_and_clear_signature_are_skipped():
    text = (
        "\ufeff-----BEGIN PGP SIGNED MESSAGE-----\r\n"
        "Hash: SHA256\r\n"
        "\r\n"
        "# Fedora-x.iso: 2147483648 bytes\r\n"
        f"SHA256 (Fedora-x.iso) = {SHA256}\r\n"
        "\r\n"
        "-----BEGIN PGP SIGNATURE-----\r\n"
        "\r\n"
        "iQIzBAEBCAAdFiEE\r\n"
        "-----END PGP SIGNATURE-----\r\n"
    )
    entries = parse_checksum_file(text, file_name="CHECKSUM")
    assert [(e.name, e.hex) for e in entries] == [("Fedora-x.iso", SHA256)]
    assert entries[0].source == "CHECKSUM line 5"


def test_find_expected_prefers_exact_then_unique_basename():
    text = f"{SHA256}  ./x.iso\n{'1' * 64}  other/y.iso\n{'2' * 64}  a/z\n{'3' * 64}  b/z\n"
    entries = parse_checksum_file(text, file_name="SHA256SUMS")
    assert find_expected(entries, "x.iso").hex == SHA256
    assert find_expected(entries, "y.iso").hex == "1" * 64
    with pytest.raises(ChecksumError, match="SHA256SUMS has 2 different lines for 'z'"):
        find_expected(entries, "z")
    with pytest.raises(ChecksumError, match="SHA256SUMS has no line for 'missing'"):
        find_expected(entries, "missing")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no checksums"),
        ("# only a comment\n", "no checksums"),
        ("hello world\n", "line 1: not a checksum line"),
        (f"{SHA256}  ok\nnonsense\n", "line 2: not a checksum line"),
        (f"{'0' * 50}  x\n", "line 1: 50 hex digits is no known digest"),
        (f"CRC32 (x) = {'0' * 8}\n", "line 1: unknown checksum algorithm"),
        (f"\\{SHA256}  bad\\qescape\n", "line 1: bad escape"),
        ("x" * (MAX_LINE_CHARS + 1), "line 1: longer than"),
    ],
)
def test_malformed_files_name_the_line(text: str, reason: str):
    with pytest.raises(ChecksumError, match=reason) as caught:
        parse_checksum_file(text, file_name="/tmp/SUMS")
    assert "\n" not in str(caught.value)


def test_load_is_bounded_and_rejects_binary(tmp_path: Path):
    huge = tmp_path / "SHA256SUMS"
    with huge.open("wb") as stream:
        stream.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ChecksumError, match="larger than 4 MiB"):
        load_checksum_file(huge)
    binary = tmp_path / "b"
    binary.write_bytes(b"\0\1\2")
    with pytest.raises(ChecksumError, match="binary"):
        load_checksum_file(binary)
    with pytest.raises(ChecksumError, match="cannot read"):
        load_checksum_file(tmp_path / "absent")


def test_load_reads_non_utf8_names(tmp_path: Path):
    path = tmp_path / "B3SUMS"
    path.write_bytes(B3.encode() + b"  caf\xe9.bin\n")
    (entry,) = load_checksum_file(path)
    assert entry.algorithm == "blake3"
    assert entry.name.encode("utf-8", "surrogateescape") == b"caf\xe9.bin"


@settings(deadline=None)  # no timing assertions: the machine is shared
@given(st.text(max_size=300))
def test_any_text_parses_or_fails_with_a_checksum_error(text: str):
    try:
        entries = parse_checksum_file(text)
    except ChecksumError as error:
        assert "\n" not in str(error)
    else:
        assert entries and all(e.algorithm in ("md5", "sha1", "sha256", "sha512") for e in entries)


@settings(deadline=None)  # no timing assertions: the machine is shared
@given(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\\"),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([" ", "*"]),
)
def test_gnu_lines_round_trip_any_name(name: str, mode: str):
    (entry,) = parse_checksum_file(f"{SHA256} {mode}{name}\n")
    assert entry.name == name
