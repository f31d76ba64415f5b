"""``get -r`` against a lying server (issue 12): hostile names, duplicates, kind changes, floods.

The server here is scripted: it speaks protocol version 2 on kept
connections, as a real one does, but its listings say whatever the test
wants. Whatever it says, nothing may land outside ``OUT``, every refusal
is one line, and the command ends with a clear exit code, never a
traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from getfile_core import protocol
from getfile_core.client.pipeline import SMALL_BODY
from getfile_core.protocol import Request, Response, Status, Verb
from tests.support import digest_bytes, run_cli

MTIME = 1_700_000_000_000_000_000
#: Entries in the flooding folder, in pages of the protocol's 1000.
FLOOD = 10_000


def line(kind: str, name: bytes, size: int = 1) -> bytes:
    return b"%s %d %d %s\n" % (kind.encode(), size, MTIME, protocol.encode_path(name))


class ListingLiar:
    """A version-2 server whose listings are given page by page; files are served honestly."""

    def __init__(
        self,
        listings: dict[bytes, list[list[bytes]]],
        files: dict[bytes, bytes],
        raw: dict[bytes, bytes] | None = None,
    ):
        self.listings = listings
        self.files = files
        #: Answers sent as given, whatever was asked of these paths.
        self.raw = raw or {}
        self.requests: list[Request] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.5)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop)

    @property
    def url(self) -> str:
        return f"getfile://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> ListingLiar:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        assert not any(t.is_alive() for t in [self._accept, *self._threads])

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(sock,))
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.5)
        buffer = b""
        with contextlib.closing(sock):
            while not self._stop.is_set():
                if b"\n" not in buffer:
                    try:
                        data = sock.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                    continue
                raw, buffer = buffer.split(b"\n", 1)
                request = protocol.parse_request_line(raw)
                assert isinstance(request, Request)
                self.requests.append(request)
                with contextlib.suppress(OSError):
                    sock.sendall(self._answer(request))

    def _answer(self, request: Request) -> bytes:
        keep = 999 if request.keep else None
        if request.path in self.raw:
            return self.raw[request.path]
        if request.verb is Verb.LIST and request.path.startswith(b"abyss"):
            body = line("dir", b"d")  # a folder in every folder, for ever
            head = Response(Status.OK, size=len(body), entries=1, version=2, keep=keep)
            return protocol.encode_response_head(head) + body
        if request.verb is Verb.LIST and request.path in self.listings:
            pages = self.listings[request.path]
            index = int(request.after[1:]) if request.after else 0
            body = b"".join(pages[index])
            cursor = b"p%04d" % (index + 1) if index + 1 < len(pages) else None
            head = Response(Status.OK, size=len(body), entries=len(pages[index]), next_after=cursor)
        elif request.verb is Verb.GET and request.path in self.files:
            data = self.files[request.path][request.offset :]
            whole = self.files[request.path]
            head = Response(
                Status.OK,
                size=len(whole),
                mtime_ns=MTIME,
                digest=digest_bytes(whole),
                offset=request.offset,
            )
            body = data
        elif request.verb is Verb.GET and request.path in self.listings:
            head, body = Response(Status.IS_A_DIRECTORY, message="a folder"), b""
        elif request.verb is Verb.LIST and request.path in self.files:
            head, body = Response(Status.NOT_A_DIRECTORY, message="a file"), b""
        else:
            head, body = Response(Status.NOT_FOUND, message="no such thing"), b""
        head = head.replace(version=request.version, keep=keep)
        return protocol.encode_response_head(head) + body


ESCAPE = b"evil\x1b]0;owned\x07name"
RLO = "txt.\u202eexe".encode()


def hostile_server() -> ListingLiar:
    top = [
        line("file", b"safe.txt", 5),
        line("file", ESCAPE),
        line("file", RLO),
        line("file", b"x" * 250),  # fits NAME_MAX, but not with .getfile-part after it
        line("file", b"sneaky.getfile-part"),
        line("file", b"dup"),
        line("file", b"dup"),
        line("file", b"twin"),
        line("dir", b"twin"),
        line("dir", b"dots"),
        line("dir", b"slash"),
        line("dir", b"shifty"),  # a folder here, a file when listed
        line("file", b"flip"),  # a file here, a folder when fetched
        line("dir", b"planted"),  # a symlink to outside OUT is waiting locally
        line("dir", b"many"),
        line("other", b"fifo"),
    ]
    many = [
        [line("file", b"f%05d" % (page * 1000 + i)) for i in range(1000)]
        for page in range(FLOOD // 1000)
    ]
    listings = {
        b"top": [top],
        b"top/dots": [[b"file 1 0 ..\n"]],
        b"top/slash": [[line("file", b"ok"), b"file 1 0 a%2Fb\n"]],
        b"top/planted": [[line("file", b"pwned")]],
        b"top/many": many,
        b"top/flip": [[line("file", b"inner")]],
        b"top/twin": [[line("file", b"inside")]],
    }
    files = {
        b"top/safe.txt": b"hello",
        b"top/dup": b"d",
        b"top/twin": b"t",
        b"top/shifty": b"s",
        b"top/planted/pwned": b"p",
        b"top/slash/ok": b"o",
        **{b"top/many/f%05d" % i: b"m" for i in range(FLOOD)},
    }
    return ListingLiar(listings, files)


@pytest.fixture
def liar() -> ListingLiar:
    with hostile_server() as server:
        yield server


def files_under(folder: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(where, name), folder)
        for where, dirs, names in os.walk(folder)
        for name in [*names, *dirs]
    }


def test_hostile_listings_write_nothing_outside_out(liar: ListingLiar, tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "top").mkdir()
    (out / "top" / "planted").symlink_to(outside)
    before = {p for p in files_under(tmp_path) if not p.startswith("out/")}

    done = run_cli("get", "-r", "-o", str(out), "--exclude", "many/", f"{liar.url}/top")

    assert "Traceback" not in done.stderr
    assert done.returncode == 11, done.stderr  # the first problem: a lying listing
    assert files_under(outside) == set()
    assert {p for p in files_under(tmp_path) if not p.startswith("out/")} == before
    assert (out / "top" / "safe.txt").read_bytes() == b"hello"
    assert (out / "top" / "dup").read_bytes() == b"d"  # the first of the two
    assert (out / "top" / "slash").is_dir() and not (out / "top" / "slash" / "ok").exists()
    lines = done.stderr.splitlines()
    assert all(x.startswith("getfile: ") and "\x1b" not in x and "\u202e" not in x for x in lines)
    text = done.stderr
    for words in [
        "control characters",  # ESC and the RLO
        "too long",
        "reserved for partial downloads",
        "'dup' twice",
        "'twin' as a file and as a dir",
        "dots/: ",  # the page with '..' is refused whole
        "slash/: ",
        "shifty/: listed as a folder but is a file now",
        "flip: listed as a file but is a folder now",
        "planted",  # the symlink: refused, never followed
        "fifo: not a file or folder",
    ]:
        assert words in text, words
    assert text.count("control characters") == 2
    assert len(lines) == 12, text


def test_ten_thousand_entries_are_listed(liar: ListingLiar) -> None:
    done = run_cli("ls", "-r", "--json", "--max", "20000", f"{liar.url}/top/many", timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    rows = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(rows) == FLOOD and len({r["path"] for r in rows}) == FLOOD


def test_a_tree_over_its_entry_bound_stops_with_one_line(liar: ListingLiar, tmp_path: Path) -> None:
    done = run_cli(
        "get", "-r", "-o", str(tmp_path), "--max-entries", "1500", f"{liar.url}/top/many"
    )
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stderr.count("--max-entries") == 1
    fetched = os.listdir(tmp_path / "many")
    assert 1000 <= len(fetched) <= 1500
    # The pages after the bound were never asked for.
    pages = [r for r in liar.requests if r.verb is Verb.LIST]
    assert len(pages) <= 3


def test_a_listing_that_claims_gigabytes_is_refused_unread(tmp_path: Path) -> None:
    huge = b"getfile/2 200 ok\nsize: 2147483648\nentries: 3\nkeep: 999\n\n" + b"x" * 65536
    claims = ListingLiar(
        {b"top": [[line("dir", b"huge"), line("file", b"ok.txt")]]},
        {b"top/ok.txt": b"fine"},
        raw={b"top/huge": huge},
    )
    with claims:
        done = run_cli("get", "-r", "-o", str(tmp_path), f"{claims.url}/top")
    assert done.returncode == 11, done.stderr
    assert "larger than the protocol allows" in done.stderr and done.stderr.count("\n") == 1
    assert (tmp_path / "top" / "ok.txt").read_bytes() == b"fine"


def test_an_endless_tree_stops_at_the_depth_bound(liar: ListingLiar, tmp_path: Path) -> None:
    done = run_cli("get", "-r", "-o", str(tmp_path), "--max-depth", "10", f"{liar.url}/abyss")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "--max-depth" in done.stderr
    depth = max(len(Path(w).relative_to(tmp_path).parts) for w, _, _ in os.walk(tmp_path))
    assert depth == 11  # abyss/ and ten folders below it


def test_a_file_that_grew_past_the_small_size_is_streamed_not_held(tmp_path: Path) -> None:
    # Listed at 10 bytes, served at 1 MiB and more: it is not taken into memory
    # but handed to a thread that streams it to its .part (the connection it
    # came on is given up: what was asked behind it is asked again elsewhere).
    grown = os.urandom(SMALL_BODY + 12345)
    names = [b"a-small", b"grew", b"z-small"]
    server = ListingLiar(
        {b"top": [[line("file", name, 10) for name in names]]},
        {b"top/a-small": b"a" * 10, b"top/grew": grown, b"top/z-small": b"z" * 10},
    )
    with server:
        done = run_cli("get", "-r", "-o", str(tmp_path), f"{server.url}/top")
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "top" / "grew").read_bytes() == grown
    assert sorted(os.listdir(tmp_path / "top")) == ["a-small", "grew", "z-small"]
    gets = [r.path for r in server.requests if r.verb is Verb.GET]
    assert set(gets) == {b"top/a-small", b"top/grew", b"top/z-small"}
    assert gets.count(b"top/grew") == 2  # once as a small file, once streamed


def test_a_small_files_part_is_resumed_and_verified_whole(tmp_path: Path) -> None:
    data = os.urandom(3000)
    server = ListingLiar({b"top": [[line("file", b"f", len(data))]]}, {b"top/f": data})
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "f.getfile-part").write_bytes(data[:1000])  # an earlier run's
    with server:
        done = run_cli("get", "-r", "-o", str(tmp_path), f"{server.url}/top")
    assert (done.returncode, done.stderr) == (0, "")
    assert os.listdir(tmp_path / "top") == ["f"]
    assert (tmp_path / "top" / "f").read_bytes() == data
    assert [r.offset for r in server.requests if r.verb is Verb.GET] == [1000]


def test_a_small_files_part_that_lies_is_removed(tmp_path: Path) -> None:
    data = os.urandom(3000)
    server = ListingLiar({b"top": [[line("file", b"f", len(data))]]}, {b"top/f": data})
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "f.getfile-part").write_bytes(b"x" * 1000)  # not the file's start
    with server:
        done = run_cli("get", "-r", "-o", str(tmp_path), f"{server.url}/top")
    assert done.returncode == 7 and "digest mismatch" in done.stderr, done.stderr
    assert os.listdir(tmp_path / "top") == []  # the next run starts afresh
