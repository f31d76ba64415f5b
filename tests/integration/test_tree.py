"""``getfile get -r`` and ``ls -r`` against a real server (issue 12)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    GETFILE,
    KIB,
    ServeProcess,
    run_cli,
    run_cli_on_terminal,
    serve_process,
    wait_until_sync,
)
from tests.support.certs import make_cert_set
from tests.support.links import Link, LinkEmulator

#: Names a real tree holds that a careless client mangles (all legal, none hostile).
ODD_NAMES = [
    "with space.txt",
    "ünïcødé.txt",
    "-leading-dash",
    "#hash%percent&amp",
    "trailing.dot.",
    "x" * 200,
    "new\\line-looking",
]


def build_tree(top: Path) -> dict[str, bytes]:
    """Deep paths, odd names, empty folders, sizes from 0 to 1.5 MiB; returns path -> bytes."""
    made: dict[str, bytes] = {}

    def put(relative: str, size: int) -> None:
        path = top / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        made[relative] = data

    deep = "/".join(f"level{i}" for i in range(12))
    put(f"{deep}/bottom.bin", 3000)
    for i, name in enumerate(ODD_NAMES):
        put(f"odd/{name}", 100 * i)
    for i in range(60):
        put(f"many/f{i:03}.dat", (i * 997) % 9000)
    put("big/one.bin", 1536 * KIB)
    put("zero", 0)
    (top / "empty" / "inner-empty").mkdir(parents=True)
    raw_name = os.fsdecode(b"not-utf8-\xff")
    (top / "odd" / raw_name).write_bytes(b"raw")
    made[f"odd/{raw_name}"] = b"raw"
    # Old, distinct times, so a copy that forgot them shows it.
    for i, relative in enumerate(sorted(made)):
        os.utime(top / relative, ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i))
    os.utime(top / "empty", ns=(1_500_000_000_000_000_000,) * 2)
    return made


def tree_of(top: Path) -> dict[str, tuple[str, bytes | None, int]]:
    """Every entry under ``top``: kind, content for files, mtime (folders' too)."""
    seen: dict[str, tuple[str, bytes | None, int]] = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs:
            path = Path(folder) / name
            seen[os.path.relpath(path, top)] = ("dir", None, path.lstat().st_mtime_ns)
        for name in files:
            path = Path(folder) / name
            seen[os.path.relpath(path, top)] = ("file", path.read_bytes(), path.lstat().st_mtime_ns)
    return seen


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    top = tmp_path / "served" / "photos"
    build_tree(top)
    return top


@pytest.fixture
def served(remote: Path) -> Iterator[ServeProcess]:
    with serve_process(["serve", str(remote.parent), "--port", "0"]) as process:
        yield process


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def get_r(*args: str) -> tuple[int, str, str]:
    done = run_cli("get", "-r", *args, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_a_tree_is_mirrored_identical(served: ServeProcess, remote: Path, out: Path) -> None:
    code, _, err = get_r("-o", str(out), served.url("photos"))
    assert (code, err) == (0, "")
    assert os.listdir(out) == ["photos"]
    assert tree_of(out / "photos") == tree_of(remote)


def test_the_served_root_goes_into_out(served: ServeProcess, remote: Path, out: Path) -> None:
    code, _, err = get_r("-o", str(out), served.url(""))
    assert (code, err) == (0, "")
    assert tree_of(out / "photos") == tree_of(remote)


def test_a_rerun_moves_only_what_is_missing(served: ServeProcess, remote: Path, out: Path) -> None:
    url_path = "photos"
    with LinkEmulator(served.port) as relay:
        url = f"getfile://127.0.0.1:{relay.port}/{url_path}"
        assert get_r("-o", str(out), url)[0] == 0
        first = relay.stats().bytes_down
        mine = out / "photos"
        (mine / "many" / "f007.dat").unlink()
        big = mine / "big" / "one.bin"
        data = big.read_bytes()
        big.unlink()
        part = mine / "big" / "one.bin.getfile-part"
        part.write_bytes(data[: 1024 * KIB])
        code, stdout, err = get_r("-o", str(out), "--json", url)
        second = relay.stats().bytes_down - first
    assert (code, err) == (0, "")
    summary = json.loads(stdout)
    files = sum(1 for kind, _, _ in tree_of(remote).values() if kind == "file")
    assert summary["files"] == 2 and summary["skipped"] == files - 2
    assert tree_of(mine) == tree_of(remote)
    missing = (remote / "many" / "f007.dat").stat().st_size + len(data) - 1024 * KIB
    # The summary counts the files fetched, whole (the resumed part with its file).
    assert summary["bytes"] == (remote / "many" / "f007.dat").stat().st_size + len(data)
    # Only the missing bytes, plus listings and heads (a few KiB for 90 entries).
    assert missing <= second < missing + 32 * KIB, (first, second, missing)


def test_a_local_change_is_kept_exit_8(served: ServeProcess, remote: Path, out: Path) -> None:
    url = served.url("photos")
    assert get_r("-o", str(out), url)[0] == 0
    changed = out / "photos" / "many" / "f010.dat"
    changed.write_bytes(b"mine")
    code, _, err = get_r("-o", str(out), url)
    assert code == 8
    lines = err.splitlines()
    assert len(lines) == 1 and "many/f010.dat" in lines[0] and "kept" in lines[0]
    assert changed.read_bytes() == b"mine"
    code, _, err = get_r("-o", str(out), "--overwrite", "-q", url)
    assert (code, err) == (0, "")
    assert tree_of(out / "photos") == tree_of(remote)


def test_a_tree_through_a_resetting_relay(served: ServeProcess, remote: Path, out: Path) -> None:
    """Every file whole, and the summary's bytes are the tree's: the 1.5 MiB file's last
    attempt alone (its tail after a reset) once counted for the whole file."""
    with LinkEmulator(served.port, Link(reset_every=300 * KIB)) as relay:
        url = f"getfile://127.0.0.1:{relay.port}/photos"
        args = ("-o", str(out), "-j", "2", "--retries", "20", "--timeout", "5", "--json", url)
        code, stdout, err = get_r(*args)
        resets = relay.stats().resets
    assert code == 0, err
    assert resets >= 3
    assert tree_of(out / "photos") == tree_of(remote)
    files = [data for kind, data, _ in tree_of(remote).values() if kind == "file"]
    summary = json.loads(stdout)
    assert summary["files"] == len(files)
    assert summary["bytes"] == sum(len(data or b"") for data in files)


def test_include_and_exclude(served: ServeProcess, out: Path) -> None:
    code, _, err = get_r(
        "-o",
        str(out),
        "--exclude",
        "many/f0[0-4]*",
        "--include",
        "many/**",
        "--include",
        "*/",
        "--exclude",
        "*",
        served.url("photos"),
    )
    assert (code, err) == (0, "")
    got = sorted(p.name for p in (out / "photos" / "many").iterdir())
    assert got == [f"f{i:03}.dat" for i in range(50, 60)]
    assert list((out / "photos" / "big").iterdir()) == []  # folders are walked, as rsync's


def test_a_file_url_is_one_line(served: ServeProcess, out: Path) -> None:
    code, _, err = get_r("-o", str(out), served.url("photos/zero"))
    assert code == 5
    assert err.count("\n") == 1 and "use get without -r" in err


@pytest.mark.parametrize("flags", [["-r"], ["-l"], ["-r", "-h", "--json"]])
def test_ls_of_a_file_gives_no_advice_for_get(served: ServeProcess, flags: list[str]) -> None:
    done = run_cli("ls", *flags, served.url("photos/zero"))
    assert done.returncode == 5
    assert done.stderr == "getfile: photos/zero: is a file, not a folder\n"


def test_ls_recursive_long_and_json(served: ServeProcess, remote: Path) -> None:
    done = run_cli("ls", "-r", "--json", served.url("photos"))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    want = {os.fsdecode(os.fsencode(k)) for k in tree_of(remote)}
    assert {r["path"].encode("utf-8", "replace").decode() for r in rows} >= {
        w for w in want if w.isprintable() and "\udcff" not in w
    }
    assert len(rows) == len(want)
    human = run_cli("ls", "-r", "-h", "-l", served.url("photos"))
    line = next(x for x in human.stdout.splitlines() if x.endswith("big/one.bin"))
    assert "1.50 MiB" in line and line.split()[4].count(":") == 2


def test_on_a_terminal_one_bar_and_a_summary(served: ServeProcess, out: Path) -> None:
    code, stdout, terminal = run_cli_on_terminal("get", "-r", "-o", str(out), served.url("photos"))
    assert (code, stdout) == (0, "")
    files = sum(1 for _ in (out / "photos").rglob("*") if _.is_file())
    assert f"files {files}/{files}" in terminal
    assert f"{files} file(s) fetched" in terminal


def test_a_token_server_proves_every_pipelined_request(
    remote: Path, out: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token-for-the-tree\n")
    argv = ["serve", str(remote.parent), "--port", "0", "--token-file", str(token)]
    with serve_process(argv) as server:
        refused = run_cli("get", "-r", "-o", str(out), server.url("photos"))
        assert refused.returncode == 6
        assert refused.stderr.count("\n") == 1 and "token" in refused.stderr
        code, _, err = get_r("-o", str(out), "--token-file", str(token), server.url("photos"))
    assert (code, err) == (0, "")
    assert tree_of(out / "photos") == tree_of(remote)


def test_ctrl_c_keeps_the_partial_files_and_a_rerun_finishes(
    served: ServeProcess, remote: Path, out: Path
) -> None:
    with LinkEmulator(served.port, Link(rate=256 * KIB)) as relay:
        argv = [*GETFILE, "get", "-r", "-o", str(out), f"getfile://127.0.0.1:{relay.port}/photos"]
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_sync(lambda: any(out.rglob("*.getfile-part")), "a partial file", 20)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert proc.returncode == 130 and err == "getfile: stopped\n"
    assert any(out.rglob("*.getfile-part"))
    code, _, err = get_r("-o", str(out), served.url("photos"))
    assert (code, err) == (0, "")
    assert tree_of(out / "photos") == tree_of(remote)


def test_a_link_that_dies_is_a_few_lines_not_one_per_file(served: ServeProcess, out: Path) -> None:
    with LinkEmulator(served.port, Link(reset_every=100 * KIB)) as relay:
        url = f"getfile://127.0.0.1:{relay.port}/photos"
        code, stdout, err = get_r("-o", str(out), "-j", "1", "--retries", "0", "--json", url)
    assert code == 12, err
    assert 1 <= len(err.splitlines()) <= 2 and "reset" in err
    summary = json.loads(stdout)
    assert summary["failed"] > 10 and summary["exit"] == 12


def test_a_tree_over_tls(remote: Path, out: Path, tmp_path: Path) -> None:
    certs = make_cert_set(tmp_path / "certs")
    argv = ["serve", str(remote.parent), "--port", "0"]
    argv += ["--tls-cert", str(certs.good.cert), "--tls-key", str(certs.good.key)]
    with serve_process(argv) as server:
        url = f"getfiles://127.0.0.1:{server.port}/photos"
        code, _, err = get_r("-o", str(out), "--cafile", str(certs.trusted_ca), url)
    assert (code, err) == (0, "")
    assert tree_of(out / "photos") == tree_of(remote)


def test_a_symlink_planted_as_the_top_folder_is_refused(
    served: ServeProcess, out: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "photos").symlink_to(elsewhere)
    code, _, err = get_r("-o", str(out), served.url("photos"))
    assert code == 8 and "symlink" in err and err.count("\n") == 1
    assert list(elsewhere.iterdir()) == []


def test_a_rate_limit_longer_than_the_timeout_is_not_silence(tmp_path: Path, out: Path) -> None:
    # One thread reads every connection; while it waits out the rate limit
    # (1 s per 32 KiB file here) it reads none of them. That wait is ours,
    # not the server's silence: --timeout 1 must not cut the connections.
    top = tmp_path / "slow" / "top"
    top.mkdir(parents=True)
    made = {f"f{i}": os.urandom(32 * KIB) for i in range(5)}
    for name, data in made.items():
        (top / name).write_bytes(data)
    with serve_process(["serve", str(top.parent), "--port", "0"]) as server:
        url = server.url("top")
        flags = ["--limit-rate", "32K", "--timeout", "1", "--retries", "0"]
        code, _, err = get_r("-o", str(out), *flags, url)
    assert (code, err) == (0, "")
    assert {p.name: p.read_bytes() for p in (out / "top").iterdir()} == made
