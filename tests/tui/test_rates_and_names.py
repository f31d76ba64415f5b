"""Two things a row said that meant nothing: a rate for a file that came in one read, and
a grouped row's counts with no name left at 80 columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len

from getfile_core import FileServer, Progress, Target
from tests.support.tui import make_app, pilot_wait_until, transfer_reaches
from tui.groups import Group
from tui.persist import finished_rate
from tui.transfers import MEASURED_BYTES, MEASURED_SECONDS, State, Transfer, measured_rate
from tui.widgets.transfer_cells import NAME_KEPT
from tui.widgets.transfer_list import fit_name
from tui.widgets.transfer_view import NO_RATE, numbers

SIZE = (80, 24)
TARGET = Target("h", 1, b"x.bin")
KIB, MIB = 1024, 1024 * 1024


def done_transfer(size: int, seconds: float) -> Transfer:
    transfer = Transfer(TARGET, "/nowhere", "x.bin")
    average = size / seconds
    transfer.finish("/nowhere/x.bin", Progress("done", size, size, average, seconds, False),
                    legacy=False)  # fmt: skip
    return transfer


@pytest.mark.parametrize(
    ("size", "seconds", "measured"),
    [
        (109, 0.007, False),  # one read: "15.5 KiB/s" said nothing
        (MEASURED_BYTES - 1, 5.0, False),  # too few bytes, however slowly
        (10 * MIB, MEASURED_SECONDS / 2, False),  # too quick to time
        (MEASURED_BYTES, MEASURED_SECONDS, True),
        (2 * MIB, 0.5, True),
    ],
)
def test_a_finished_row_shows_a_rate_only_when_one_was_measured(
    size: int, seconds: float, measured: bool
) -> None:
    transfer = done_transfer(size, seconds)
    rate = numbers(transfer, 0.0, lambda: 0).rate
    if measured:
        assert rate.endswith("/s") and measured_rate(transfer.progress) == size / seconds
    else:
        assert rate == NO_RATE and measured_rate(transfer.progress) is None
    # The saved queue keeps the rate only when one shows, and a restart shows the same.
    kept = finished_rate(transfer)
    assert (kept is not None) == measured
    again = Transfer(TARGET, "/nowhere", "x.bin")
    again.restore(State.DONE, size=size, received=size, rate=kept)
    assert numbers(again, 0.0, lambda: 0).rate == rate


def test_a_running_download_keeps_its_rate_while_it_is_small() -> None:
    """The rule is for a finished row's average: a slow link's first seconds show a rate."""
    transfer = Transfer(TARGET, "/nowhere", "x.bin")
    transfer.observe(Progress("downloading", 0, MIB, 0.0, 0.5, False))
    transfer.observe(Progress("downloading", 8 * KIB, MIB, 0.0, 1.5, False))
    assert numbers(transfer, 0.0, lambda: 0).rate == "8.00 KiB/s"


async def test_a_tiny_download_shows_no_rate(server: FileServer, dest: Path) -> None:
    app = make_app(host="127.0.0.1", port=server.port_bound, file="hello.txt", dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        transfer = await transfer_reaches(pilot, app, "done")
        row = app.transfer_list.row(transfer.id)
        assert row is not None
        await pilot_wait_until(pilot, lambda: str(row.cell("bytes").content) != "")
        assert str(row.cell("rate").content) == NO_RATE
        assert str(row.cell("bytes").content) == "13 B/13 B"


@pytest.mark.parametrize("room", [12, 13, 14, 15])
def test_a_grouped_row_keeps_some_of_its_name_and_its_count(room: int) -> None:
    shown = fit_name("+ usr-share-doc", room, " 3000/3000")
    assert cell_len(shown) <= room
    assert shown.startswith("+ usr"), shown  # the mark and three letters at least
    assert " 3000" in shown, shown  # the count that moves
    assert fit_name("+ usr-share-doc", 15, " 3/3") == "+ usr-shar… 3/3"  # as before


async def test_a_long_grouped_row_keeps_a_name_at_80_columns(dest: Path) -> None:
    """Enough rows for a scrollbar: Name has 13 columns, and the row showed ``+ … 3000/3000``."""
    app = make_app(dest=dest)
    async with app.run_test(size=SIZE) as pilot:
        group = Group(b"", (b"usr-share-doc-from-the-build-machine",))
        group.files_done = group.files_total = 3000
        folder = Transfer(TARGET, str(dest), "usr-share-doc-from-the-build-machine", group=group)
        folder.restore(State.DONE, size=145 * MIB, received=145 * MIB)
        app.transfer_list.add(folder)
        for number in range(10):
            app.transfer_list.add(Transfer(TARGET, str(dest), f"file-{number}.bin"))
        row = app.transfer_list.row(folder.id)
        assert row is not None
        await pilot_wait_until(pilot, lambda: app.transfer_list.scrollbars_enabled[0])
        await pilot.pause()
        cell = row.cell("name")
        shown = str(cell.content)
        assert cell_len(shown) <= cell.size.width, (shown, cell.size.width)
        name = shown.split("…")[0]
        assert cell_len(name) >= NAME_KEPT and name.startswith("+ usr"), shown
        assert shown.endswith(" 3000") or shown.endswith(" 3000/3000"), shown
