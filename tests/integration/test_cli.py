"""The ``getfile`` command end to end: real processes, real sockets, exit codes.

Every command runs as ``python -m getfile_core ...`` in a child process. The
server's port is read from its start-up line (it binds port 0). Failures must
be one line on stderr, never a traceback.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from getfile_core import __version__, protocol
from getfile_core.client import part_name
from getfile_core.protocol import Request, Verb
from tests.support import (
    MIB,
    PATIENCE,
    ServeProcess,
    assert_one_error_line,
    digest_bytes,
    digest_of,
    run_cli,
    run_cli_on_terminal,
    serve_process,
    unused_port,
    wait_until_sync,
    write_random,
)


@pytest.fixture
def served(root: Path) -> Iterator[ServeProcess]:
    """``getfile serve ROOT --port 0`` as a child process."""
    with serve_process(["serve", str(root), "--port", "0"]) as process:
        yield process


def get(*args: str) -> tuple[int, str, str]:
    done = run_cli("get", *args)
    return done.returncode, done.stdout, done.stderr


# ---------------------------------------------------------------- get


def test_get_success_prints_nothing_when_not_a_terminal(
    served: ServeProcess, root: Path, dest: Path
) -> None:
    code, out, err = get(served.url("sub/data.bin"), "-o", str(dest))
    assert (code, out, err) == (0, "", "")
    assert digest_of(dest / "data.bin") == digest_of(root / "sub" / "data.bin")
    served.wait_for_line(" GET 'sub/data.bin' ok 300000 B ")


def test_get_decodes_percent_escapes(served: ServeProcess, root: Path, dest: Path) -> None:
    (root / "a b%c.txt").write_bytes(b"odd name")
    assert get(served.url("a%20b%25c.txt"), "-o", str(dest)) == (0, "", "")
    assert (dest / "a b%c.txt").read_bytes() == b"odd name"


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("missing.txt", 5, "not-found"),
        ("../secret.txt", 6, "forbidden"),
        ("sub", 5, "is-a-directory"),
    ],
)
def test_get_refusals_exit_codes(
    served: ServeProcess, dest: Path, path: str, code: int, words: str
) -> None:
    got, out, err = get(served.url(path), "-o", str(dest))
    assert (got, out) == (code, "")
    line = assert_one_error_line(err)
    assert line.startswith("getfile: ") and words in line and path in line
    assert list(dest.iterdir()) == []


def test_connection_refused_exits_3(dest: Path) -> None:
    code, _, err = get(f"getfile://127.0.0.1:{unused_port()}/f", "-o", str(dest))
    assert code == 3
    assert "refused" in assert_one_error_line(err)


def test_host_not_found_exits_3(dest: Path) -> None:
    code, _, err = get("getfile://no-such-host.invalid/f", "-o", str(dest))
    assert code == 3
    assert "no-such-host.invalid" in assert_one_error_line(err)


def test_existing_file_exits_8_and_stays_untouched(served: ServeProcess, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"precious")
    code, _, err = get(served.url("hello.txt"), "-o", str(dest))
    assert code == 8
    assert "--overwrite" in assert_one_error_line(err)
    assert (dest / "hello.txt").read_bytes() == b"precious"
    assert sorted(p.name for p in dest.iterdir()) == ["hello.txt"]


def test_overwrite_replaces(served: ServeProcess, dest: Path) -> None:
    (dest / "hello.txt").write_bytes(b"precious")
    assert get(served.url("hello.txt"), "-o", str(dest), "--overwrite") == (0, "", "")
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


def test_resume_continues_a_part(served: ServeProcess, root: Path, dest: Path) -> None:
    whole = (root / "sub" / "data.bin").read_bytes()
    (dest / part_name("data.bin")).write_bytes(whole[:123_456])
    assert get(served.url("sub/data.bin"), "-o", str(dest), "--resume") == (0, "", "")
    assert (dest / "data.bin").read_bytes() == whole
    assert not (dest / part_name("data.bin")).exists()
    served.wait_for_line(f" GET 'sub/data.bin' ok {len(whole) - 123_456} B ")


def test_several_urls_with_jobs(served: ServeProcess, root: Path, dest: Path) -> None:
    for i in range(6):
        write_random(root / f"f{i}.bin", 10_000 * (i + 1))
    urls = [served.url(f"f{i}.bin") for i in range(6)]
    assert get(*urls, "-j", "3", "-o", str(dest)) == (0, "", "")
    assert sorted(p.name for p in dest.iterdir()) == [f"f{i}.bin" for i in range(6)]
    for i in range(6):
        assert digest_of(dest / f"f{i}.bin") == digest_of(root / f"f{i}.bin")


def test_one_failure_among_several_urls(served: ServeProcess, dest: Path) -> None:
    urls = [served.url("hello.txt"), served.url("missing.txt"), served.url("empty.bin")]
    code, out, err = get(*urls, "-j", "2", "-o", str(dest))
    assert (code, out) == (5, "")
    assert "missing.txt" in assert_one_error_line(err)
    assert sorted(p.name for p in dest.iterdir()) == ["empty.bin", "hello.txt"]


def test_terminal_shows_a_summary_and_quiet_shows_nothing(
    served: ServeProcess, root: Path, tmp_path: Path
) -> None:
    write_random(root / "big.bin", 3 * MIB)
    loud, quiet = tmp_path / "loud", tmp_path / "quiet"
    loud.mkdir()
    quiet.mkdir()
    code, out, terminal = run_cli_on_terminal("get", served.url("big.bin"), "-o", str(loud))
    assert code == 0 and "1 file(s)" in terminal and "Traceback" not in terminal
    assert out == "", "progress belongs on the terminal, not in redirected output"
    code, out, terminal = run_cli_on_terminal("get", "-q", served.url("big.bin"), "-o", str(quiet))
    assert (code, out, terminal) == (0, "", "")
    assert digest_of(quiet / "big.bin") == digest_of(root / "big.bin")


def test_quiet_still_reports_errors_on_a_terminal(served: ServeProcess, dest: Path) -> None:
    code, out, terminal = run_cli_on_terminal("get", "-q", served.url("nope"), "-o", str(dest))
    assert (code, out) == (5, "")
    assert "nope" in assert_one_error_line(terminal)


# ---------------------------------------------------------------- ls


def test_ls_prints_the_listing(served: ServeProcess, root: Path) -> None:
    done = run_cli("ls", served.url(""))
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    kinds_sizes_names = [(line.split()[0], line.split()[1], line.split()[-1]) for line in lines]
    assert kinds_sizes_names == [
        ("file", "0", "empty.bin"),
        ("file", "13", "hello.txt"),
        ("dir", "-", "sub/"),
    ]
    stamp = time.strftime("%Y-%m-%d", time.localtime((root / "hello.txt").stat().st_mtime))
    assert stamp in lines[1]


def test_ls_of_a_missing_folder_exits_5(served: ServeProcess) -> None:
    done = run_cli("ls", served.url("nowhere"))
    assert done.returncode == 5 and done.stdout == ""
    assert "not-found" in assert_one_error_line(done.stderr)


def test_ls_against_the_legacy_server_exits_13(legacy_server: int) -> None:
    done = run_cli("ls", f"getfile://127.0.0.1:{legacy_server}/")
    assert done.returncode == 13 and done.stdout == ""
    assert "getfile server" in assert_one_error_line(done.stderr)


# ---------------------------------------------------------------- help, version, usage


def test_version() -> None:
    done = run_cli("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"getfile {__version__}")


@pytest.mark.parametrize("command", [[], ["serve"], ["get"], ["ls"]])
def test_help_on_every_command(command: list[str]) -> None:
    done = run_cli(*command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: getfile {' '.join(command)}".rstrip())
    assert "exit codes:" in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["get", "http://example.invalid/f"], "not a getfile URL"),
        (["get", "getfile:///f"], "no host"),
        (["get", "getfile://127.0.0.1:99999/f"], "port"),
        (["get", "getfile://127.0.0.1:x/f"], "port"),
        (["get", "getfile://127.0.0.1/f?x=1"], "query"),
        (["ls", "ftp://127.0.0.1/"], "not a getfile URL"),
        (["get", "getfile://127.0.0.1/f", "-o", "/no/such/folder"], "does not exist"),
        (["-mode", "client", "-flie", "f"], "unknown flag -flie"),
        (["-mode", "client", "-file"], "pairs"),
        (["-mode", "client"], "-file"),
        (["-mode", "sideways", "-file", "f"], "client or server"),
        (["-mode", "server", "-port", "abc"], "-port"),
        (["-file", "f", "-port", "70000"], "-port"),
        (["serve", "/no/such/folder", "--port", "0"], "not a folder"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], words: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert words in assert_one_error_line(done.stderr)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["get"],
        ["get", "--jobs", "0", "getfile://127.0.0.1/f"],
        ["serve", "--port", "http"],
        ["serve", "--grace", "-1"],
        ["ls"],
    ],
)
def test_argparse_usage_errors_exit_2(args: list[str]) -> None:
    done = run_cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: getfile")


def test_serve_on_a_busy_port_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", ".", "--port", str(port))
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in assert_one_error_line(done.stderr)


# ---------------------------------------------------------------- serve and signals


def _read_head(sock: socket.socket) -> tuple[protocol.Response, bytes]:
    data = b""
    while b"\n\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "server closed before the head"
        data += chunk
        assert len(data) < protocol.MAX_HEAD
    head, _, rest = data.partition(b"\n\n")
    return protocol.parse_response_head(head), rest


def _refuses_connections(port: int) -> bool:
    """Whether the port refuses a connect now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_lets_the_running_transfer_finish_then_exits_0(root: Path) -> None:
    expected = write_random(root / "huge.bin", 32 * MIB)
    with (
        serve_process(["serve", str(root), "--port", "0"]) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock,
    ):
        sock.sendall(protocol.encode_request(Request(Verb.GET, b"huge.bin")))
        response, body = _read_head(sock)
        assert response.size == 32 * MIB
        server.proc.terminate()  # SIGTERM while the transfer is held up by our reading
        assert "1 transfer(s)" in server.wait_for_line("getfile: stopping")
        # The stop line is printed just before the listener closes.
        wait_until_sync(
            lambda: _refuses_connections(server.port), "refusing connections after SIGTERM"
        )
        received = bytearray(body)
        while chunk := sock.recv(MIB):
            received += chunk
            assert len(received) <= 32 * MIB
        assert server.wait_exit() == 0
    assert digest_bytes(bytes(received)) == expected == response.digest
    assert " GET 'huge.bin' ok 33554432 B " in server.stderr
    assert "Traceback" not in server.stderr


def test_sigterm_on_an_idle_server_exits_0(served: ServeProcess, root: Path) -> None:
    assert served.terminate() == 0
    assert f"serving {root}" in served.stderr
    assert "Traceback" not in served.stderr


def test_serve_on_every_interface_has_one_address_for_both_families(root: Path) -> None:
    """``--host ''`` with port 0 used to print two addresses with two different ports (one
    socket per family, each given its own free port); now one socket takes IPv4 and IPv6."""
    with serve_process(["serve", str(root), "--host", "", "--port", "0"]) as server:
        for url in (f"getfile://127.0.0.1:{server.port}/", f"getfile://[::1]:{server.port}/"):
            done = run_cli("ls", url)
            assert (done.returncode, done.stderr) == (0, ""), url
            assert "hello.txt" in done.stdout
        # An IPv4 client is logged as the IPv4 address it is, not as ::ffff:127.0.0.1.
        assert "127.0.0.1:" in server.wait_for_line("LIST")
        assert [line for line in server.lines if "serving" in line] == [
            f"getfile: serving {root} on getfile://[::]:{server.port}/ (all interfaces); "
            "Ctrl-C stops\n"
        ]
