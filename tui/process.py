"""What the app changes in its own process while it runs, and puts back when it ends:
the interpreter's thread switch interval, and the SIGHUP/SIGTERM handlers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable

#: The SSH session dropped or the terminal closed (SIGHUP), or we were told to stop.
HANG_UPS = (signal.SIGHUP, signal.SIGTERM)
#: Seconds a waiting thread may wait for the GIL while the UI draws.
SWITCH_INTERVAL = 0.001


class ProcessHooks:
    def __init__(self) -> None:
        self._switch_interval: float | None = None

    def install(self, on_hang_up: Callable[[], object]) -> None:
        """Call on the app's event loop (``on_mount``)."""
        # Transfers run in threads that need the GIL for a moment per MiB. While the UI
        # draws, a waiting thread gets it only every "switch interval" (5 ms by default),
        # which caps a download at a few hundred MiB/s; 1 ms keeps drawing cheap for it.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        loop = asyncio.get_running_loop()
        for signal_number in HANG_UPS:
            # Save the queue as it is, leave the .part files, exit cleanly.
            loop.add_signal_handler(signal_number, on_hang_up)

    def remove(self) -> None:
        """Call on the same loop (``on_unmount``): put back what ``install`` changed."""
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        loop = asyncio.get_running_loop()
        for signal_number in HANG_UPS:
            loop.remove_signal_handler(signal_number)


def end_process_after(seconds: float) -> None:
    """End the process after ``seconds`` if a clean exit has not happened by then.

    Only for a hang-up: the terminal is gone, and Textual's shutdown can block
    for ever writing its last frames to it (its writer thread's bounded queue
    stays full), which left the app running, unseen, after the SSH session
    dropped (found with py-spy: the main thread in ``WriterThread.stop``). By
    then the queue is saved and the partial files are on disk, so there is
    nothing left to lose; a daemon timer does not delay a clean exit.
    """
    timer = threading.Timer(seconds, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
