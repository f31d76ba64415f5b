"""Import hygiene: ``getfile --version``, ``import getfile_core`` and ``getfile get`` stay cheap.

Neither of the first two loads an event loop, TLS, rich, Textual, shtab or
blake3: those are paid for by the command or the call that needs them (the
public API is lazy). Read from ``python -X importtime``, which lists every
module a fresh interpreter imported, so a heavy import anywhere on the path
shows up.

A one-file ``getfile get`` (and a ``--segments`` one) is meant to start
about as fast as a 20-line socket script (issue 15: at most 1.3x, a whole
process against a whole process; docs/performance.md has the budget), so
the modules it must not load are pinned here, read from ``sys.modules``
when the real command exits (lazy imports included, however made).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.processes import serve_process

HEAVY = ("asyncio", "ssl", "rich", "textual", "shtab", "blake3")
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", re.M)


def modules_loaded(*argv: str) -> set[str]:
    """Every module a fresh ``python -X importtime ARGV`` imported (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    return set(IMPORTED.findall(done.stderr))


def heavy_in(loaded: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in loaded} & set(HEAVY))


def test_version_loads_nothing_heavy() -> None:
    loaded = modules_loaded("-m", "getfile_core", "--version")
    assert "getfile_core.cli.main" in loaded, "importtime output not understood"
    assert not heavy_in(loaded), heavy_in(loaded)


def test_importing_the_library_loads_nothing_heavy() -> None:
    loaded = modules_loaded("-c", "import getfile_core")
    assert "getfile_core" in loaded, "importtime output not understood"
    assert not heavy_in(loaded), heavy_in(loaded)


#: Not on a download's path, each with what it cost there (``-X importtime``, this machine).
NOT_ON_GET_PATH = (
    "asyncio",  # ~30 ms: the one-file path runs the blocking transfer, no event loop
    "dataclasses",  # 6.3 ms with inspect; each dataclass ~0.5 ms more (getfile_core._values)
    "inspect",
    "ast",
    "typing",  # ~1.7 ms: annotations are strings, TYPE_CHECKING is spelled without it
    "shutil",  # 1.6 ms: argparse's help formatter asks it the terminal width
    "encodings.idna",  # ~1 ms: getaddrinfo is given ASCII host names as bytes
    "ssl",  # getfiles:// only
    "hashlib",  # ~2.5 ms: only for a TLS pin or a published checksum
    "json",  # the receive strategy's cache: only for bodies of 256 MiB or more
    "tempfile",
    "platformdirs",
    "concurrent",
    "rich",  # the progress display: only on a terminal
    "textual",
    "shtab",
    "ctypes",  # 1.7 ms: renameat2 only for a tree's many files (destination.rename_no_clobber)
)

#: Runs ``getfile ARGV`` as the ``getfile`` script does (``main()`` reading
#: ``sys.argv``); at exit, after every other exit hook, writes ``sys.modules``
#: to the file named by the first argument.
_LIST_MODULES_AT_EXIT = (
    "import atexit, sys\n"
    "listing = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(listing, 'w').write('\\n'.join(sorted(sys.modules))))\n"
    "from getfile_core.cli import main\n"
    "sys.exit(main())\n"
)


def modules_at_exit(tmp_path: Path, *argv: str) -> set[str]:
    """Every module loaded when ``getfile ARGV`` (which must succeed) exits."""
    listing = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES_AT_EXIT, str(listing), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return set(listing.read_text().split())


def not_wanted_in(loaded: set[str]) -> list[str]:
    return sorted(
        name for name in loaded if name.split(".")[0] in NOT_ON_GET_PATH or name in NOT_ON_GET_PATH
    )


def test_a_one_file_get_loads_only_what_it_needs(tmp_path: Path) -> None:
    root, out = tmp_path / "served", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    data = os.urandom(1024 * 1024)
    (root / "one.bin").write_bytes(data)
    with serve_process(["serve", str(root), "--port", "0", "-q"]) as server:
        loaded = modules_at_exit(tmp_path, "get", "-q", "-o", str(out), server.url("one.bin"))
    assert (out / "one.bin").read_bytes() == data
    assert "getfile_core.client.get" in loaded, "the download did not run in that process"
    assert "getfile_core.client.segments" not in loaded
    assert not_wanted_in(loaded) == []


def test_a_segmented_get_loads_only_what_it_needs(tmp_path: Path) -> None:
    root, out = tmp_path / "served", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    data = os.urandom(5 * 1024 * 1024)  # over segments.MIN_SEGMENTED
    (root / "big.bin").write_bytes(data)
    with serve_process(["serve", str(root), "--port", "0", "-q"]) as server:
        argv = ("get", "-q", "--segments", "2", "-o", str(out), server.url("big.bin"))
        loaded = modules_at_exit(tmp_path, *argv)
    assert (out / "big.bin").read_bytes() == data
    assert "getfile_core.client.rangefetch" in loaded, "the download was not segmented"
    assert not_wanted_in(loaded) == []


#: What a ``get -r`` of a tree needs besides the one-file path's modules: ``ctypes`` for
#: renameat2 (worth 1.7 ms for thousands of files). ``json`` only for ``--json``.
TREE_MAY_LOAD = ("ctypes",)


def test_a_tree_get_loads_only_what_it_needs(tmp_path: Path) -> None:
    root, out = tmp_path / "served", tmp_path / "out"
    (root / "top" / "sub").mkdir(parents=True)
    out.mkdir()
    files = {f"top/sub/{n}.bin": os.urandom(4096) for n in range(20)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    with serve_process(["serve", str(root), "--port", "0", "-q"]) as server:
        argv = ("get", "-r", "-q", "-j", "2", "-o", str(out), server.url("top"))
        loaded = modules_at_exit(tmp_path, *argv)
    assert {name: (out / name).read_bytes() for name in files} == files
    assert "getfile_core.client.multiplex" in loaded, "the tree was not fetched in that process"
    wanted = [name for name in not_wanted_in(loaded) if name.split(".")[0] not in TREE_MAY_LOAD]
    assert wanted == []
    assert "json" not in loaded
    assert "getfile_core.client.segments" not in loaded
