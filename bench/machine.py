"""What the figures were measured on, and the VM quirk every large run must work around."""

from __future__ import annotations

import mmap
import os
import platform
import sys


def describe() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                model,
            )
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as info:
            memory = f"{int(info.readline().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
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
