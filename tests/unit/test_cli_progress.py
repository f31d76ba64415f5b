"""``cli.progress``: what the bars of ``getfile get`` say, rendered as a terminal shows them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from getfile_core.address import Target
from getfile_core.cli import progress
from getfile_core.cli.progress import ProgressDisplay, TreeDisplay
from getfile_core.client import FetchResult, Progress
from getfile_core.client.state import Phase
from getfile_core.client.tree import TreeResult

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


# ---------------------------------------------------------------- get -r: one line for the tree


class FakeTree:
    """What ``TreeDisplay`` reads of a running ``Tree``."""

    def __init__(self, names: list[str]) -> None:
        self.result = TreeResult(files=510, skipped=8)
        self.files_total = 3000
        self.bytes_total = 12 * MIB
        self.bytes_done = 0
        self.bytes_resumed = 0
        self.names = names

    def in_flight(self) -> list[str]:
        return self.names


NAMES = [f"dir{i:02d}/file {i:03d}-é.txt" for i in range(12)]


def tree_line(
    width: int, terminal, names: list[str] = NAMES
) -> tuple[TreeDisplay, FakeTree, Console]:  # type: ignore[no-untyped-def]
    console = terminal(width)
    display = TreeDisplay(console)
    tree = FakeTree(names)
    display.attach(tree)  # type: ignore[arg-type]
    return display, tree, console


@pytest.mark.parametrize("width", [80, 200])
def test_a_tree_line_shows_the_numbers_first_and_the_names_that_fit(terminal, width: int) -> None:  # type: ignore[no-untyped-def]
    """At 80 columns the names in flight took the whole line: no bar, bytes, rate or ETA."""
    display, tree, console = tree_line(width, terminal)
    tree.bytes_done = 2 * MIB
    display.tick(now=100.0)
    tree.bytes_done = 2 * MIB + 300 * 1024
    display.tick(now=103.0)
    (line,) = drawn(display, console)  # type: ignore[arg-type]
    assert len(line.rstrip()) <= width - 2, line  # room for a ^C echo
    assert line.startswith(tuple("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")), line
    assert "files 518/3000" in line and "━" in line, line
    assert "2.29 MiB/12.0 MiB" in line and "100 KiB/s" in line and "0:01:39" in line, line
    # Then the names in flight, in order, as many as fit, cut with "…".
    after_eta = line.split("0:01:39", 1)[1].strip()
    assert after_eta.endswith("…") and ", ".join(NAMES).startswith(after_eta[:-1]), line
    whole = [name for name in NAMES if name in line]
    assert len(whole) >= (0 if width == 80 else 4), line


def test_a_tree_stall_shows_no_rate_and_no_eta(terminal) -> None:  # type: ignore[no-untyped-def]
    display, tree, console = tree_line(80, terminal)
    tree.bytes_done = 2 * MIB
    display.tick(now=100.0)
    tree.bytes_done = 3 * MIB
    display.tick(now=101.0)
    assert "1.00 MiB/s" in drawn(display, console)[0]  # type: ignore[arg-type]
    for second in range(2, 7):  # nothing comes for five seconds
        display.tick(now=100.0 + second)
    (line,) = drawn(display, console)  # type: ignore[arg-type]
    assert "0 B/s" in line and "-:--:--" in line, line


def test_a_resumed_part_is_not_a_burst_of_speed(terminal) -> None:  # type: ignore[no-untyped-def]
    display, tree, console = tree_line(80, terminal)
    display.tick(now=100.0)
    tree.bytes_resumed = tree.bytes_done = 8 * MIB  # found on disk, not moved
    display.tick(now=101.0)
    (line,) = drawn(display, console)  # type: ignore[arg-type]
    assert "0 B/s" in line and "8.00 MiB/12.0 MiB" in line, line


def test_a_tree_name_cannot_drive_the_terminal(terminal) -> None:  # type: ignore[no-untyped-def]
    display, _, console = tree_line(200, terminal, ["evil\x1b]2;owned\x07.bin"])
    display.tick(now=1.0)
    (line,) = drawn(display, console)  # type: ignore[arg-type]
    assert "\x1b" not in line and "\\x1b" in line, repr(line)


def test_a_tree_is_ticked_only_at_its_end(terminal) -> None:  # type: ignore[no-untyped-def]
    """All bytes in while the last file is still verified: no ✓ yet (seen by hand)."""
    display, tree, console = tree_line(80, terminal)
    tree.bytes_done = tree.bytes_total
    display.tick(now=1.0)
    (line,) = drawn(display, console)  # type: ignore[arg-type]
    assert not line.startswith("✓"), line
    tree.result = TreeResult(files=3000)
    tree.files_total = 3000
    with display:
        pass
    (line,) = drawn(display, console)  # type: ignore[arg-type]
    assert line.startswith("✓ files 3000/3000") and line.rstrip().endswith("12.0 MiB"), line
    assert "dir00" not in line  # nothing is in flight any more
