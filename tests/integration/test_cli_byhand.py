"""What using ``getfile`` by hand showed (``/work/coord/cli-byhand.txt``), each as a test.

Real processes and sockets, as ``test_cli``: the command as a user types it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import GETFILE, PATIENCE, ServeProcess, serve_process

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
