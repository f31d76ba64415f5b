"""Try again after a lost, reset or timed-out connection, with backoff; never after a refusal.

The links getfile is used over (SSH tunnels, 100 KiB/s to 100 MiB/s) drop
and reset; before this, every drop was a failed download for a person to
resume by hand. The retry lives in the library so the CLI and the TUI
behave alike.

What counts: ``Options.retries`` consecutive attempts that brought less
than ``PROGRESS`` (64 KiB) of new bytes. An attempt that made real progress
starts the count (and the backoff) again, so a link that resets every 20 MB
finishes a 200 MiB file with the default 10, while a dead server is given
up after 1+2+4+...+30 s (about four minutes with the defaults), and a
server that sends a few bytes per connection cannot keep us retrying forever.
"""

from __future__ import annotations

from collections.abc import Callable

from getfile_core.client.state import Options, RetryNotice, TransferState
from getfile_core.errors import GetfileError

TYPE_CHECKING = False  # typing is not imported at run time (~1.7 ms of start-up)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

#: New bytes an attempt must bring to count as progress (and reset the count).
PROGRESS = 64 * 1024


def backoff_delay(attempt: int, cap: float) -> float:
    """Seconds before the ``attempt``-th retry: 1, 2, 4 ... capped at ``cap``."""
    return min(float(2 ** min(attempt - 1, 30)), cap)


def run_with_retries(
    attempt: Callable[[], T],
    *,
    options: Options,
    state: TransferState,
    retryable: Callable[[GetfileError], bool],
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> tuple[T, int]:
    """Call ``attempt`` until it succeeds, or fails in a way no retry mends.

    Returns its result and the number of attempts it took. When the
    attempts run out, or the error is a refusal (``retryable`` says no), or
    the transfer was cancelled, the last error is raised as it was.
    ``state.backoff`` makes the wait end at once on ``cancel`` (raising) or
    ``retry_now``.
    """
    failures = 0
    attempts = 0
    while True:
        before = state.done
        attempts += 1
        try:
            return attempt(), attempts
        except GetfileError as error:
            if state.done - before >= PROGRESS:
                failures = 0  # it moved: the link works, only not for long
            if state.cancelled or failures >= options.retries or not retryable(error):
                raise
            failures += 1
            notice = RetryNotice(
                attempt=failures,
                attempts=options.retries,
                delay=backoff_delay(failures, options.retry_cap),
                reason=str(error),
            )
            state.begin_retry(notice)
            if on_retry is not None:
                on_retry(notice)
            state.backoff(notice.delay)
