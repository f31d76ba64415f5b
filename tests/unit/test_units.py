"""Sizes and rates for people: ``human_size``, ``parse_rate``, ``human_rate``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from getfile_core.units import human_rate, human_size, parse_rate

KIB, MIB, GIB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.00 KiB"),
        (1536, "1.50 KiB"),
        (12.1 * MIB, "12.1 MiB"),
        (121 * GIB, "121 GiB"),
        (999.4 * MIB, "999 MiB"),
        (999.6 * MIB, "0.98 GiB"),
    ],
)
def test_human_size(count: float, shown: str) -> None:
    assert human_size(count) == shown


@given(st.integers(min_value=0, max_value=2**60 - 1))  # below 1 EiB: every disk there is
def test_human_size_is_at_most_8_characters(count: int) -> None:
    assert len(human_size(count)) <= 8
    assert human_size(count).split()[1] in ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("65536", 65536),
        ("500K", 500 * KIB),
        ("500k", 500 * KIB),
        ("2M", 2 * MIB),
        ("1.5G", 1.5 * GIB),
        ("1T", 1024**4),
        ("2MiB", 2 * MIB),
        ("2MB", 2 * MIB),
        ("2M/s", 2 * MIB),
        (" 2 M ", 2 * MIB),
    ],
)
def test_parse_rate_reads_curls_units(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "", "-5", "2X", "1e6", "٣K", "0x10", "K", "1.K"])
def test_parse_rate_refuses_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["0", "0K", "0.5", "0.0001K"])
def test_parse_rate_refuses_nothing_per_second(text: str) -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        parse_rate(text)


@pytest.mark.parametrize("rate", [1, 1000, 500 * KIB, 2 * MIB, 1.5 * GIB])
def test_human_rate_reads_back_about_the_same(rate: float) -> None:
    shown = human_rate(rate)
    assert shown.endswith("/s")
    number, unit = shown.removesuffix("/s").split()
    back = parse_rate(number + unit[0] if unit != "B" else number)
    assert abs(back - rate) / rate < 0.01
