"""Compatibility with the book's getfile, both ways, and with plain ``nc``.

The legacy peer is ``tests/peers/legacy_getfile.py`` (written from the shared
note); the ``legacy_server`` fixture runs its server on a loopback port.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.cli.exit_codes import exit_code_for
from getfile_core.client import Options, fetch, list_folder, part_name
from getfile_core.errors import LegacyServerError, NotFoundError
from getfile_core.server.fileserver import FileServer
from tests.support import (
    LEGACY_PEER,
    digest_of,
    run_async,
    run_cli,
    run_cli_on_terminal,
    run_program,
    serve_process,
    target_for,
    unused_port,
)


def at(port: int, path: str) -> Target:
    return Target("127.0.0.1", port, path.encode())


# ---------------------------------------------------------------- our client, their server


@pytest.mark.parametrize("path", ["hello.txt", "sub/data.bin"])
async def test_auto_mode_falls_back_to_legacy(
    legacy_server: int, root: Path, dest: Path, path: str
) -> None:
    result = await fetch(at(legacy_server, path), str(dest))
    name = path.rsplit("/", 1)[-1]
    assert result.legacy and result.digest is None
    assert result.size == (root / path).stat().st_size
    assert digest_of(dest / name) == digest_of(root / path)
    assert sorted(p.name for p in dest.iterdir()) == [name]


async def test_a_traversing_name_still_lands_inside_the_destination(
    legacy_server: int, tmp_path: Path, dest: Path
) -> None:
    # The book's server serves anything it can read; the name we save under stays ours.
    before = sorted(p.name for p in tmp_path.iterdir())
    await fetch(at(legacy_server, "../served/hello.txt"), str(dest))
    assert sorted(p.name for p in dest.iterdir()) == ["hello.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


async def test_legacy_mode_against_the_legacy_server(
    legacy_server: int, root: Path, dest: Path
) -> None:
    result = await fetch(at(legacy_server, "sub/data.bin"), str(dest), options=Options(legacy=True))
    assert result.legacy and result.digest is None
    assert digest_of(dest / "data.bin") == digest_of(root / "sub" / "data.bin")


async def test_legacy_mode_sends_only_the_legacy_request(
    server: FileServer, root: Path, dest: Path
) -> None:
    result = await fetch(target_for(server, "hello.txt"), str(dest), options=Options(legacy=True))
    assert result.legacy and result.digest is None
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    assert [(r.kind, r.status) for r in server.log] == [("LEGACY", "ok")]


@pytest.mark.parametrize("path", ["missing.txt", "empty.bin"])
async def test_legacy_silence_is_a_clear_not_found(
    legacy_server: int, dest: Path, path: str
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await fetch(at(legacy_server, path), str(dest))
    message = str(caught.value)
    assert "legacy" in message and "\n" not in message
    assert exit_code_for(caught.value) == 5
    assert list(dest.iterdir()) == []


async def test_listing_needs_a_getfile_server(legacy_server: int) -> None:
    with pytest.raises(LegacyServerError) as caught:
        await list_folder(at(legacy_server, "sub"))
    assert exit_code_for(caught.value) == 13 and "getfile server" in str(caught.value)


async def test_resume_needs_a_getfile_server(legacy_server: int, dest: Path) -> None:
    (dest / part_name("hello.txt")).write_bytes(b"hel")
    with pytest.raises(LegacyServerError):
        await fetch(at(legacy_server, "hello.txt"), str(dest), resume=True)
    assert (dest / part_name("hello.txt")).read_bytes() == b"hel"
    assert not (dest / "hello.txt").exists()


async def test_extended_only_refuses_a_legacy_server(legacy_server: int, dest: Path) -> None:
    with pytest.raises(LegacyServerError):
        await fetch(at(legacy_server, "hello.txt"), str(dest), options=Options(legacy=False))
    assert list(dest.iterdir()) == []


# ---------------------------------------------------------------- their client, our server


def legacy_client(port: int, path: str) -> list[str]:
    return [
        sys.executable,
        str(LEGACY_PEER),
        "-mode",
        "client",
        "-file",
        path,
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
    ]


@pytest.mark.parametrize("path", ["hello.txt", "sub/data.bin"])
async def test_legacy_client_fetches_from_our_server(
    server: FileServer, root: Path, tmp_path: Path, path: str
) -> None:
    cwd = tmp_path / "legacy-cwd"
    cwd.mkdir()
    code, out, _ = await run_async(legacy_client(server.port_bound, path), cwd=cwd)
    assert code == 0 and out.decode().startswith(f"Client got {path} at ")
    assert digest_of(cwd / path.rsplit("/", 1)[-1]) == digest_of(root / path)
    assert [(r.kind, r.status) for r in server.log] == [("LEGACY", "ok")]


async def test_legacy_client_asking_for_an_absolute_path_inside_the_root(
    server: FileServer, root: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "legacy-cwd"
    cwd.mkdir()
    code, _, _ = await run_async(legacy_client(server.port_bound, str(root / "hello.txt")), cwd=cwd)
    assert code == 0 and (cwd / "hello.txt").read_bytes() == b"hello, world\n"


@pytest.mark.parametrize(
    ("path", "status"), [("missing.txt", "not-found"), ("../secret", "forbidden")]
)
async def test_legacy_client_refused_gets_nothing_and_the_log_says_why(
    server: FileServer, tmp_path: Path, path: str, status: str
) -> None:
    (tmp_path / "secret").write_bytes(b"outside the root")
    cwd = tmp_path / "legacy-cwd"
    cwd.mkdir()
    code, _, _ = await run_async(legacy_client(server.port_bound, path), cwd=cwd)
    assert code == 0  # the book's client cannot tell: it saves zero bytes
    assert (cwd / path.rsplit("/", 1)[-1]).read_bytes() == b""
    [record] = server.log
    assert (record.kind, record.status, record.sent) == ("LEGACY", status, 0)
    assert record.note


@pytest.mark.parametrize("line", [b"sub/data.bin\n", b"sub/data.bin\r\n"])
async def test_nc_fetches_from_our_server(server: FileServer, root: Path, line: bytes) -> None:
    if shutil.which("nc") is None:  # no skip to go green: scripts/test installs it
        pytest.fail("nc is not installed (scripts/test installs netcat-openbsd)")
    code, out, _ = await run_async(["nc", "-q1", "127.0.0.1", str(server.port_bound)], stdin=line)
    assert code == 0
    assert out == (root / "sub" / "data.bin").read_bytes()


# ---------------------------------------------------------------- the book's command lines


def book_client(port: int, path: str) -> list[str]:
    return ["-mode", "client", "-file", path, "-host", "127.0.0.1", "-port", str(port)]


def test_book_client_form_against_the_legacy_server(
    legacy_server: int, root: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "book-cwd"
    cwd.mkdir()
    done = run_cli(*book_client(legacy_server, "sub/data.bin"), cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Client got sub/data.bin at ")
    assert digest_of(cwd / "data.bin") == digest_of(root / "sub" / "data.bin")


def test_book_server_form_with_both_clients(root: Path, tmp_path: Path) -> None:
    port = unused_port()
    cwd = tmp_path / "book-cwd"
    cwd.mkdir()
    argv = ["-mode", "server", "-host", "127.0.0.1", "-port", str(port)]
    with serve_process(argv, cwd=root) as served:
        assert served.port == port
        assert str(root) in served.stderr
        # The book's own client (our rewrite of it)...
        legacy = run_program(legacy_client(port, "hello.txt"), cwd=cwd)
        assert legacy.returncode == 0 and legacy.stdout.startswith("Client got hello.txt at ")
        assert (cwd / "hello.txt").read_bytes() == b"hello, world\n"
        served.wait_for_line("Server connected by ('127.0.0.1', ", stdout=True)
        # ...and our CLI in the book's client form.
        ours = run_cli(*book_client(port, "sub/data.bin"), cwd=cwd)
        assert ours.returncode == 0, ours.stderr
        assert ours.stdout.startswith("Client got sub/data.bin at ")
        assert digest_of(cwd / "data.bin") == digest_of(root / "sub" / "data.bin")
        assert served.terminate() == 0
    assert served.stderr.count(" LEGACY 'hello.txt' ok ") == 1
    assert served.stderr.count(" GET 'sub/data.bin' ok ") == 1


def test_get_against_the_legacy_server(legacy_server: int, root: Path, dest: Path) -> None:
    url = f"getfile://127.0.0.1:{legacy_server}/sub/data.bin"
    done = run_cli("get", url, "-o", str(dest))
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert digest_of(dest / "data.bin") == digest_of(root / "sub" / "data.bin")
    refused = run_cli(
        "get", "--no-legacy", url.replace("sub/data.bin", "hello.txt"), "-o", str(dest)
    )
    assert refused.returncode == 13, refused.stderr
    assert refused.stderr.count("\n") == 1 and not (dest / "hello.txt").exists()
    forced = run_cli("get", "--legacy", url.replace("sub/data.bin", "hello.txt"), "-o", str(dest))
    assert forced.returncode == 0, forced.stderr
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


def test_terminal_warns_that_a_legacy_download_is_unverified(
    legacy_server: int, dest: Path
) -> None:
    url = f"getfile://127.0.0.1:{legacy_server}/hello.txt"
    code, out, terminal = run_cli_on_terminal("get", url, "-o", str(dest))
    assert (code, out) == (0, ""), terminal
    assert "not verified" in terminal and "Traceback" not in terminal
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
