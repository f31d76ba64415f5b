"""The integrity digest: BLAKE3, incremental, named on the wire as ``blake3:<hex>``.

Chosen by measurement on the project's 2-core machine (1 MiB updates, one
core): sha256 1735 MB/s, blake2b 944 MB/s, BLAKE3 7356 MB/s, xxh3_128
45604 MB/s. Loopback tops out near 3300 MB/s, so sha256 on the receiving
path would halve throughput; BLAKE3 costs well under a third of the budget
and, unlike xxh3, is cryptographic, which matters once auth and TLS vouch
for the server. The blake3 package releases the GIL while hashing.
"""

from __future__ import annotations

import mmap
import os

import blake3

ALGORITHM = "blake3"
CHUNK = 1024 * 1024


def new_hasher() -> blake3.blake3:
    return blake3.blake3()


def format_digest(hasher: blake3.blake3) -> str:
    return f"{ALGORITHM}:{hasher.hexdigest()}"


def hash_descriptor(fd: int, length: int, hasher: blake3.blake3 | None = None) -> blake3.blake3:
    """Hash the first ``length`` bytes of an open file without moving its offset."""
    hasher = hasher or new_hasher()
    buffer = bytearray(min(CHUNK, max(length, 1)))
    view = memoryview(buffer)
    position = 0
    while position < length:
        want = min(len(buffer), length - position)
        got = os.preadv(fd, [view[:want]], position)
        if got <= 0:
            raise OSError(f"file shrank while hashing ({position} of {length} bytes)")
        hasher.update(view[:got])
        position += got
    return hasher


def hash_written(fd: int, start: int, end: int, hasher: blake3.blake3) -> None:
    """Hash bytes ``[start, end)`` of a file this process just wrote, from the page cache.

    A read-only mapping hashes the cached pages in place: no copy, unlike
    ``pread``. Only for our own locked ``.part`` and only over bytes already
    written: a mapped range that another process truncates away would raise
    SIGBUS, which is why the server, whose files others may change, reads.
    """
    base = start - start % mmap.ALLOCATIONGRANULARITY
    with (
        mmap.mmap(fd, end - base, access=mmap.ACCESS_READ, offset=base) as region,
        memoryview(region) as view,
        view[start - base :] as window,
    ):
        hasher.update(window)


def file_digest(fd: int, length: int) -> str:
    return format_digest(hash_descriptor(fd, length))
