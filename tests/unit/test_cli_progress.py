"""``cli.progress``: what the bars of ``getfile get`` say, rendered as a terminal shows them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from getfile_core.address import Target
from getfile_core.cli import progress
from getfile_core.cli.progress import ProgressDisplay
from getfile_core.client import FetchResult, Progress
from getfile_core.client.state import Phase

MIB = 1024 * 1024
LONG = b"iso/" + b"debian-12.8.0-amd64-netinst-with-a-much-longer-name-than-fits.iso"


def drawn(display: ProgressDisplay, console: Console) -> list[str]:
    """The bars as one frame (rich's own renderer, as its live display draws them)."""
    console.file = io.StringIO()
    console.print(display._bars.get_renderable())
    return console.file.getvalue().splitlines()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A terminal of a given width, the one the next ``ProgressDisplay()`` draws on."""

    def make(width: int) -> Console:
        console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
        monkeypatch.setattr(progress, "Console", lambda **_: console)
        return console

    return make


def moving(done: int, total: int | None, rate: float, note: str = "") -> Progress:
    return Progress(Phase.DOWNLOADING, done, total, rate, 10.0, False, note=note)


def test_a_stall_shows_no_rate_and_no_eta_not_the_last_rate_seen(terminal) -> None:  # type: ignore[no-untyped-def]
    """Through a 10 s stall rich's own column kept "96.2 kB/s" and a frozen ETA."""
    console = terminal(100)
    display = ProgressDisplay()
    update = display.add(Target("h", 1, b"big.iso"))
    update(moving(2 * MIB, 12 * MIB, 96 * 1024))
    (line,) = drawn(display, console)
    assert "96.0 KiB/s" in line and "0:01:47" in line, line
    update(moving(2 * MIB, 12 * MIB, 0.0))  # the library's 3 s window: nothing came
    (line,) = drawn(display, console)
    assert "0 B/s" in line and "-:--:--" in line, line
    assert "2.00 MiB/12.0 MiB" in line, line  # powers of 1024, as --limit-rate and the summary


def test_every_bar_is_one_line_at_80_columns_with_room_for_the_ctrl_c_echo(terminal) -> None:  # type: ignore[no-untyped-def]
    console = terminal(80)
    display = ProgressDisplay()
    first = display.add(Target("h", 1, LONG))
    second = display.add(Target("h", 1, b"a.bin"))
    first(moving(5 * MIB, 12 * MIB, 95_000.0, note="retrying in 4 s (2/10): connection reset"))
    second(moving(1 * MIB, None, 60_000.0))
    lines = drawn(display, console)
    assert len(lines) == 2, lines
    for line in lines:
        assert len(line.rstrip()) <= 78, line  # a ^C echo after it fits on the line
    assert lines[0].startswith(tuple("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")) and "debian" in lines[0], lines
    assert "retrying in" in lines[0] and "12.0 MiB" in lines[0] and "0:01:17" in lines[0]
    assert "a.bin" in lines[1] and "1.00 MiB" in lines[1] and "-:--:--" in lines[1], lines


def test_a_failed_download_keeps_its_name_and_a_finished_one_its_size(terminal) -> None:  # type: ignore[no-untyped-def]
    console = terminal(80)
    display = ProgressDisplay()
    failed, saved = Target("h", 1, b"gone.bin"), Target("h", 1, b"kept.bin")
    display.add(failed)
    display.add(saved)(moving(512, 1024, 100.0))
    display.finish(failed, None)
    result = FetchResult("/x/kept.bin", 1024, None, False, 0, 1.0, 1)
    display.finish(saved, result)
    lines = [line.rstrip() for line in drawn(display, console)]
    assert lines[0] == "✗ gone.bin: failed", lines  # no "0/1 bytes", no bar, no "?"
    assert lines[1].startswith("✓ kept.bin") and lines[1].endswith("1.00 KiB/1.00 KiB"), lines


def test_a_name_cannot_drive_the_terminal(terminal) -> None:  # type: ignore[no-untyped-def]
    console = terminal(80)
    display = ProgressDisplay()
    display.add(Target("h", 1, b"evil\x1b]2;owned\x07.bin"))(moving(1, 2, 1.0))
    (line,) = drawn(display, console)
    assert "\x1b" not in line and "\\x1b" in line, repr(line)
