"""Every line the command prints about itself goes through here, as printable text.

Paths, names, hosts and server messages are hostile (a URL path can carry
``ESC ] 2 ; …`` and retitle the terminal), so each line is passed through
``printable`` once, here, rather than at each of the places that build one.
Each is one line on stderr: stdout is for what the user asked for (``ls``
output, the book's "Client got" line).
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from getfile_core.safe_text import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from getfile_core.client import RetryNotice
    from getfile_core.server import AccessRecord

PROG = "getfile"
#: threading.Lock without importing threading (0.5 ms of start-up; one file uses no thread).
_ONE_LINE_AT_A_TIME = _thread.allocate_lock()


def error_line(message: object, *, subject: str | bytes | None = None) -> None:
    """``getfile: SUBJECT: MESSAGE`` on stderr (``getfile: MESSAGE`` without a subject)."""
    where = f"{printable(subject)}: " if subject is not None else ""
    line = f"{PROG}: {where}{printable(str(message))}\n"
    with _ONE_LINE_AT_A_TIME:  # a segmented download's connections retry from their threads
        sys.stderr.write(line)
        sys.stderr.flush()


def shows_progress(quiet: bool) -> bool:
    """Whether to draw progress: not ``-q``, and stderr (where it goes) is a real terminal."""
    return not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


#: A warning reads as an error line does; the word says it is not one.
def warning_line(message: str) -> None:
    error_line(f"warning: {message}")


#: Advice for after the last attempt; on a retry line it reads as "you must do this" while
#: the retry is already doing it (seen through a balancer whose backend died).
_LAST_ATTEMPT_ADVICE = "; --resume continues it)"


def retry_text(notice: RetryNotice) -> str:
    """``retrying in 4 s (2/10): connection reset by peer``."""
    delay = f"{notice.delay:.0f}" if notice.delay >= 1 else f"{notice.delay:.1f}"
    reason = notice.reason.replace(_LAST_ATTEMPT_ADVICE, ")")
    return f"retrying in {delay} s ({notice.attempt}/{notice.attempts}): {reason}"


def print_access(record: AccessRecord) -> None:
    """The server's access log, one printable line per request, on stderr."""
    print(printable(record.format()), file=sys.stderr, flush=True)


def print_book_access(record: AccessRecord) -> None:
    """The book's server line (``Server connected by (ip, port) at …``) on stdout, then ours."""
    host, _, port = record.peer.rpartition(":")
    host = host.strip("[]")
    stamp = time.ctime(record.when)
    print(f"Server connected by ('{printable(host)}', {printable(port)}) at {stamp}", flush=True)
    print_access(record)
