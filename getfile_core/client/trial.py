"""The first large verified download on a machine tries every receive path on its own bytes.

The body is received in ``strategy.SEGMENT``-byte segments: one to warm up
(TCP's receive window is still growing), then ``strategy.ROUNDS`` rounds in
which each path of ``strategy.CHOICES`` takes one segment, the order
rotating so no path always follows another. A segment's receiving-thread
CPU time and wall time run from its first byte to its last byte hashed
(``finish``), so a path pays for its own read-back. After the rounds
``strategy.settle`` turns the figures into the verdict (kept for the next
downloads) and the rest of the body takes the winner.

Switching paths mid-body is safe: every receiver writes at the file's
current offset and feeds the one hasher in order, and a segment's receiver
is finished (digest up to date) before the next takes over, re-reading the
offset (``resume``). Each path keeps its receiver (and buffers) between
turns, as a download would. The trial moves no extra byte; it costs what
the losing paths cost on ``2 x ROUNDS x SEGMENT`` bytes (this Xeon: ~10%
of 192 MiB's 0.12 s, once).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import blake3

from getfile_core.client import strategy
from getfile_core.client.receive import Receiver


class TrialReceiver(Receiver):
    """Takes turns between the paths segment by segment, then keeps the winner."""

    def __init__(
        self,
        sock: socket.socket,
        fd: int,
        hasher: blake3.blake3 | None,
        check_cancelled: Callable[[], None],
        make: Callable[[str], Receiver],
        place: str,
    ) -> None:
        super().__init__(sock, fd, hasher, check_cancelled)
        self.make = make
        self.place = place
        choices = list(strategy.CHOICES)
        self.plan = [strategy.PRIOR]  # the warm-up segment, not counted
        for round_ in range(strategy.ROUNDS):
            shift = round_ % len(choices)
            self.plan += choices[shift:] + choices[:shift]
        self.figures: dict[str, dict[str, list[float]]] = {
            "cpu": {choice: [] for choice in choices},
            "wall": {choice: [] for choice in choices},
        }
        self.segments = 0
        self.verdict: str | None = None
        self.settled = False
        #: One receiver per path, kept open between its turns (a fresh 1 MiB buffer
        #: per turn would charge ``buffer`` for page faults a download never pays).
        self.receivers: dict[str, Receiver] = {}
        self._open(self.plan[0])

    def _open(self, choice: str) -> None:
        self.choice = choice
        self.cpu, self.wall = time.thread_time(), time.perf_counter()
        self.left = float("inf") if self.settled else strategy.SEGMENT
        if choice not in self.receivers:
            self.receivers[choice] = self.make(choice)
        self.current = self.receivers[choice]
        self.current.resume()

    def receive(self, want: int) -> int:
        count = self.current.receive(min(want, self.left))
        if count and not self.settled:
            self.left -= count
            if self.left <= 0:
                self._next_segment()
        return count

    def _next_segment(self) -> None:
        self.current.finish()
        cpu = time.thread_time() - self.cpu
        wall = time.perf_counter() - self.wall
        if self.segments:  # the first one warmed up
            per_gib = 2**30 / strategy.SEGMENT
            self.figures["cpu"][self.choice].append(cpu * per_gib)
            self.figures["wall"][self.choice].append(wall * per_gib)
        self.segments += 1
        if self.segments < len(self.plan):
            self._open(self.plan[self.segments])
            return
        self.settled = True
        self.verdict = strategy.settle(self.place, self.figures)
        self._open(self.verdict or strategy.PRIOR)
        for choice, receiver in list(self.receivers.items()):
            if receiver is not self.current:
                del self.receivers[choice]
                receiver.close()

    def finish(self) -> None:
        self.current.finish()

    def close(self) -> None:
        try:
            for receiver in self.receivers.values():
                receiver.close()
        finally:
            if not self.settled:  # the body ended (or failed) first: no verdict
                self.settled = True
                strategy.settle(self.place, None)
