"""What using ``getfile`` by hand showed (``/work/coord/cli-byhand.txt``), each as a test.

Real processes and sockets, as ``test_cli``: the command as a user types it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    GETFILE,
    MIB,
    PATIENCE,
    ServeProcess,
    run_cli,
    run_cli_on_terminal,
    serve_process,
)

#: Enough entries that ``ls`` fills a pipe (64 KiB) long before it is done.
ENTRIES = 3000


@pytest.fixture
def crowded(tmp_path: Path) -> Iterator[ServeProcess]:
    folder = tmp_path / "crowded"
    folder.mkdir()
    for index in range(ENTRIES):
        (folder / f"a-file-with-a-name-long-enough-{index:05d}.txt").write_bytes(b"x")
    with serve_process(["serve", str(folder), "--port", "0", "-q"]) as server:
        yield server


@pytest.mark.parametrize("flags", [[], ["-r", "-l", "-h"], ["-r", "--json"]])
def test_ls_into_a_reader_that_leaves_early_is_quiet(
    crowded: ServeProcess, flags: list[str]
) -> None:
    """``getfile ls URL | head -1``: a BrokenPipeError traceback on the terminal, exit 1."""
    process = subprocess.Popen(
        [*GETFILE, "ls", *flags, crowded.url("")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as head does after its line
    try:
        code = process.wait(PATIENCE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(PATIENCE)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert b"a-file-with" in first
    assert (code, stderr) == (141, ""), stderr


# ---------------------------------------------------------------- the book's form


@pytest.fixture
def served(root: Path) -> Iterator[ServeProcess]:
    with serve_process(["serve", str(root), "--port", "0", "-q"]) as server:
        yield server


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """The book's client saves into its current folder: this one."""
    folder = tmp_path / "here"
    folder.mkdir()
    return folder


def book(port: int, name: str) -> list[str]:
    return ["-mode", "client", "-file", name, "-host", "127.0.0.1", "-port", str(port)]


def test_the_books_form_run_again_continues_what_ctrl_c_cut(
    served: ServeProcess, root: Path, here: Path
) -> None:
    """It said "use --resume to continue it", a flag the book's form does not take (exit 8)."""
    data = os.urandom(3 * MIB)
    (root / "big.bin").write_bytes(data)
    (here / "big.bin.getfile-part").write_bytes(data[:MIB])  # what a ^C left
    done = run_cli(*book(served.port, "big.bin"), cwd=here)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith("Client got big.bin at ")
    assert (here / "big.bin").read_bytes() == data
    assert sorted(p.name for p in here.iterdir()) == ["big.bin"]


def test_the_books_form_starts_again_what_the_books_server_cannot_continue(
    legacy_server: int, root: Path, here: Path
) -> None:
    data = os.urandom(3 * MIB)
    (root / "big.bin").write_bytes(data)
    (here / "big.bin.getfile-part").write_bytes(data[:MIB])
    done = run_cli(*book(legacy_server, "big.bin"), cwd=here)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert (here / "big.bin").read_bytes() == data
    assert sorted(p.name for p in here.iterdir()) == ["big.bin"]


def test_the_books_form_shows_its_bar_on_a_terminal(
    served: ServeProcess, root: Path, here: Path
) -> None:
    """The book's program showed nothing, for minutes on a slow link; so did ours."""
    (root / "big.bin").write_bytes(os.urandom(3 * MIB))
    code, out, drawn = run_cli_on_terminal(*book(served.port, "big.bin"), cwd=here)
    terminal = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert code == 0 and out.startswith("Client got big.bin at "), terminal
    assert "✓ big.bin" in terminal and "3.00 MiB/3.00 MiB" in terminal, terminal
    assert "Traceback" not in terminal


def test_ls_of_a_file_says_which_path_is_not_a_folder(served: ServeProcess) -> None:
    """It said "getfile: not a folder (420 not-a-directory)": of what?"""
    done = run_cli("ls", served.url("sub/data.bin"))
    assert done.returncode == 5 and done.stdout == ""
    assert done.stderr == "getfile: sub/data.bin: not a folder (420 not-a-directory)\n"
