"""Bell and OSC 9 / 777 notifications: exact bytes, hostile names, and when to send them."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.notify import (
    MAX_TEXT_CHARS,
    clean_text,
    describe,
    notification,
    osc9,
    osc777,
    should_notify,
    tmux_passthrough,
)


def test_exact_sequences():
    assert osc9("getfile", "big.iso downloaded") == "\x1b]9;getfile: big.iso downloaded\a"
    assert osc777("getfile", "big.iso downloaded") == (
        "\x1b]777;notify;getfile;big.iso downloaded\a"
    )
    assert notification("t", "b", bell=True, osc=False) == "\a"
    assert notification("t", "b", bell=False, osc=False) == ""
    assert notification("t", "b") == "\a\x1b]9;t: b\a\x1b]777;notify;t;b\a"


def test_tmux_passthrough_doubles_escapes():
    assert tmux_passthrough("\x1b]9;x\a") == "\x1bPtmux;\x1b\x1b]9;x\a\x1b\\"
    assert notification("t", "b", bell=False, in_tmux=True).count("\x1bPtmux;") == 2


@pytest.mark.parametrize(
    "name",
    [
        "evil\a\x1b]9;pwned\a.iso",  # ends ours with BEL, starts another
        "evil\x1b\\\x1b]52;c;Y3VybCBldmlsfHNo\a",  # ST, then a clipboard write (OSC 52)
        "evil\x9c\x9d777;notify;x;y\x07",  # 8-bit ST and OSC
        "evil\u202egpj.exe",  # a bidi override disguising the extension
        "line\nbreak\u2028sep",
        "\udcff-undecodable",
    ],
)
def test_hostile_names_cannot_end_or_inject_a_sequence(name: str):
    for sequence in (osc9("getfile", name), osc777("getfile", name)):
        inner = sequence[2:-1]
        assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in inner), sequence
    assert osc777("getfile", name).count(";") == 3


def test_semicolons_cannot_add_osc777_fields():
    sequence = osc777("a;b", "c;d;e")
    assert sequence == "\x1b]777;notify;a,b;c,d,e\a"


def test_text_starting_with_a_digit_is_not_a_conemu_command():
    assert osc9("4;3;50", "x").startswith("\x1b]9; 4;3;50")


def test_text_is_bounded():
    sequence = osc9("getfile", "x" * 10_000)
    assert len(sequence) <= MAX_TEXT_CHARS + 5 and sequence.endswith("…\a")


@settings(deadline=None)  # no timing assertions: the machine is shared
@given(st.text(max_size=400), st.text(max_size=400))
def test_any_text_gives_well_framed_sequences(title: str, body: str):
    nine = osc9(title, body)
    assert nine.startswith("\x1b]9;") and nine.endswith("\a")
    assert nine.count("\x1b") == 1 and nine.count("\a") == 1
    seven = osc777(title, body)
    assert seven.count("\x1b") == 1 and seven.count("\a") == 1 and seven.count(";") == 3
    assert len(clean_text(body)) <= MAX_TEXT_CHARS


def test_describe():
    assert describe("a.iso", "done") == ("getfile", "a.iso downloaded")
    assert describe("a.iso", "failed", "server went away") == (
        "getfile",
        "a.iso failed: server went away",
    )


@pytest.mark.parametrize(
    ("outcome", "duration", "background", "after", "expected"),
    [
        ("done", 12.0, True, 10.0, True),
        ("failed", 10.0, True, 10.0, True),  # exactly the threshold counts
        ("done", 9.9, True, 10.0, False),  # too short to have been forgotten
        ("done", 60.0, False, 10.0, False),  # the user is looking
        ("cancelled", 60.0, True, 10.0, False),  # the user did it
        ("downloading", 60.0, True, 10.0, False),
        ("done", 0.1, True, 0.0, True),  # notify_after = 0: every one
    ],
)
def test_should_notify(outcome, duration, background, after, expected):
    assert (
        should_notify(
            outcome=outcome, duration=duration, in_background=background, notify_after=after
        )
        is expected
    )
