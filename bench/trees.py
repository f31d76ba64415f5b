"""Source folders of random files, made once and reused, and a check that a copy is identical.

A tree's manifest (every file's relative path and BLAKE3) is written
last, beside the tree (not in it, so the tools do not copy it), so a tree
interrupted while it was being made is made again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.runner import MiB, file_hash

KiB = 1024


@dataclass(frozen=True)
class TreeShape:
    """``files`` files of ``size`` bytes spread evenly over ``folders`` sub-folders (0: flat)."""

    files: int
    size: int
    folders: int = 0

    @property
    def name(self) -> str:
        size = f"{self.size // MiB}MiB" if self.size % MiB == 0 else f"{self.size // KiB}KiB"
        where = f"-in-{self.folders}" if self.folders else ""
        return f"tree-{self.files}x{size}{where}"

    @property
    def total(self) -> int:
        return self.files * self.size

    def describe(self) -> str:
        size = f"{self.size // MiB} MiB" if self.size % MiB == 0 else f"{self.size // KiB} KiB"
        where = f" in {self.folders} folders" if self.folders else ""
        return f"{self.files} x {size}{where}"

    def paths(self) -> list[str]:
        if not self.folders:
            return [f"file-{i:04d}.bin" for i in range(self.files)]
        each = -(-self.files // self.folders)
        return [f"folder-{i // each:02d}/file-{i:04d}.bin" for i in range(self.files)]


def make_tree(root: Path, shape: TreeShape) -> tuple[Path, dict[str, str]]:
    """``root/<shape.name>`` with random content (made once); its folder and manifest."""
    tree = root / shape.name
    manifest = root / f"{shape.name}.manifest.json"
    if manifest.exists():
        return tree, json.loads(manifest.read_text())
    if tree.exists():
        shutil.rmtree(tree)
    digests = {}
    for relative in shape.paths():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            left = shape.size
            while left:
                block = os.urandom(min(left, 16 * MiB))
                out.write(block)
                left -= len(block)
        digests[relative] = file_hash(path)
    manifest.write_text(json.dumps(digests, indent=0, sort_keys=True))
    return tree, digests


def compare(copy: Path, digests: dict[str, str]) -> str:
    """Empty when ``copy`` holds exactly the manifest's files, byte for byte; else what differs."""
    if not copy.is_dir():
        return "no folder received"
    found = {str(path.relative_to(copy)) for path in copy.rglob("*") if path.is_file()}
    missing = sorted(set(digests) - found)
    extra = sorted(found - set(digests))
    if missing:
        return f"{len(missing)} of {len(digests)} files missing (e.g. {missing[0]})"
    if extra:
        return f"{len(extra)} unexpected files (e.g. {extra[0]})"
    for relative, digest in digests.items():
        if file_hash(copy / relative) != digest:
            return f"{relative} differs from the source"
    return ""
