"""Files of random content and their wire digests, written and read in chunks."""

from __future__ import annotations

import os
from pathlib import Path

import blake3

KIB = 1024
MIB = 1024 * KIB


def write_random(path: Path, size: int, chunk: int = MIB) -> str:
    """Write ``size`` random bytes in chunks; return their ``blake3:<hex>`` digest."""
    hasher = blake3.blake3()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            handle.write(block)
            hasher.update(block)
            left -= len(block)
    return "blake3:" + hasher.hexdigest()


def digest_of(path: Path) -> str:
    """The wire digest of a file on disk, read in chunks (never loaded whole)."""
    hasher = blake3.blake3()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            hasher.update(block)
    return "blake3:" + hasher.hexdigest()


def digest_bytes(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()
