"""``getfile get --checksum`` / ``--checksum-file``: checksums people publish (issue 14).

Real processes on loopback: our server (``getfile serve``) and the book's
(``tests/peers``). Checksum files are written by the real coreutils tools
(``sha256sum`` and friends), except ``b3sum``'s, which is not in Debian's
base system and is written here in its exact layout (GNU's, 64 digits).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from getfile_core.client import part_name
from tests.support import (
    ServeProcess,
    assert_one_error_line,
    digest_of,
    run_cli,
    serve_process,
)

DATA = "sub/data.bin"


@pytest.fixture
def served(root: Path) -> Iterator[ServeProcess]:
    with serve_process(["serve", str(root), "--port", "0"]) as process:
        yield process


def get(*args: str) -> tuple[int, str, str]:
    done = run_cli("get", *args)
    return done.returncode, done.stdout, done.stderr


def published(path: Path, algorithm: str) -> str:
    if algorithm == "blake3":
        return blake3.blake3(path.read_bytes()).hexdigest()
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def coreutils_sums(*argv: str, folder: Path) -> str:
    """What ``TOOL NAME...`` prints in ``folder``: the file a release page publishes."""
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


@pytest.mark.parametrize(
    ("tool", "sums_name", "extra"),
    [
        ("sha256sum", "SHA256SUMS", ()),
        ("sha512sum", "SHA512SUMS", ()),
        ("sha1sum", "SHA1SUMS", ()),
        ("md5sum", "MD5SUMS", ()),
        ("sha256sum --tag", "CHECKSUM", ()),  # BSD lines, as Fedora publishes
        ("b3sum", "B3SUMS", ()),  # 64 digits: BLAKE3 because the file's name says so
        ("b3sum", "sums.txt", ("--checksum-algo", "blake3")),  # ...or because we said so
    ],
)
def test_a_published_checksum_file_verifies_the_download(
    served: ServeProcess,
    root: Path,
    dest: Path,
    tmp_path: Path,
    tool: str,
    sums_name: str,
    extra: tuple[str, ...],
) -> None:
    if tool == "b3sum":
        text = f"{published(root / DATA, 'blake3')}  data.bin\n"
    else:
        text = coreutils_sums(*tool.split(), "hello.txt", DATA, folder=root)
    sums = tmp_path / sums_name
    sums.write_text(text)
    code, out, err = get(served.url(DATA), "-o", str(dest), "--checksum-file", str(sums), *extra)
    assert (code, out, err) == (0, "", "")
    assert digest_of(dest / "data.bin") == digest_of(root / DATA)


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "sha1", "md5", "blake3"])
def test_checksum_algo_hex_verifies_the_download(
    served: ServeProcess, root: Path, dest: Path, algorithm: str
) -> None:
    checksum = f"{algorithm}:{published(root / DATA, algorithm).upper()}"  # case is no matter
    code, out, err = get(served.url(DATA), "-o", str(dest), "--checksum", checksum)
    assert (code, out, err) == (0, "", "")
    assert digest_of(dest / "data.bin") == digest_of(root / DATA)


def test_a_bare_hex_is_sha256_unless_told_otherwise(
    served: ServeProcess, root: Path, dest: Path
) -> None:
    bare = published(root / DATA, "blake3")
    code, _, err = get(served.url(DATA), "-o", str(dest), "--checksum", bare)
    assert code == 7, err  # taken as sha256, which it is not
    assert "sha256 mismatch" in assert_one_error_line(err)
    code, out, err = get(
        served.url(DATA), "-o", str(dest), "--checksum", bare, "--checksum-algo", "blake3",
        "--overwrite",
    )  # fmt: skip
    assert (code, out, err) == (0, "", "")


def test_a_mismatch_is_exit_7_and_leaves_no_final_file(
    served: ServeProcess, root: Path, dest: Path
) -> None:
    wrong = "sha256:" + hashlib.sha256(b"another release").hexdigest()
    code, out, err = get(served.url(DATA), "-o", str(dest), "--checksum", wrong)
    line = assert_one_error_line(err)
    assert (code, out) == (7, "")
    assert "sha256 mismatch" in line and hashlib.sha256(b"another release").hexdigest() in line
    assert published(root / DATA, "sha256") in line  # both digests in full, to compare by eye
    assert "kept" in line and "--overwrite" in line  # says what to do
    assert not (dest / "data.bin").exists()
    # The .part is whole and intact (the server vouched for it): kept for a person to judge.
    assert digest_of(dest / part_name("data.bin")) == digest_of(root / DATA)
    code, _, err = get(
        served.url(DATA), "-o", str(dest), "--overwrite", "--checksum",
        "sha256:" + published(root / DATA, "sha256"),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert sorted(p.name for p in dest.iterdir()) == ["data.bin"]


def test_resume_with_a_checksum_verifies_the_whole_file(
    served: ServeProcess, root: Path, dest: Path
) -> None:
    body = (root / DATA).read_bytes()
    (dest / part_name("data.bin")).write_bytes(body[:123_457])
    whole = "sha512:" + published(root / DATA, "sha512")
    code, out, err = get(served.url(DATA), "-o", str(dest), "--resume", "--checksum", whole)
    assert (code, out, err) == (0, "", "")  # the prefix was fed to sha512 too, or no match
    assert (dest / "data.bin").read_bytes() == body
    served.wait_for_line(" GET 'sub/data.bin' ok ")


def test_legacy_server_with_a_checksum_is_verified(
    legacy_server: int, root: Path, dest: Path, tmp_path: Path
) -> None:
    url = f"getfile://127.0.0.1:{legacy_server}/{DATA}"
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(coreutils_sums("sha256sum", "data.bin", folder=root / "sub"))
    code, out, err = get(url, "-o", str(dest), "--checksum-file", str(sums))
    assert (code, out, err) == (0, "", "")
    assert digest_of(dest / "data.bin") == digest_of(root / DATA)
    # With the published checksum as the only check, a wrong one still fails the file.
    wrong = "md5:" + hashlib.md5(b"not it").hexdigest()
    code, _, err = get(url, "-o", str(tmp_path), "--checksum", wrong)
    assert code == 7
    assert "md5 mismatch" in assert_one_error_line(err)
    assert not (tmp_path / "data.bin").exists()


def test_several_urls_are_each_matched_by_name(
    served: ServeProcess, root: Path, dest: Path, tmp_path: Path
) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(
        coreutils_sums("sha256sum", "hello.txt", folder=root)
        + coreutils_sums("sha256sum", "sub/data.bin", folder=root)
    )
    code, out, err = get(
        served.url("hello.txt"), served.url(DATA), "-o", str(dest), "--checksum-file", str(sums)
    )
    assert (code, out, err) == (0, "", "")
    assert sorted(p.name for p in dest.iterdir()) == ["data.bin", "hello.txt"]


def test_a_checksum_file_without_the_name_is_one_line_and_exit_2(
    served: ServeProcess, root: Path, dest: Path, tmp_path: Path
) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(coreutils_sums("sha256sum", "hello.txt", folder=root))
    code, out, err = get(
        served.url("hello.txt"), served.url(DATA), "-o", str(dest), "--checksum-file", str(sums)
    )
    assert (code, out) == (2, "")
    assert "SHA256SUMS has no line for 'sub/data.bin'" in assert_one_error_line(err)
    assert list(dest.iterdir()) == []  # checked before any download started


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--checksum", "sha256:abc"), "a sha256 digest is 64 hex digits"),
        (("--checksum", "rot13:abcd"), "unknown checksum algorithm"),
        (("--checksum", "not hex"), "--checksum takes ALGO:HEX"),
        (("--checksum-algo", "md5"), "--checksum-algo needs --checksum"),
        (("--checksum", "md5:" + "0" * 32, "--checksum-algo", "sha1"), "but --checksum-algo"),
        (("--checksum-file", "/nonexistent/SUMS"), "cannot read /nonexistent/SUMS"),
    ],
)
def test_bad_checksum_input_is_one_line_and_exit_2(
    served: ServeProcess, dest: Path, flags: tuple[str, ...], says: str
) -> None:
    code, out, err = get(served.url("hello.txt"), "-o", str(dest), *flags)
    assert (code, out) == (2, "")
    assert says in assert_one_error_line(err)
    assert list(dest.iterdir()) == []


def test_one_checksum_for_several_urls_is_refused(
    served: ServeProcess, root: Path, dest: Path
) -> None:
    checksum = "sha256:" + published(root / "hello.txt", "sha256")
    code, _, err = get(
        served.url("hello.txt"), served.url(DATA), "-o", str(dest), "--checksum", checksum
    )
    assert code == 2
    assert "use --checksum-file" in assert_one_error_line(err)


# ---------------------------------------------------------------- one pass, no second read

#: Runs ``getfile ARGV`` in this child and prints its exit code and the bytes it read
#: (``rchar`` of /proc/self/io: every read, pread and file-object read, whatever the
#: path; socket receives and splice are not counted, so a download reads ~nothing).
_COUNT_READS = (
    "import sys\n"
    "from getfile_core.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "io = dict(line.split(': ') for line in open('/proc/self/io').read().splitlines())\n"
    "print(code, io['rchar'])\n"
)
BIG = 24 * 1024 * 1024


def bytes_read_by_get(*argv: str, receive: str) -> int:
    import os
    import sys

    from tests.support import run_program

    env = {**os.environ, "GETFILE_RECEIVE": receive}
    done = run_program([sys.executable, "-c", _COUNT_READS, "get", *argv], env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    code, rchar = done.stdout.split()
    assert code == "0"
    return int(rchar)


@pytest.mark.parametrize(
    ("receive", "extra"),
    [
        ("splice", ()),
        ("buffer", ()),
        ("splice-thread", ()),
        ("splice", ("--segments", "4")),  # hashed in order from the .part as ranges land
    ],
)
def test_the_checksum_adds_no_read_of_the_file(
    served: ServeProcess, root: Path, tmp_path: Path, receive: str, extra: tuple[str, ...]
) -> None:
    from tests.support import write_random

    write_random(root / "big.bin", BIG)
    checksum = "sha256:" + published(root / "big.bin", "sha256")
    plain, checked = tmp_path / "plain", tmp_path / "checked"
    plain.mkdir(), checked.mkdir()
    url = served.url("big.bin")
    without = bytes_read_by_get(url, "-o", str(plain), *extra, receive=receive)
    with_sum = bytes_read_by_get(
        url, "-o", str(checked), "--checksum", checksum, *extra, receive=receive
    )
    assert digest_of(checked / "big.bin") == digest_of(root / "big.bin")
    # A second read of the file would add BIG; what the checksum may add is importing
    # hashlib (a few hundred KiB of modules at most).
    assert with_sum - without < BIG // 8, (without, with_sum)
    if receive == "buffer" and not extra:  # hashed while hot: the file is never read back at all
        assert with_sum < BIG // 2, with_sum


def test_a_legacy_download_matching_its_checksum_is_not_called_unverified(
    legacy_server: int, root: Path, dest: Path
) -> None:
    from tests.support import run_cli_on_terminal

    url = f"getfile://127.0.0.1:{legacy_server}/hello.txt"
    checksum = "md5:" + published(root / "hello.txt", "md5")
    code, out, terminal = run_cli_on_terminal("get", url, "-o", str(dest), "--checksum", checksum)
    assert (code, out) == (0, ""), terminal
    assert "not verified" not in terminal and "Traceback" not in terminal
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


# ---------------------------------------------------------------- several connections, folders


def test_a_segmented_download_checks_the_published_checksum(
    served: ServeProcess, root: Path, dest: Path, tmp_path: Path
) -> None:
    from tests.support import write_random

    write_random(root / "seg.bin", 6 * 1024 * 1024)  # over MIN_SEGMENTED (4 MiB)
    url = served.url("seg.bin")
    right = "sha512:" + published(root / "seg.bin", "sha512")
    code, out, err = get(url, "-o", str(dest), "--segments", "4", "--checksum", right)
    assert (code, out, err) == (0, "", "")
    assert digest_of(dest / "seg.bin") == digest_of(root / "seg.bin")
    wrong = "sha512:" + hashlib.sha512(b"another").hexdigest()
    code, _, err = get(url, "-o", str(tmp_path), "--segments", "4", "--checksum", wrong)
    assert code == 7
    assert "sha512 mismatch" in assert_one_error_line(err)
    assert not (tmp_path / "seg.bin").exists()
    kept = tmp_path / part_name("seg.bin")
    assert digest_of(kept) == digest_of(root / "seg.bin")


def test_checksum_flags_with_a_folder_are_refused(
    served: ServeProcess, root: Path, dest: Path
) -> None:
    checksum = "sha256:" + published(root / DATA, "sha256")
    code, out, err = get("-r", served.url("sub"), "-o", str(dest), "--checksum", checksum)
    assert (code, out) == (2, "")
    assert "not a folder (-r)" in assert_one_error_line(err)
    assert list(dest.iterdir()) == []
