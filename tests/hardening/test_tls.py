"""TLS from the standard library: verified by a CA file or a pin, skipped only when asked.

Certificates are made at run time (``certs.py``): one from a CA the client
is told to trust, one from a CA nobody trusts, one for another host name.
Each mismatch must end in one clear error, in bounded time, with nothing
written; each legitimate setup must deliver the file, digest verified.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from getfile_core.address import Target
from getfile_core.client.api import fetch, list_folder
from getfile_core.client.state import FetchResult, Options
from getfile_core.errors import (
    ConnectError,
    GetfileError,
    LegacyServerError,
    NotFoundError,
    TimeoutError_,
    UnauthorizedError,
)
from getfile_core.server.fileserver import FileServer, ServerLimits
from getfile_core.tls import client_context, server_context
from tests.support import (
    CertSet,
    LyingServer,
    Peer,
    ServerCert,
    digest_bytes,
    head,
    make_cert_set,
    run_cli,
    serve_process,
)

BOUND = 20.0
BIG = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_cert_set(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def big_root(root: Path) -> Path:
    (root / "big.bin").write_bytes(os.urandom(BIG))
    return root


@pytest.fixture
async def tls_server(big_root: Path) -> AsyncIterator[Callable[..., object]]:
    """Start our server with TLS from a given certificate (and optionally a token)."""
    started: list[FileServer] = []

    async def start(cert: ServerCert, token: bytes | None = None) -> FileServer:
        context = server_context(str(cert.cert), str(cert.key))
        server = FileServer(
            big_root, limits=ServerLimits(grace=1), token=token, ssl_context=context, on_access=None
        )
        await server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            await server.stop(grace=1)


def tls_target(server: FileServer, path: str, host: str = "127.0.0.1") -> Target:
    return Target(host, server.port_bound, path.encode(), tls=True)


async def get(target: Target, dest: Path, options: Options) -> FetchResult:
    return await asyncio.wait_for(fetch(target, str(dest), options=options), BOUND)


def assert_refused_cleanly(error: GetfileError, dest: Path) -> None:
    assert "\n" not in str(error) and len(str(error)) < 300, str(error)
    assert list(dest.iterdir()) == [], "something was written for a refused connection"


# ---------------------------------------------------------------- what must work


async def test_multi_mib_download_over_tls_is_verified(
    tls_server, certs: CertSet, big_root: Path, dest: Path
) -> None:
    server = await tls_server(certs.good)
    options = Options(ssl_context=client_context(str(certs.trusted_ca)))
    result = await get(tls_target(server, "big.bin"), dest, options)
    source = (big_root / "big.bin").read_bytes()
    assert result.size == BIG and result.digest == digest_bytes(source)
    assert (dest / "big.bin").read_bytes() == source


async def test_tls_by_host_name_and_listing(tls_server, certs: CertSet, dest: Path) -> None:
    server = await tls_server(certs.good)
    options = Options(ssl_context=client_context(str(certs.trusted_ca)))
    await get(tls_target(server, "hello.txt", host="localhost"), dest, options)
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"
    entries, _ = await list_folder(tls_target(server, "."), options=options)
    assert b"big.bin" in {e.name for e in entries}


@pytest.mark.parametrize("style", ["plain", "colons"])
async def test_pin_accepts_exactly_that_certificate(
    style: str, tls_server, certs: CertSet, dest: Path
) -> None:
    """A pin is the identity: it accepts even a certificate no CA vouches for."""
    server = await tls_server(certs.rogue)
    pin = certs.rogue.sha256
    if style == "colons":
        pin = ":".join(pin[i : i + 2] for i in range(0, len(pin), 2)).upper()
    await get(tls_target(server, "hello.txt"), dest, Options(pin_sha256=pin))
    assert (dest / "hello.txt").read_bytes() == b"hello, world\n"


async def test_insecure_skips_verification_only_when_asked(
    tls_server, certs: CertSet, dest: Path
) -> None:
    server = await tls_server(certs.rogue)
    options = Options(ssl_context=client_context(insecure=True))
    await get(tls_target(server, "hello.txt"), dest, options)
    assert (dest / "hello.txt").exists()


async def test_token_over_tls(tls_server, certs: CertSet, dest: Path) -> None:
    server = await tls_server(certs.good, token=b"s3cret")
    context = client_context(str(certs.trusted_ca))
    await get(tls_target(server, "hello.txt"), dest, Options(ssl_context=context, token=b"s3cret"))
    assert (dest / "hello.txt").exists()
    with pytest.raises(UnauthorizedError):
        await get(tls_target(server, "empty.bin"), dest, Options(ssl_context=context, token=b"x"))
    assert not (dest / "empty.bin").exists()


# ---------------------------------------------------------------- what must be refused


async def test_untrusted_ca_is_refused(tls_server, certs: CertSet, dest: Path) -> None:
    server = await tls_server(certs.rogue)
    options = Options(ssl_context=client_context(str(certs.trusted_ca)))
    with pytest.raises(ConnectError) as caught:
        await get(tls_target(server, "hello.txt"), dest, options)
    assert "certificate rejected" in str(caught.value)
    assert_refused_cleanly(caught.value, dest)


async def test_system_trust_alone_refuses_a_private_ca(
    tls_server, certs: CertSet, dest: Path
) -> None:
    server = await tls_server(certs.good)
    with pytest.raises(ConnectError) as caught:
        await get(tls_target(server, "hello.txt"), dest, Options())
    assert "certificate rejected" in str(caught.value)
    assert_refused_cleanly(caught.value, dest)


async def test_certificate_for_another_host_is_refused(
    tls_server, certs: CertSet, dest: Path
) -> None:
    server = await tls_server(certs.wrong_host)
    options = Options(ssl_context=client_context(str(certs.trusted_ca)))
    with pytest.raises(ConnectError) as caught:
        await get(tls_target(server, "hello.txt"), dest, options)
    assert "certificate rejected" in str(caught.value) and "mismatch" in str(caught.value).lower()
    assert_refused_cleanly(caught.value, dest)


async def test_wrong_pin_is_refused_and_shows_the_real_one(
    tls_server, certs: CertSet, dest: Path
) -> None:
    server = await tls_server(certs.good)
    with pytest.raises(ConnectError) as caught:
        await get(tls_target(server, "hello.txt"), dest, Options(pin_sha256=certs.rogue.sha256))
    assert "does not match the pin" in str(caught.value) and certs.good.sha256 in str(caught.value)
    assert_refused_cleanly(caught.value, dest)


async def test_plain_client_against_tls_server(tls_server, certs: CertSet, dest: Path) -> None:
    server = await tls_server(certs.good)
    plain = Target("127.0.0.1", server.port_bound, b"hello.txt")
    with pytest.raises(NotFoundError) as caught:
        await get(plain, dest, Options(timeout=2))
    assert "getfiles://" in str(caught.value)
    assert_refused_cleanly(caught.value, dest)
    with pytest.raises(LegacyServerError) as strict:  # no legacy fallback: still named
        await get(plain, dest, Options(timeout=2, legacy=False))
    assert "getfiles://" in str(strict.value)


async def test_tls_client_against_plain_server(server: FileServer, dest: Path) -> None:
    target = Target("127.0.0.1", server.port_bound, b"hello.txt", tls=True)
    with pytest.raises((ConnectError, TimeoutError_)) as caught:
        await get(target, dest, Options(connect_timeout=2, ssl_context=client_context()))
    assert "plain getfile:// server" in str(caught.value)
    assert_refused_cleanly(caught.value, dest)


def test_tls_client_against_a_silent_plain_peer_is_bounded(tmp_path: Path) -> None:
    """A plain peer that swallows the ClientHello and says nothing: the handshake times out."""

    def swallow(peer: Peer) -> None:
        peer.hold(limit=10)

    with LyingServer(swallow) as liar, pytest.raises(TimeoutError_) as caught:
        target = Target("127.0.0.1", liar.port, b"x", tls=True)
        asyncio.run(get(target, tmp_path, Options(connect_timeout=1, ssl_context=client_context())))
    assert "TLS handshake" in str(caught.value)


def test_drip_over_tls_is_cut_off(certs: CertSet, tmp_path: Path) -> None:
    """The TLS body path (no MSG_WAITALL) has the same pace floor as plain TCP."""
    body = os.urandom(50_000)
    context = server_context(str(certs.good.cert), str(certs.good.key))

    def drip(peer: Peer) -> None:
        if peer.read_line() and peer.send(head(len(body), digest=digest_bytes(body)) + body[:3000]):
            peer.drip(body[3000:], 0.2)

    with LyingServer(drip, ssl_context=context) as liar, pytest.raises(TimeoutError_) as caught:
        target = Target("127.0.0.1", liar.port, b"f.bin", tls=True)
        options = Options(timeout=1.0, ssl_context=client_context(str(certs.trusted_ca)))
        asyncio.run(get(target, tmp_path, options))
    assert "server too slow" in str(caught.value)
    assert not (tmp_path / "f.bin").exists()


# ---------------------------------------------------------------- the command line


def test_cli_tls_verify_pin_insecure(certs: CertSet, big_root: Path, tmp_path: Path) -> None:
    good = certs.good
    with serve_process(
        [
            "serve",
            "--port",
            "0",
            "-q",
            str(big_root),
            "--tls-cert",
            str(good.cert),
            "--tls-key",
            str(good.key),
        ]
    ) as s:
        url = f"getfiles://127.0.0.1:{s.port}/big.bin"
        runs = {
            "cafile": ["--cafile", str(certs.trusted_ca)],
            "pin": ["--pin", good.sha256],
            "insecure": ["--insecure"],
        }
        for name, flags in runs.items():
            out = tmp_path / name
            out.mkdir()
            done = run_cli("get", "-q", *flags, "-o", str(out), url)
            assert done.returncode == 0, (name, done.stderr)
            assert (out / "big.bin").read_bytes() == (big_root / "big.bin").read_bytes()
        refused = {
            "no trust": [],
            "wrong pin": ["--pin", certs.rogue.sha256],
        }
        for name, flags in refused.items():
            out = tmp_path / name
            out.mkdir()
            done = run_cli("get", *flags, "-o", str(out), url)
            assert done.returncode == 3, (name, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
            assert list(out.iterdir()) == []
        plain = run_cli(
            "get", "--timeout", "2", "-o", str(tmp_path), url.replace("getfiles", "getfile")
        )
        assert plain.returncode == 5 and "getfiles://" in plain.stderr, plain.stderr


def test_cli_serve_needs_cert_and_key_together(certs: CertSet, tmp_path: Path) -> None:
    done = run_cli("serve", str(tmp_path), "--port", "0", "--tls-cert", str(certs.good.cert))
    assert done.returncode == 2 and "go together" in done.stderr
    broken = run_cli(
        "serve", str(tmp_path), "--port", "0",
        "--tls-cert", str(certs.good.key), "--tls-key", str(certs.good.key),
    )  # fmt: skip
    assert broken.returncode == 2 and "cannot load TLS certificate" in broken.stderr
