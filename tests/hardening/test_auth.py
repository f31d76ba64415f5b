"""Shared-secret access control, proven on real sockets and through the real CLI.

The promises under test: the right token opens the server and nothing else
does; a proof captured on the wire is useless on another connection; the
secret itself never crosses the wire and never sits in a process's argv;
and with a token required, the book's request (which cannot carry a proof)
is refused.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from getfile_core import auth, protocol
from getfile_core.address import Target
from getfile_core.client.api import fetch, list_folder
from getfile_core.client.state import Options
from getfile_core.errors import GetfileError, NotFoundError, UnauthorizedError
from getfile_core.protocol import Request, Status, Verb
from getfile_core.server.fileserver import FileServer
from tests.support import LyingServer, Peer, Tap, run_cli, running_server, serve_process

TOKEN = secrets.token_hex(24).encode()
BOUND = 20.0


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_bytes(TOKEN + b"\n")
    path.chmod(0o600)
    return path


@pytest.fixture
async def guarded(root: Path) -> AsyncIterator[FileServer]:
    """Our server on 127.0.0.1:0 requiring TOKEN; access log in ``.log``."""
    async with running_server(root, grace=1, token=TOKEN) as server:
        yield server


def at(server: FileServer | LyingServer | Tap, path: str) -> Target:
    port = server.port_bound if isinstance(server, FileServer) else server.port
    return Target("127.0.0.1", port, path.encode())


async def get(target: Target, dest: Path, token: bytes | None, **options: object):  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(
        fetch(target, str(dest), options=Options(token=token, timeout=5, **options)), BOUND
    )


# ---------------------------------------------------------------- the client API


async def test_right_token_fetches_and_lists(guarded: FileServer, root: Path, dest: Path) -> None:
    result = await get(at(guarded, "sub/data.bin"), dest, TOKEN)
    assert (dest / "data.bin").read_bytes() == (root / "sub" / "data.bin").read_bytes()
    assert result.digest is not None
    entries, cut = await list_folder(at(guarded, "."), options=Options(token=TOKEN))
    assert {e.name for e in entries} == {b"hello.txt", b"empty.bin", b"sub"} and not cut
    assert [r.status for r in guarded.log] == ["ok", "ok"]  # type: ignore[attr-defined]


async def test_wrong_token_is_refused(guarded: FileServer, dest: Path) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        await get(at(guarded, "hello.txt"), dest, b"not-the-token")
    assert "wrong token" in str(caught.value)
    assert list(dest.iterdir()) == []
    assert [(r.status, r.note) for r in guarded.log] == [("unauthorized", "wrong token")]  # type: ignore[attr-defined]


async def test_no_token_says_how_to_give_one(guarded: FileServer, dest: Path) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        await get(at(guarded, "hello.txt"), dest, None)
    assert "--token-file" in str(caught.value) and auth.TOKEN_ENV in str(caught.value)
    assert list(dest.iterdir()) == []


async def test_listing_needs_the_token_too(guarded: FileServer) -> None:
    with pytest.raises(UnauthorizedError):
        await list_folder(at(guarded, "."), options=Options(token=b"wrong"))


async def test_legacy_request_is_refused_when_a_token_is_required(
    guarded: FileServer, dest: Path
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port_bound)
    writer.write(b"hello.txt\n")
    answer = await asyncio.wait_for(reader.read(), BOUND)
    writer.close()
    assert answer == b"", "the book's request got bytes from a token-protected server"
    with pytest.raises(NotFoundError):  # our client in legacy mode hears the same silence
        await get(at(guarded, "hello.txt"), dest, TOKEN, legacy=True)
    assert list(dest.iterdir()) == []
    assert {r.status for r in guarded.log} == {"refused"}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the wire


async def _exchange(port: int, sent: bytes) -> list[bytes]:
    """Send ``sent`` on a fresh connection; return every response head until the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        received = await asyncio.wait_for(reader.read(), BOUND)
    finally:
        writer.close()
    return [h for h in received.split(b"\n\n") if h.startswith(b"getfile/")]


async def test_replayed_proof_is_refused(guarded: FileServer) -> None:
    """An eavesdropper replays a whole authenticated request, byte for byte: refused."""
    line = protocol.encode_request(Request(Verb.GET, b"hello.txt"))
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port_bound)
    writer.write(line)
    challenge_head = await asyncio.wait_for(reader.readuntil(b"\n\n"), BOUND)
    challenge = protocol.parse_response_head(challenge_head[:-2]).challenge
    assert challenge is not None
    proof = protocol.encode_auth(auth.compute_mac(TOKEN, challenge, line[:-1]))
    writer.write(proof)
    ok = protocol.parse_response_head((await reader.readuntil(b"\n\n"))[:-2])
    body = await asyncio.wait_for(reader.read(), BOUND)
    writer.close()
    assert ok.status is Status.OK and body == b"hello, world\n"  # the captured session worked

    heads = await _exchange(guarded.port_bound, line + proof)  # replayed on a new connection
    first, second = (protocol.parse_response_head(h) for h in heads)
    assert first.status is Status.UNAUTHORIZED and first.challenge not in (None, challenge)
    assert second.status is Status.UNAUTHORIZED and second.message == "wrong token"
    assert [r.status for r in guarded.log] == ["ok", "unauthorized"]  # type: ignore[attr-defined]


async def test_proof_for_one_file_does_not_open_another(guarded: FileServer) -> None:
    """The MAC binds the request line: a proof made for hello.txt cannot fetch data.bin."""
    mine = protocol.encode_request(Request(Verb.GET, b"hello.txt"))[:-1]
    other = protocol.encode_request(Request(Verb.GET, b"sub/data.bin"))[:-1]
    challenge = os.urandom(32)
    mac = auth.compute_mac(TOKEN, challenge, mine)
    assert auth.verify(TOKEN, challenge, mine, mac)
    assert not auth.verify(TOKEN, challenge, other, mac)
    assert not auth.verify(TOKEN, os.urandom(32), mine, mac)


async def test_every_connection_gets_a_fresh_challenge(guarded: FileServer) -> None:
    line = protocol.encode_request(Request(Verb.GET, b"hello.txt"))
    challenges = set()
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port_bound)
        writer.write(line)
        head = await asyncio.wait_for(reader.readuntil(b"\n\n"), BOUND)
        writer.close()
        challenges.add(protocol.parse_response_head(head[:-2]).challenge)
    assert len(challenges) == 20 and None not in challenges


async def test_the_secret_never_crosses_the_wire(
    guarded: FileServer, root: Path, dest: Path
) -> None:
    with Tap(guarded.port_bound) as tap:
        await get(at(tap, "hello.txt"), dest, TOKEN)
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    seen = bytes(tap.to_server + tap.to_client)
    assert b"AUTH " in tap.to_server and b"hello, world" in tap.to_client  # the tap saw it all
    for form in (TOKEN, TOKEN.hex().encode(), TOKEN.upper()):
        assert form not in seen


def test_a_lying_server_learns_only_a_one_time_proof(tmp_path: Path) -> None:
    """A server posing as ours sends a challenge: what it gets back is an HMAC, not the token."""
    challenge = os.urandom(32)
    reply = protocol.encode_response_head(
        protocol.Response(Status.UNAUTHORIZED, "token please", challenge=challenge)
    )

    def phisher(peer: Peer) -> None:
        if peer.read_line() and peer.send(reply):
            peer.read_line()

    with LyingServer(phisher) as liar, pytest.raises(GetfileError):
        asyncio.run(get(at(liar, "hello.txt"), tmp_path, TOKEN))
    request, proof = liar.requests
    assert TOKEN not in request + proof and TOKEN.hex().encode() not in request + proof
    assert proof == protocol.encode_auth(auth.compute_mac(TOKEN, challenge, request))[:-1]


# ---------------------------------------------------------------- the command line


def test_cli_token_file_works_and_stays_out_of_argv(
    root: Path, dest: Path, token_file: Path
) -> None:
    with serve_process(
        ["serve", "--port", "0", "-q", str(root), "--token-file", str(token_file)]
    ) as server:
        argv = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
        assert TOKEN not in argv and str(token_file).encode() in argv
        url = f"getfile://127.0.0.1:{server.port}/hello.txt"
        done = run_cli("get", "-q", "--token-file", str(token_file), "-o", str(dest), url)
        assert done.returncode == 0, done.stderr
        assert (dest / "hello.txt").read_bytes() == b"hello, world\n"

        listed = run_cli(
            "ls", "--token-file", str(token_file), f"getfile://127.0.0.1:{server.port}/"
        )
        assert listed.returncode == 0 and "hello.txt" in listed.stdout, listed.stderr

        env = {**os.environ, auth.TOKEN_ENV: TOKEN.decode()}
        other = dest / "env"
        other.mkdir()
        by_env = run_cli("get", "-q", "-o", str(other), url, env=env)
        assert by_env.returncode == 0, by_env.stderr
        assert (other / "hello.txt").exists()


def test_cli_server_token_from_the_environment(root: Path, dest: Path) -> None:
    env = {**os.environ, auth.TOKEN_ENV: TOKEN.decode()}
    with serve_process(["serve", "--port", "0", "-q", str(root)], env=env) as server:
        argv = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
        assert TOKEN not in argv
        url = f"getfile://127.0.0.1:{server.port}/hello.txt"
        clean = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
        refused = run_cli("get", "-q", "-o", str(dest), url, env=clean)
        assert refused.returncode == 6, refused.stderr
        assert run_cli("get", "-q", "-o", str(dest), url, env=env).returncode == 0


def test_cli_wrong_and_missing_token_fail_in_one_line(
    root: Path, dest: Path, token_file: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("guess\n")
    clean = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
    with serve_process(
        ["serve", "--port", "0", "-q", str(root), "--token-file", str(token_file)]
    ) as server:
        url = f"getfile://127.0.0.1:{server.port}/hello.txt"
        bad = run_cli("get", "--token-file", str(wrong), "-o", str(dest), url, env=clean)
        none = run_cli("get", "-o", str(dest), url, env=clean)
        legacy = run_cli("get", "--legacy", "-o", str(dest), url, env=clean)
    assert bad.returncode == 6 and "wrong token" in bad.stderr
    assert none.returncode == 6 and "--token-file" in none.stderr
    assert legacy.returncode == 5  # the book's request is refused by silence
    for done in (bad, none, legacy):
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"\n", b"  \n"], ids=["empty", "newline", "blank"])
def test_cli_empty_token_file_is_a_usage_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    for command in (["get", "getfile://127.0.0.1:1/x"], ["serve", str(tmp_path)]):
        done = run_cli(*command, "--token-file", str(path))
        assert done.returncode == 2, done.stderr
        assert "is empty" in done.stderr and "Traceback" not in done.stderr
