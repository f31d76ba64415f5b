"""What the figures were measured on, and the VM quirk every large run must work around."""

from __future__ import annotations

import mmap
import os
import platform
import sys

#: The CPU features that decide hashing and copying speed (BLAKE3 picks SSE4.1, AVX2 or
#: AVX-512 at run time; sha256 uses SHA-NI; ARM has NEON/ASIMD and SHA2): printed with
#: every table so figures from different machines are never compared (issue 15).
SIMD_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "avx512f",
    "avx512vl",
    "sha_ni",
    "aes",
    "asimd",
    "neon",
    "sha2",
)


def cpu_model_and_simd() -> tuple[str, str]:
    """The CPU's model name and which of ``SIMD_FLAGS`` it has (from /proc/cpuinfo)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and model == "unknown":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    present = [flag for flag in SIMD_FLAGS if flag in flags]
    return model, " ".join(present) or "none of " + " ".join(SIMD_FLAGS)


def describe() -> dict[str, str]:
    model, simd = cpu_model_and_simd()
    try:
        with open("/proc/meminfo") as info:
            memory = f"{int(info.readline().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "simd": simd,
        "memory": memory,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def prefault(size: int) -> None:
    """Touch ``size`` bytes of fresh memory and give it back, just before a timed run.

    On this VM, memory the guest has not touched for a second or so is slow
    to touch again (the host takes it back), which would make a 1 GiB
    download measure the hypervisor. Populating and freeing it right before
    the run means the page cache the run fills comes from warm pages.
    """
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    region = mmap.mmap(-1, size, flags=flags)
    if not getattr(mmap, "MAP_POPULATE", 0):
        for offset in range(0, size, mmap.PAGESIZE):
            region[offset] = 1
    region.close()
