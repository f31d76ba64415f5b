"""A byte-rate limit shared by any number of streams, changeable while they run.

The client's ``--limit-rate`` caps all of one command's downloads together
and the TUI's global limit changes while transfers run, so the limit is one
object the streams share rather than a number each stream keeps. The server
gives each connection its own. Both ask the same question before moving a
chunk: "how long must I wait before these ``n`` bytes may go?" (GCRA, the
token bucket written as one timestamp, so it costs a lock and a few floats).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Credit a stream may use at once, in seconds of its rate: small enough that a
#: limit is felt within a second, large enough that chunks are not split finely.
BURST_SECONDS = 0.1
#: The smallest chunk worth a system call, whatever the rate.
MIN_CHUNK = 4096


class RateLimit:
    """Bytes per second for every stream that shares this object; ``None`` means unlimited.

    Thread-safe: the client's transfers run in threads, the server's in one
    event loop; each caller sleeps the way its world sleeps.
    """

    def __init__(
        self, rate: float | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rate: float | None = None
        #: GCRA's theoretical arrival time: when the bytes already granted are "paid for".
        self._tat = clock()
        self.rate = rate

    @property
    def rate(self) -> float | None:
        return self._rate

    @rate.setter
    def rate(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise ValueError("a rate limit must be positive (None for unlimited)")
        with self._lock:
            self._rate = value
            # A new rate starts afresh: debt run up under a slower one is forgiven.
            self._tat = min(self._tat, self._clock())

    def chunk(self, preferred: int) -> int:
        """The chunk size to move next: at most ``preferred``, at most a burst's worth."""
        rate = self._rate
        if rate is None:
            return preferred
        # Never more than asked: a body's last bytes may be followed by a trailer.
        return min(preferred, max(MIN_CHUNK, int(rate * BURST_SECONDS)))

    def reserve(self, count: int) -> float:
        """Grant ``count`` bytes; the seconds the caller must wait before moving them."""
        with self._lock:
            rate = self._rate
            if rate is None or count <= 0:
                return 0.0
            now = self._clock()
            start = max(self._tat, now)
            self._tat = start + count / rate
            return max(0.0, self._tat - BURST_SECONDS - now)
