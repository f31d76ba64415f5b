"""The CLI's retry line: what is happening, without advice meant for after the last attempt."""

from __future__ import annotations

from getfile_core.cli.output import retry_text
from getfile_core.client import RetryNotice


def test_a_retry_line_says_when_which_and_why() -> None:
    notice = RetryNotice(attempt=2, attempts=10, delay=4.0, reason="connection reset by peer")
    assert retry_text(notice) == "retrying in 4 s (2/10): connection reset by peer"
    quick = RetryNotice(attempt=1, attempts=3, delay=0.25, reason="timed out")
    assert retry_text(quick) == "retrying in 0.2 s (1/3): timed out"


def test_a_retry_line_does_not_tell_the_user_to_resume_by_hand() -> None:
    """The retry is what resumes the part; "--resume continues it" belongs to the last error."""
    reason = (
        "connection closed after 5 of 40 bytes (kept out/x.getfile-part; --resume continues it)"
    )
    line = retry_text(RetryNotice(attempt=1, attempts=10, delay=1.0, reason=reason))
    assert line == (
        "retrying in 1 s (1/10): connection closed after 5 of 40 bytes (kept out/x.getfile-part)"
    )
