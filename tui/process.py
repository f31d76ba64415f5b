"""What the app changes in its own process while it runs, and puts back when it ends:
the interpreter's thread switch interval, the SIGHUP/SIGTERM handlers, what a
SIGCONT does once the terminal is gone, and a watch on the terminal itself."""

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
#: The exit status when ``end_process_after`` had to end the process (128 + SIGHUP, as a
#: shell reports a process the hang-up killed); a clean exit after a hang-up is 0.
FORCED_EXIT = 129
#: The descriptor Textual's Linux driver draws on (``sys.__stderr__``), and stdout.
SCREEN_FDS = (2, 1)
#: Seconds between two looks at whether the terminal is still there (one cheap ioctl).
WATCH_INTERVAL = 1.0


class ProcessHooks:
    def __init__(self) -> None:
        self._switch_interval: float | None = None
        self._on_continue_before: object = None
        self._guarding = False
        self._watch: TerminalWatch | None = None

    def install(
        self,
        on_hang_up: Callable[[], object],
        *,
        own_terminal: bool = False,
        give_up_after: float = 15.0,
    ) -> None:
        """Call on the app's event loop (``on_mount``). ``own_terminal``: the app draws on
        this process's terminal (``main()``, never a test): guard its SIGCONT and watch
        the terminal; ``give_up_after``: seconds the watch then allows a clean exit."""
        # Transfers run in threads that need the GIL for a moment per MiB. While the UI
        # draws, a waiting thread gets it only every "switch interval" (5 ms by default),
        # which caps a download at a few hundred MiB/s; 1 ms keeps drawing cheap for it.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        loop = asyncio.get_running_loop()
        for signal_number in HANG_UPS:
            # Save the queue as it is, leave the .part files, exit cleanly.
            loop.add_signal_handler(signal_number, on_hang_up)
        if own_terminal and os.isatty(SCREEN_FDS[0]):
            self._on_continue_before = signal.getsignal(signal.SIGCONT)
            signal.signal(signal.SIGCONT, self._on_continue)
            self._guarding = True
            self._watch = TerminalWatch(give_up_after)
            self._watch.start()

    def _on_continue(self, signal_number: int, frame: object) -> None:
        """SIGCONT: Textual's driver restarts its screen (a new writer thread), which is
        right after ctrl+z and ``fg``, and wrong when the terminal hung up: a closed tmux
        pane or SSH session sends SIGCONT with the SIGHUP. The new writer thread died on
        its first write (EIO), its queue filled, and the app's clean exit then blocked
        for ever putting its last frame there (py-spy: ``WriterThread.stop`` in
        ``Queue.put``), so only ``end_process_after`` ended it, 15 s later and spinning
        on the dead terminal's input. A dead terminal gets no new screen: its output
        goes to /dev/null and the SIGHUP that came with it ends the app cleanly."""
        if terminal_gone():
            leave_dead_terminal()
            return
        before = self._on_continue_before
        if callable(before):
            before(signal_number, frame)

    def remove(self) -> None:
        """Call on the same loop (``on_unmount``): put back what ``install`` changed."""
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        if self._guarding:
            signal.signal(signal.SIGCONT, self._on_continue_before)  # type: ignore[arg-type]
            self._guarding = False
        if self._watch is not None:
            self._watch.stop()
            self._watch = None


class TerminalWatch:
    """Notices a terminal that is gone when no signal says so, and hangs the app up.

    A process whose terminal closes is told only if it leads the session or
    its shell passes the SIGHUP on (a shell under ``nohup`` or ``trap '' HUP``
    does not). Untold, the app drew on: Textual's writer thread died on EIO,
    its queue filled, the event loop blocked in ``WriterThread.write`` (py-spy)
    where no asyncio signal handler can run, not even SIGTERM's, and the input
    thread spun on the dead terminal's end of file: two such processes were
    found after 20 minutes at 77 % of a core each. Once a second this thread
    looks (``isatty``); when the terminal is gone it sends the output to
    /dev/null, arms ``end_process_after`` (the loop may already be blocked) and
    sends the process the SIGHUP nobody sent, so the app saves and exits.
    """

    def __init__(self, give_up_after: float, interval: float = WATCH_INTERVAL) -> None:
        self.give_up_after = give_up_after
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="terminal-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if terminal_gone():
                leave_dead_terminal()
                end_process_after(self.give_up_after)
                os.kill(os.getpid(), signal.SIGHUP)
                return
        loop = asyncio.get_running_loop()
        for signal_number in HANG_UPS:
            loop.remove_signal_handler(signal_number)


def terminal_gone() -> bool:
    """The screen's descriptor no longer reaches a terminal (it hung up: ``isatty`` is
    False on a hung-up tty, whose every call but close fails with EIO)."""
    return not os.isatty(SCREEN_FDS[0])


def leave_dead_terminal() -> None:
    """Point stdout and stderr at /dev/null, so that whatever the app still draws or
    prints on its way out succeeds instead of failing with EIO (which kills Textual's
    writer thread and then blocks the exit on its full queue). Only for a terminal
    that is gone: nothing written there could ever be read."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in SCREEN_FDS:
            os.dup2(null, fd)
    finally:
        os.close(null)


def end_process_after(seconds: float) -> None:
    """End the process after ``seconds`` if a clean exit has not happened by then.

    Only for a hang-up: the terminal is gone, and Textual's shutdown can block
    for ever writing its last frames to it (its writer thread's bounded queue
    stays full), which left the app running, unseen, after the SSH session
    dropped (found with py-spy: the main thread in ``WriterThread.stop``). By
    then the queue is saved and the partial files are on disk, so there is
    nothing left to lose; a daemon timer does not delay a clean exit. It exits with
    ``FORCED_EXIT``, so that a wrapper (and a test) can tell it from a clean exit.
    """
    timer = threading.Timer(seconds, os._exit, args=(FORCED_EXIT,))
    timer.daemon = True
    timer.start()
