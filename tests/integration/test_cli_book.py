"""The book's command line, as forgiving as the book's program (issue 10, compatibility).

The book read argv as pairs into a dict: a trailing word was dropped, unknown
flags ignored, any mode but ``server`` meant client, and ``-host ''`` or a
bare ``-host`` (what its GUI sends for an empty Server field) meant this
machine. Each case here exited 2 before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    ServeProcess,
    assert_one_error_line,
    digest_of,
    run_cli,
    serve_process,
    unused_port,
)


@pytest.fixture
def served(root: Path) -> Iterator[ServeProcess]:
    """Our server on all interfaces, so that 'localhost' reaches it however it resolves."""
    with serve_process(["serve", str(root), "--host", "0.0.0.0", "--port", "0"]) as process:
        yield process


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "book-cwd"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("extra", "warning"),
    [
        (["-host"], None),  # the book's GUI with an empty Server field
        (["-host", ""], None),
        (["-host", "127.0.0.1", "extra"], "extra has no value"),
        (["-host", "127.0.0.1", "-verbose", "yes"], "unknown flag -verbose ignored"),
        (["-mode", "Client", "-host", "127.0.0.1"], None),
    ],
)
def test_the_book_accepts_it_so_we_do(
    served: ServeProcess, root: Path, cwd: Path, extra: list[str], warning: str | None
) -> None:
    done = run_cli("-file", "sub/data.bin", "-port", str(served.port), *extra, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Client got sub/data.bin at ")
    assert digest_of(cwd / "data.bin") == digest_of(root / "sub" / "data.bin")
    if warning is None:
        assert done.stderr == ""
    else:
        line = assert_one_error_line(done.stderr)
        assert line.startswith("getfile: warning: ") and warning in line


def test_an_existing_file_offers_the_books_way_and_it_works(
    served: ServeProcess, cwd: Path
) -> None:
    (cwd / "hello.txt").write_bytes(b"precious")
    book = ["-file", "hello.txt", "-host", "127.0.0.1", "-port", str(served.port)]
    refused = run_cli(*book, cwd=cwd)
    assert refused.returncode == 8
    line = assert_one_error_line(refused.stderr)
    assert "-overwrite yes" in line and "--overwrite" not in line
    assert (cwd / "hello.txt").read_bytes() == b"precious"
    replaced = run_cli(*book, "-overwrite", "yes", cwd=cwd)
    assert replaced.returncode == 0, replaced.stderr
    assert (cwd / "hello.txt").read_bytes() == b"hello, world\n"


def test_the_book_server_with_a_bare_host_binds_every_interface(root: Path) -> None:
    port = unused_port()
    with serve_process(["-mode", "server", "-port", str(port), "-host"], cwd=root) as server:
        assert "(all interfaces)" in server.stderr
        assert server.terminate() == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-file", "f", "-overwrite", "maybe"], "-overwrite takes yes or no"),
        (["-mode", "client", "-file", "f", "-port", ""], "-port"),
    ],
)
def test_what_the_book_would_crash_on_is_one_line_exit_2(
    args: list[str], words: str, cwd: Path
) -> None:
    done = run_cli(*args, cwd=cwd)
    assert done.returncode == 2 and done.stdout == ""
    assert words in assert_one_error_line(done.stderr)
