"""``printable``: what reaches a terminal from outside carries no control character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from getfile_core.safe_text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("a b%c [x].txt", "a b%c [x].txt"),
        ("ünïcödé ✓.txt", "ünïcödé ✓.txt"),
        ("a\x1b]2;PWNED\x1b\\b", "a\\x1b]2;PWNED\\x1b\\b"),
        ("\x1b[2J", "\\x1b[2J"),
        ("csi\x9b2J", "csi\\x9b2J"),  # the C1 form of ESC [
        ("txt.\u202eexe", "txt.\\u202eexe"),  # bidi override
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("line\nbreak\ttab\rret", "line\\nbreak\\ttab\\rret"),
        ("del\x7f", "del\\x7f"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("\U000e0041tag", "\\U000e0041tag"),
    ],
)
def test_controls_are_made_visible(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_bytes_are_decoded_and_undecodable_bytes_shown() -> None:
    assert printable(b"caf\xc3\xa9") == "café"
    assert printable(b"bad\xff\x1b.bin") == "bad\\xff\\x1b.bin"


def test_surrogate_escaped_names_show_their_byte() -> None:
    assert printable("bad\udcff.bin") == "bad\\xff.bin"


def test_limit_cuts_to_one_bounded_line() -> None:
    assert printable("x" * 100, limit=10) == "x" * 9 + "…"
    assert printable("short", limit=10) == "short"


@given(st.one_of(st.text(), st.binary()))
def test_output_is_always_printable(raw: str | bytes) -> None:
    assert printable(raw).isprintable()
