"""What an attacker found in the command line (issue 10) and its rough edges (issue 14).

Each test failed on the code before it: hostile text reached the terminal raw,
a host name the IDNA codec refuses ended in a traceback, ``ls --max`` printed
a whole page more, an empty ``$GETFILE_TOKEN`` meant "no auth", and port 0 in
a URL silently meant 50001.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    PATIENCE,
    ServeProcess,
    assert_one_error_line,
    run_cli,
    run_cli_on_terminal,
    serve_process,
    unused_port,
)

#: OSC 2 (set the window title) and CSI 2J (clear the screen), as a URL can carry them.
HOSTILE = "a\x1b]2;PWNED\x1b\\\x1b[2J.txt"
HOSTILE_IN_URL = "a%1b]2;PWNED%1b%5c%1b[2J.txt"


def assert_no_raw_escape(text: str) -> None:
    assert "\x1b]2;PWNED" not in text and "\x1b[2J" not in text, repr(text)


@pytest.fixture
def served(root: Path) -> Iterator[ServeProcess]:
    with serve_process(["serve", str(root), "--port", "0"]) as process:
        yield process


# ---------------------------------------------------------------- #6 terminal escapes


def test_an_escape_in_the_url_path_is_shown_not_obeyed(dest: Path) -> None:
    url = f"getfile://127.0.0.1:{unused_port()}/{HOSTILE_IN_URL}"
    done = run_cli("get", "-o", str(dest), url)
    assert done.returncode == 3
    line = assert_one_error_line(done.stderr)
    assert_no_raw_escape(line)
    assert "a\\x1b]2;PWNED" in line


def test_an_escape_in_a_served_name_stays_off_the_terminal(
    served: ServeProcess, root: Path, dest: Path, tmp_path: Path
) -> None:
    (root / HOSTILE).write_bytes(b"x" * 100_000)
    code, out, terminal = run_cli_on_terminal("get", "-o", str(dest), served.url(HOSTILE_IN_URL))
    assert (code, out) == (0, ""), terminal
    assert_no_raw_escape(terminal)
    assert "PWNED" in terminal, "the bar should still name the file, visibly escaped"
    [saved] = dest.iterdir()  # under a sanitised name: the client's business, not this test's
    assert saved.read_bytes() == b"x" * 100_000
    missing = run_cli_on_terminal("get", "-o", str(tmp_path), served.url("nope" + HOSTILE_IN_URL))
    assert missing[0] == 5
    assert_no_raw_escape(missing[2])


def test_ls_shows_hostile_names_escaped(served: ServeProcess, root: Path) -> None:
    (root / HOSTILE).write_bytes(b"")
    (root / "txt.\u202eexe").write_bytes(b"")
    done = run_cli("ls", served.url(""))
    assert done.returncode == 0, done.stderr
    assert_no_raw_escape(done.stdout)
    assert "\u202e" not in done.stdout and "txt.\\u202eexe" in done.stdout


def test_a_hostile_destination_folder_is_shown_escaped(tmp_path: Path) -> None:
    done = run_cli("get", "-o", str(tmp_path / HOSTILE), "getfile://127.0.0.1/f")
    assert done.returncode == 2
    assert_no_raw_escape(assert_one_error_line(done.stderr))


# ---------------------------------------------------------------- #11 IDNA


@pytest.mark.parametrize("command", ["get", "ls"])
def test_a_host_the_idna_codec_refuses_is_one_line_exit_2(command: str, dest: Path) -> None:
    url = f"getfile://{'a' * 64}.example/f"
    done = run_cli(command, url, *(["-o", str(dest)] if command == "get" else []))
    assert done.returncode == 2, done.stderr
    assert "1-63 characters" in assert_one_error_line(done.stderr)


def test_the_book_form_with_such_a_host_is_one_line_exit_2(tmp_path: Path) -> None:
    done = run_cli("-file", "f", "-host", "a" * 64 + ".example", cwd=tmp_path)
    assert done.returncode == 2
    assert "1-63 characters" in assert_one_error_line(done.stderr)


# ---------------------------------------------------------------- #12 ls --max


def test_ls_max_prints_at_most_n(served: ServeProcess, root: Path) -> None:
    for i in range(12):
        (root / f"n{i:02}").write_bytes(b"")
    done = run_cli("ls", "--max", "4", served.url(""))
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 4
    assert "cut at 4" in assert_one_error_line(done.stderr)


# ---------------------------------------------------------------- #15 empty token


@pytest.mark.parametrize("command", ["get", "ls", "serve"])
def test_an_empty_getfile_token_is_refused(command: str, root: Path, dest: Path) -> None:
    args = {
        "get": ["get", "-o", str(dest), "getfile://127.0.0.1:1/f"],
        "ls": ["ls", "getfile://127.0.0.1:1/"],
        "serve": ["serve", str(root), "--port", "0"],
    }[command]
    done = run_cli(*args, env={**os.environ, "GETFILE_TOKEN": ""}, timeout=20)
    assert done.returncode == 2
    assert "GETFILE_TOKEN" in assert_one_error_line(done.stderr)


# ---------------------------------------------------------------- issue 14 #3 port 0


@pytest.mark.parametrize("command", ["get", "ls"])
def test_port_zero_in_a_url_is_an_error(command: str, dest: Path) -> None:
    done = run_cli(command, "getfile://127.0.0.1:0/f", *(["-o", str(dest)] * (command == "get")))
    assert done.returncode == 2
    assert "port 0" in assert_one_error_line(done.stderr)


def test_the_access_log_shows_a_hostile_request_escaped(served: ServeProcess) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=PATIENCE) as sock:
        sock.sendall(HOSTILE.encode() + b"\n")  # the book's dialect: the raw line is the path
        while sock.recv(65536):
            pass
    line = served.wait_for_line("PWNED")
    assert_no_raw_escape(served.stderr)
    assert "LEGACY" in line and "\\x1b" in line
