"""The "Real links" flags (issue 9): ``get --retries``, ``get/serve --limit-rate``."""

from __future__ import annotations

import pytest

from tests.helpers import assert_one_error_line, run_cli


@pytest.mark.parametrize("command", ["get", "serve"])
@pytest.mark.parametrize(
    ("rate", "words"),
    [("fast", "not a rate"), ("0", "at least 1 byte"), ("-5", "not a rate"), ("2X", "not a rate")],
)
def test_a_bad_rate_is_one_line_exit_2(command: str, rate: str, words: str) -> None:
    where = ["getfile://127.0.0.1:1/f"] if command == "get" else [".", "--port", "0"]
    done = run_cli(command, *where, f"--limit-rate={rate}", timeout=20)
    assert done.returncode == 2 and done.stdout == ""
    line = assert_one_error_line(done.stderr)
    assert "--limit-rate" in line and words in line


def test_negative_retries_are_a_usage_error() -> None:
    done = run_cli("get", "--retries", "-1", "getfile://127.0.0.1:1/f")
    assert done.returncode == 2 and "must be 0 or more" in done.stderr
