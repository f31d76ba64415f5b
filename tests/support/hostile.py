"""A served root full of traps (symlinks out, devices, loops) and the hostile path corpus."""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
HOSTILE_PATHS = PROJECT / "tests" / "data" / "hostile_paths.txt"
UNPRIVILEGED_UID = 65534  # nobody


@dataclass
class HostileTree:
    """A served root full of traps, next to a secret the server must never send."""

    base: Path
    root: Path
    outside: Path
    marker: bytes
    #: Special files that exist in this run, by corpus name (devices need CAP_MKNOD).
    specials: dict[str, str] = field(default_factory=dict)

    @property
    def secret(self) -> Path:
        return self.outside / "secret.txt"

    def expand(self, raw: bytes) -> bytes:
        return raw.replace(b"{ROOT}", os.fsencode(self.root)).replace(
            b"{OUTSIDE}", os.fsencode(self.outside)
        )


def build_hostile_tree() -> HostileTree:
    """Make the tree in a world-readable temp folder, so an unprivileged server can use it.

    Layout (names are what the path corpus refers to)::

        outside/secret.txt           the marker; must never cross the wire
        outside/nested/secret2.txt   the marker again, one level deeper
        served/hello.txt, sub/data.bin, folder/
        served/link_out -> ../outside/secret.txt     (and link_out_abs, absolute)
        served/link_dir_out -> ../outside            (a folder symlink leading out)
        served/link_root -> /, link_zero -> /dev/zero, link_environ -> /proc/self/environ
        served/sub/link_up -> ..                     (inside, but a way up)
        served/chain_out -> link_out                 (symlink to a symlink)
        served/loop_a <-> loop_b, self_loop -> self_loop
        served/hardlink_secret, sub/hardlink_secret2 (hard links to outside/secret.txt)
        served/fifo, served/sock                     (a FIFO and a bound unix socket)
        served/zero_device, null_device              (char devices 1:5, 1:3, if mknod works)
        served/unreadable.bin                        (mode 000)
    """
    base = Path(tempfile.mkdtemp(prefix="getfile-hostile-"))
    base.chmod(0o755)
    marker = b"SECRET-" + uuid.uuid4().hex.encode()
    outside = base / "outside"
    root = base / "served"
    (outside / "nested").mkdir(parents=True)
    (root / "sub").mkdir(parents=True)
    (root / "folder").mkdir()
    (outside / "secret.txt").write_bytes(b"top " + marker + b" secret\n")
    (outside / "nested" / "secret2.txt").write_bytes(marker + b"\n")
    (root / "hello.txt").write_bytes(b"hello from inside\n")
    (root / "sub" / "data.bin").write_bytes(b"inside data " * 1000)
    links = {
        "link_out": "../outside/secret.txt",
        "link_out_abs": str(outside / "secret.txt"),
        "link_dir_out": "../outside",
        "link_root": "/",
        "link_zero": "/dev/zero",
        "link_environ": "/proc/self/environ",
        "sub/link_up": "..",
        "chain_out": "link_out",
        "loop_a": "loop_b",
        "loop_b": "loop_a",
        "self_loop": "self_loop",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    os.link(outside / "secret.txt", root / "hardlink_secret")
    os.link(outside / "nested" / "secret2.txt", root / "sub" / "hardlink_secret2")
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(root / "sock"))
    specials = {"fifo": "fifo", "sock": "socket"}
    for name, minor in (("zero_device", 5), ("null_device", 3)):
        try:
            os.mknod(root / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
            specials[name] = "char device"
        except PermissionError:
            pass  # no CAP_MKNOD: the /dev/zero symlink still covers devices
    unreadable = root / "unreadable.bin"
    unreadable.write_bytes(b"only the owner may read this\n")
    unreadable.chmod(0)
    return HostileTree(base=base, root=root, outside=outside, marker=marker, specials=specials)


def load_corpus(path: Path = HOSTILE_PATHS) -> list[tuple[int, bytes]]:
    """Entries of the corpus as (line number, raw bytes); see the file's header for the escapes."""
    entries = []
    for number, line in enumerate(path.read_text("ascii").splitlines(), 1):
        if not line or line == "#" or line.startswith("# "):
            continue
        raw = line.encode("ascii").decode("unicode_escape").encode("latin-1")
        raw = re.sub(
            rb"\{(\d+)\*([^{}]*)\}", lambda m: m[2] * int(m[1]), raw
        )  # {N*TEXT}: TEXT repeated N times
        entries.append((number, raw))
    return entries
