"""The client against a server that lies: every lie ends in one clear error, in bounded time.

For each lie the client must stop with a one-line ``GetfileError`` (never a
traceback, never a hang) and must never leave a file under the final name.
The ``.part`` follows the documented rule: kept when the download was only
interrupted (what arrived is a true prefix, so ``--resume`` can go on),
removed when the server broke the protocol or the digest (nothing it sent
can be trusted).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from getfile_core.address import Target
from getfile_core.client.api import fetch, list_folder
from getfile_core.client.names import PART_SUFFIX
from getfile_core.client.state import FetchResult, Options
from getfile_core.errors import (
    GetfileError,
    IntegrityError,
    InterruptedError_,
    NotFoundError,
    ProtocolError,
    TimeoutError_,
)
from getfile_core.protocol import MAX_HEAD
from tests.support import (
    LyingServer,
    Peer,
    answer,
    answer_each,
    digest_bytes,
    head,
    listing,
    listing_head,
    run_cli,
)

NAME = "file.bin"
#: Longest any single lie may take to be refused; a hang fails the test here.
BOUND = 20.0
#: The client's patience in these tests: small, so drips and stalls are quick to refuse.
PATIENCE = Options(timeout=1.0, connect_timeout=2.0, retries=0)
#: Seconds between drip bytes: well under PATIENCE, so no single recv ever times out
#: and only the overall pace bound can stop the transfer.
DRIP = 0.2

BODY = os.urandom(100_000)
BIG_BODY = os.urandom(3 * 1024 * 1024)


def fetch_from(
    liar: LyingServer, dest: Path, options: Options = PATIENCE, path: bytes = NAME.encode()
) -> FetchResult:
    async def bounded() -> FetchResult:
        target = Target("127.0.0.1", liar.port, path)
        return await asyncio.wait_for(fetch(target, str(dest), options=options), BOUND)

    return asyncio.run(bounded())


def list_from(liar: LyingServer, options: Options = PATIENCE) -> list[object]:
    async def bounded() -> list[object]:
        target = Target("127.0.0.1", liar.port, b"folder")
        entries, _ = await asyncio.wait_for(list_folder(target, options=options), BOUND)
        return entries  # type: ignore[return-value]

    return asyncio.run(bounded())


def assert_one_line(error: GetfileError) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, text
    assert len(text) < 300, text


def assert_no_final_file(dest: Path) -> None:
    assert not (dest / NAME).exists(), "a file appeared under the final name"


def part_of(dest: Path) -> Path:
    return dest / (NAME + PART_SUFFIX)


def assert_part_rule(error: GetfileError, dest: Path, body: bytes) -> None:
    """Kept (and a true prefix) after an interruption; gone after a protocol or digest lie."""
    part = part_of(dest)
    if isinstance(error, ProtocolError | IntegrityError):
        assert not part.exists(), f"{type(error).__name__} left {part.name}"
    elif part.exists():
        assert isinstance(error, InterruptedError_ | TimeoutError_), type(error)
        kept = part.read_bytes()
        assert kept and body.startswith(kept), "the kept .part is not a prefix of the file"


# ---------------------------------------------------------------- bodies that lie

BODY_LIES = {
    # name: (reply, then, body the client should have got, expected error)
    "more bytes than announced, with the head": (
        head(len(BODY), digest=digest_bytes(BODY)) + BODY + b"extra",
        "close",
        BODY,
        ProtocolError,
    ),
    "more bytes than announced, after a big body": (
        head(len(BIG_BODY), digest=digest_bytes(BIG_BODY)) + BIG_BODY + b"x" * 70_000,
        "close",
        BIG_BODY,
        ProtocolError,
    ),
    "more bytes, then keeps the connection open": (
        head(len(BIG_BODY), digest=digest_bytes(BIG_BODY)) + BIG_BODY + b"!",
        "hold",
        BIG_BODY,
        ProtocolError,
    ),
    "fewer bytes, then closes": (
        head(len(BIG_BODY), digest=digest_bytes(BIG_BODY)) + BIG_BODY[:1_500_000],
        "close",
        BIG_BODY,
        InterruptedError_,
    ),
    "fewer bytes, then resets": (
        head(len(BIG_BODY), digest=digest_bytes(BIG_BODY)) + BIG_BODY[:1_500_000],
        "reset",
        BIG_BODY,
        InterruptedError_,
    ),
    "fewer bytes, then silence": (
        head(len(BIG_BODY), digest=digest_bytes(BIG_BODY)) + BIG_BODY[:1_500_000],
        "hold",
        BIG_BODY,
        TimeoutError_,
    ),
    "wrong digest": (
        head(len(BODY), digest=digest_bytes(BODY[::-1])) + BODY,
        "close",
        BODY,
        IntegrityError,
    ),
    "wrong digest on a big body": (
        head(len(BIG_BODY), digest=digest_bytes(b"something else")) + BIG_BODY,
        "close",
        BIG_BODY,
        IntegrityError,
    ),
    "announces nothing, sends bytes": (
        head(0, digest=digest_bytes(b"")) + b"surprise",
        "close",
        b"",
        ProtocolError,
    ),
    "answers another offset than asked": (
        head(len(BODY), offset=10, digest=digest_bytes(BODY)) + BODY[10:],
        "close",
        BODY,
        ProtocolError,
    ),
}


@pytest.mark.parametrize("lie", list(BODY_LIES))
def test_body_lie_is_refused(lie: str, tmp_path: Path) -> None:
    reply, then, body, expected = BODY_LIES[lie]
    with LyingServer(answer(reply, then)) as liar, pytest.raises(GetfileError) as caught:
        fetch_from(liar, tmp_path)
    assert isinstance(caught.value, expected), f"{type(caught.value).__name__}: {caught.value}"
    assert_one_line(caught.value)
    assert_no_final_file(tmp_path)
    assert_part_rule(caught.value, tmp_path, body)


def test_interrupted_download_keeps_a_true_prefix_and_says_resume(tmp_path: Path) -> None:
    reply = head(len(BIG_BODY), digest=digest_bytes(BIG_BODY)) + BIG_BODY[:1_500_000]
    with LyingServer(answer(reply)) as liar, pytest.raises(InterruptedError_) as caught:
        fetch_from(liar, tmp_path)
    assert "--resume" in str(caught.value)
    assert part_of(tmp_path).read_bytes() == BIG_BODY[:1_500_000]


# ---------------------------------------------------------------- heads that lie

HEAD_LIES = {
    "http instead of getfile": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "no size": b"getfile/1 200 ok\n\nhello",
    "negative size": b"getfile/1 200 ok\nsize: -5\n\n",
    "size beyond 2**63": b"getfile/1 200 ok\nsize: 99999999999999999999\n\n",
    "code and name disagree": b"getfile/1 200 not-found\nsize: 5\n\nhello",
    "unknown status": b"getfile/1 299 ok\nsize: 5\n\nhello",
    "other protocol version": b"getfile/2 200 ok\nsize: 5\n\nhello",
    "not utf-8": b"getfile/1 200 ok\nmessage: \xff\xfe\nsize: 5\n\nhello",
    "control character in a value": b"getfile/1 200 ok\nmessage: a\x1b[2Jb\nsize: 5\n\nhello",
    "repeated header": b"getfile/1 200 ok\nsize: 5\nsize: 1\n\nhello",
    "malformed digest": b"getfile/1 200 ok\nsize: 5\ndigest: md5:zz\n\nhello",
    "offset beyond size": b"getfile/1 200 ok\nsize: 5\noffset: 9\n\n",
    "too many header lines": b"getfile/1 200 ok\nsize: 5\n" + b"x-pad: 1\n" * 80 + b"\nhello",
    "enormous header line": b"getfile/1 200 ok\nmessage: " + b"A" * (2 * MAX_HEAD) + b"\n\n",
    "head cut off, then close": b"getfile/1 200 ok\nsize: 5\n",
    "carriage returns": b"getfile/1 200 ok\r\nsize: 5\r\n\r\nhello",
    "entries on a GET": b"getfile/1 200 ok\nsize: 5\nentries: 1\n\nhello",
}


@pytest.mark.parametrize("lie", list(HEAD_LIES))
def test_head_lie_is_refused(lie: str, tmp_path: Path) -> None:
    with LyingServer(answer(HEAD_LIES[lie])) as liar, pytest.raises(GetfileError) as caught:
        fetch_from(liar, tmp_path)
    assert isinstance(caught.value, ProtocolError), f"{type(caught.value).__name__}"
    assert_one_line(caught.value)
    assert_no_final_file(tmp_path)
    assert not part_of(tmp_path).exists()


def test_header_that_never_ends_is_refused(tmp_path: Path) -> None:
    """Header lines, fast and forever: refused once the head passes its 16 KiB cap."""

    def endless(peer: Peer) -> None:
        if not peer.read_line():
            return
        peer.send(b"getfile/1 200 ok\nsize: 5\n")
        for _ in range(1_000_000):  # bounded: 9 MB, far beyond the cap
            if peer.stopping.is_set() or not peer.send(b"x-more: 1\n"):
                return

    with LyingServer(endless) as liar, pytest.raises(ProtocolError) as caught:
        fetch_from(liar, tmp_path)
    assert "longer than the protocol allows" in str(caught.value)
    assert_no_final_file(tmp_path)


def test_head_that_stops_halfway_times_out(tmp_path: Path) -> None:
    reply = b"getfile/1 200 ok\nsize: 5\n"
    with LyingServer(answer(reply, "hold")) as liar, pytest.raises(TimeoutError_) as caught:
        fetch_from(liar, tmp_path)
    assert_one_line(caught.value)
    assert_no_final_file(tmp_path)
    assert not part_of(tmp_path).exists()


@settings(max_examples=150, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=300))
def test_random_head_is_refused_or_honoured(garbage: bytes) -> None:
    """Any bytes as a head: a one-line error, or (if they happen to be valid) a true answer."""
    with tempfile.TemporaryDirectory() as folder, LyingServer(answer(garbage + b"\n\n")) as liar:
        dest = Path(folder)
        try:
            result = fetch_from(liar, dest)
        except GetfileError as error:
            assert_one_line(error)
            assert_no_final_file(dest)
            assert not part_of(dest).exists() or isinstance(error, InterruptedError_)
        else:  # only a valid empty "200 ok, size 0" could get here
            assert result.size == 0 and (dest / NAME).read_bytes() == b""


# ---------------------------------------------------------------- drips


def test_head_dripped_one_byte_at_a_time_is_cut_off(tmp_path: Path) -> None:
    """Each byte comes well within the recv timeout; only the total bound can stop it."""

    def drip_head(peer: Peer) -> None:
        if peer.read_line():
            peer.drip(head(len(BODY), digest=digest_bytes(BODY)) + BODY, DRIP)

    with LyingServer(drip_head) as liar, pytest.raises(TimeoutError_) as caught:
        fetch_from(liar, tmp_path)
    assert "too slow" in str(caught.value) and "head" in str(caught.value)
    assert_no_final_file(tmp_path)
    assert not part_of(tmp_path).exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["extended", "legacy"])
def test_body_dripped_one_byte_at_a_time_is_cut_off(legacy: bool, tmp_path: Path) -> None:
    def drip_body(peer: Peer) -> None:
        if not peer.read_line():
            return
        announce = b"" if legacy else head(len(BODY), digest=digest_bytes(BODY))
        if peer.send(announce + BODY[:2000]):  # a brisk start, then a trickle
            peer.drip(BODY[2000:], DRIP)

    options = Options(timeout=PATIENCE.timeout, legacy=legacy, retries=0)
    with LyingServer(drip_body) as liar, pytest.raises(TimeoutError_) as caught:
        fetch_from(liar, tmp_path, options)
    assert "server too slow" in str(caught.value)
    assert_one_line(caught.value)
    assert_no_final_file(tmp_path)
    assert_part_rule(caught.value, tmp_path, BODY)


def test_listing_dripped_one_byte_at_a_time_is_cut_off() -> None:
    body = listing([b"name-%04d" % i for i in range(500)])

    def drip_listing(peer: Peer) -> None:
        if peer.read_line():
            peer.send(listing_head(body, 500))
            peer.drip(body, DRIP)

    with LyingServer(drip_listing) as liar, pytest.raises(TimeoutError_) as caught:
        list_from(liar)
    assert "server too slow" in str(caught.value)


# ---------------------------------------------------------------- random cuts


@settings(max_examples=200, deadline=None)
@given(data=st.data(), reset=st.booleans())
def test_cut_at_any_offset_never_leaves_a_wrong_file(data: st.DataObject, reset: bool) -> None:
    """The server stops at an offset hypothesis picks (FIN or RST): never a wrong final file."""
    body = BODY  # larger than the client's first read, so cuts land in both read paths
    stream = head(len(body), digest=digest_bytes(body)) + body
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    with tempfile.TemporaryDirectory() as folder:
        dest = Path(folder)
        with LyingServer(answer(stream[:cut], "reset" if reset else "close")) as liar:
            try:
                result = fetch_from(liar, dest)
            except GetfileError as error:
                assert_one_line(error)
                assert_no_final_file(dest)
                assert_part_rule(error, dest, body)
            else:
                assert cut == len(stream), f"a download cut at {cut} succeeded"
                assert (dest / NAME).read_bytes() == body
                assert result.digest == digest_bytes(body)


def test_silence_to_both_dialects_names_both_causes(tmp_path: Path) -> None:
    """A server that hangs up at once: legacy without the file, or TLS. Say both."""
    with LyingServer(answer(b"")) as liar, pytest.raises(NotFoundError) as caught:
        fetch_from(liar, tmp_path)
    assert "getfiles://" in str(caught.value)
    extended, legacy = liar.requests  # it tried our dialect, then the book's
    assert extended.startswith(b"\x00getfile/1 GET ") and legacy == NAME.encode()
    assert_no_final_file(tmp_path)
    assert not part_of(tmp_path).exists()


# ---------------------------------------------------------------- listings that lie

HOSTILE_NAMES = [
    b"../x",
    b"..",
    b".",
    b"/etc/passwd",
    b"a/b",
    b"sub/../../x",
    b"",
    b"nul\x00byte",
    b"x" * 256,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[repr(n[:20]) for n in HOSTILE_NAMES])
def test_listing_with_a_hostile_name_is_refused(name: bytes) -> None:
    body = listing([b"fine.txt", name])
    reply = listing_head(body, 2) + body
    with LyingServer(answer(reply)) as liar, pytest.raises(ProtocolError) as caught:
        list_from(liar)
    assert_one_line(caught.value)


LISTING_LIES = {
    "more entries than announced": listing_head(listing([b"a", b"b"]), 1) + listing([b"a", b"b"]),
    "no trailing newline": listing_head(b"file 1 0 a", 1) + b"file 1 0 a",
    "unknown kind": listing_head(b"sock 1 0 a\n", 1) + b"sock 1 0 a\n",
    "no entry count": head(len(listing([b"a"]))) + listing([b"a"]),
    "body beyond 1 MiB": b"getfile/1 200 ok\nsize: 2000000\nentries: 1\n\n",
    "next cursor on an empty page": listing_head(b"", 0, next_after=b"zzz"),
    "short body, then close": listing_head(listing([b"a", b"b"]), 2) + b"file 1 0 a\n",
}


@pytest.mark.parametrize("lie", list(LISTING_LIES))
def test_listing_lie_is_refused(lie: str) -> None:
    with LyingServer(answer(LISTING_LIES[lie])) as liar, pytest.raises(ProtocolError) as caught:
        list_from(liar)
    assert_one_line(caught.value)


def test_listing_cursor_that_goes_backwards_is_refused() -> None:
    first, second = listing([b"m"]), listing([b"n"])
    pages = iter([listing_head(first, 1, b"m") + first, listing_head(second, 1, b"a") + second])
    with LyingServer(answer_each(pages)) as liar, pytest.raises(ProtocolError) as caught:
        list_from(liar)
    assert "backwards" in str(caught.value)


# ---------------------------------------------------------------- the CLI says one line

CLI_LIES = {
    "wrong digest": (head(len(BODY), digest=digest_bytes(b"x")) + BODY, "close", 7),
    "garbage head": (b"HTTP/1.1 200 OK\r\n\r\n", "close", 11),
    "fewer bytes": (head(len(BODY), digest=digest_bytes(BODY)) + BODY[:5000], "close", 12),
    "stall after the head": (head(len(BODY), digest=digest_bytes(BODY)), "hold", 4),
}


@pytest.mark.parametrize("lie", list(CLI_LIES))
def test_cli_reports_a_lie_in_one_line(lie: str, tmp_path: Path) -> None:
    reply, then, code = CLI_LIES[lie]
    # Lost or silent links are retried by default; these lies test the one-shot answer.
    no_retries = ["--retries", "0"] if code in (4, 12) else []
    with LyingServer(answer(reply, then)) as liar:
        url = f"getfile://127.0.0.1:{liar.port}/{NAME}"
        done = run_cli(
            "get", "--timeout", "1", *no_retries, "-o", str(tmp_path), url, timeout=BOUND
        )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert_no_final_file(tmp_path)


def test_cli_ls_refuses_a_traversal_listing_in_one_line() -> None:
    body = listing([b"fine.txt", b"../../etc/passwd"])
    with LyingServer(answer(listing_head(body, 2) + body)) as liar:
        done = run_cli("ls", f"getfile://127.0.0.1:{liar.port}/", timeout=BOUND)
    assert done.returncode == 11, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "not a plain file name" in done.stderr
