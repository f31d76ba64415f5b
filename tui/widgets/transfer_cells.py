"""The cells of a transfer row and the widths they get: each a fixed-width piece of text
that repaints only itself, and only when its text changes.

A steady download therefore repaints a few dozen characters a few times a
second instead of the whole table: what matters when every byte drawn
crosses an SSH link.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from textual import events
from textual.content import Content
from textual.widgets import Static

from tui.text import printable

BAR_WIDTH = 6
#: Fixed widths (with their one-column gaps) of state, bytes, rate and ETA, plus the gaps
#: after Name and the bar.
FIXED_COLUMNS = (11 + 1) + (17 + 1) + (10 + 1) + 7 + 2
#: Below this inner width, rate and ETA give their room to the name and the bar.
NARROW = 72
#: The bar's least useful width (6 cells of bar and a percentage).
BAR_MIN = 11
#: Cells of a grouped row's name kept however narrow the column: its ``+ `` and three
#: letters. At 80 columns with a scrollbar Name has 13, and ``+ usr-share-doc 3000/3000``
#: showed as ``+ … 3000/3000``: a row of counts with no name.
NAME_KEPT = 5

COLUMNS = (  # (class, heading)
    ("name", "Name"),
    ("state", "State"),
    ("bar", "Progress"),
    ("bytes", "Done/Total"),
    ("rate", "Rate"),
    ("eta", "ETA"),
)


def name_width(inner: int) -> int:
    """The Name column for a list ``inner`` columns wide; the bar takes the rest.

    Narrow, the bar keeps its 11 columns and the name the rest (at least 12);
    wide, the name takes a third (at most 60). At 80 columns (76 inside) that is
    Name 15, bar 11; at 200, Name 48 and a bar of 98 (the bar had 6 and the name
    136); at 60, rate and ETA go and Name keeps 14.
    """
    free = inner - FIXED_COLUMNS + (19 if inner < NARROW else 0)
    wanted = free - BAR_MIN if free < 3 * BAR_MIN + 12 else free // 3
    return max(12, min(60, wanted))


def fit_name(name: str, room: int, tail: str = "") -> str:
    """``name`` then ``tail`` in ``room`` columns. With a ``tail`` (a grouped row's
    `` 806/5230``) the tail stays whole and the name gives way at its end; a file name
    alone gives way in its middle, keeping its start and its end, where the extension
    and a Rename's ``(1)`` are (``medium…1).iso``, ``debian-…nst.iso``).

    At 80 columns Name has 13-15: ``+ usr-share-doc 806/5230`` lost its count to the
    cell's own ellipsis (``+ usr-share-do…``), the one number that moves. Where the
    whole tail leaves the name fewer than ``NAME_KEPT`` cells, the tail's total gives
    way first (``+ usr-s… 3000``): the count that moves stays, and so does a name.
    """
    if cell_len(name + tail) <= room:
        return name + tail
    if tail:
        for shown in dict.fromkeys((tail, tail.split("/")[0])):  # whole, then without total
            if cell_len(name + shown) <= room:
                return name + shown
            keep = room - cell_len(shown) - 1
            if keep >= NAME_KEPT:
                return set_cell_size(name, keep) + "…" + shown
        # no room even for that: its start, cut
        return set_cell_size(name + tail, max(room - 1, 0)) + "…"
    if room < 2:
        return "…"[:room]
    end = (room - 1) // 2
    ending = name[-end:] if end else ""
    while cell_len(ending) > end:  # wide characters: fewer of them
        ending = ending[1:]
    return set_cell_size(name, room - 1 - cell_len(ending)) + "…" + ending


class Cell(Static):
    """A fixed-size text cell that repaints only itself, and only on change.

    Names and reasons come from servers: a cell shows printable plain text,
    never markup (``[@click=app.quit]x.txt`` is a name, not a link).
    """

    def __init__(self, classes: str) -> None:
        super().__init__("", classes=classes, markup=False)
        self._text = ""

    def set(self, text: str) -> None:
        text = printable(text)
        if text != self._text:
            self._text = text
            self.update(Content(text), layout=False)


class NameCell(Cell):
    """The Name cell: fitted to its width by ``fit_name`` (again when that width changes)."""

    def __init__(self, classes: str) -> None:
        super().__init__(classes)
        self._parts = ("", "")

    @property
    def full_text(self) -> str:
        """The whole name (and tail), before it is fitted to the cell."""
        return "".join(self._parts)

    def set_name(self, name: str, tail: str = "") -> None:
        self._parts = (printable(name), printable(tail))
        self._fit()

    def _fit(self) -> None:
        name, tail = self._parts
        room = self.size.width
        self.set(fit_name(name, room, tail) if room > 0 else name + tail)

    def on_resize(self, _event: events.Resize) -> None:
        self._fit()


class BarCell(Cell):
    """The Progress cell: drawn for its own width, and drawn again when that changes.

    A row drew its bar for the width the cell had when progress last came; a
    finished row gets no more progress, so after a resize from 80x24 to 200x50
    (Name grows from 15 to 48 columns) its bar kept the old length and was cut
    to ``█████…`` without its ``100%``.
    """

    def __init__(self, classes: str) -> None:
        super().__init__(classes)
        self._draw: Callable[[int], str] | None = None

    def draw(self, drawing: Callable[[int], str] | None) -> None:
        """``drawing(width)``: the bar for ``width`` cells of bar; None: an empty cell."""
        self._draw = drawing
        self._fit()

    def _fit(self) -> None:
        width = self.size.width
        bar_width = max(4, width - 5) if width else BAR_WIDTH
        self.set(self._draw(bar_width) if self._draw is not None else "")

    def on_resize(self, _event: events.Resize) -> None:
        self._fit()
