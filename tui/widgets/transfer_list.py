"""The live list of downloads: one focusable row per transfer; it only displays them
(a ``Transfer`` changes itself; the app asks a row to redraw).

The pieces live apart: the cells and their widths (``transfer_cells``), what a
row says about its transfer as plain strings (``transfer_view``), and the files
under an expanded grouped row (``group_files``). Here: the row, which puts those
strings in its cells, and the list, which orders, selects and sizes the rows.
"""

from __future__ import annotations

import time

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Label

from tui.limits import describe_limit
from tui.transfers import State, Transfer
from tui.widgets.group_files import GroupFiles
from tui.widgets.transfer_cells import (
    COLUMNS,
    NARROW,
    BarCell,
    Cell,
    NameCell,
    fit_name,
    name_width,
)
from tui.widgets.transfer_view import numbers, row_words, short_reason, state_words

__all__ = [  # the cells' and the view's names stay importable from here, as before
    "GroupFiles",
    "TransferList",
    "TransferRow",
    "fit_name",
    "name_width",
    "short_reason",
    "state_words",
]


class TransferRow(Horizontal, can_focus=False):
    """One download: name, state, bar, bytes, rate, ETA (or the reason it failed)."""

    def __init__(self, transfer: Transfer) -> None:
        super().__init__(id=f"transfer-{transfer.id}", classes="transfer-row")
        # Rows are one Tab stop together: the list makes only the current row focusable.
        self.can_focus = False
        self.transfer = transfer
        self._tick = 0
        self._ready = False  # the cells exist from on_mount on
        self._files: GroupFiles | None = None  # an expanded group's files, under the row

    def compose(self) -> ComposeResult:
        for name, _heading in COLUMNS:
            kind = {"name": NameCell, "bar": BarCell}.get(name, Cell)
            yield kind(classes=f"cell {name}")
        yield Cell(classes="cell reason")

    def on_mount(self) -> None:
        self._ready = True
        parent = self.parent
        if isinstance(parent, TransferList):
            parent.fit(self)
        self.show()

    def on_resize(self, _event: events.Resize) -> None:
        self.show()

    def on_click(self, _event: events.Click) -> None:
        parent = self.parent
        if isinstance(parent, TransferList):
            parent.select(self)

    def cell(self, name: str) -> Cell:
        return self.query_one(f".{name}", Cell)

    def show_files(self) -> None:
        """An expanded group lists its files under the row; collapsed, they go."""
        group = self.transfer.group
        parent = self.parent
        if group is None or not isinstance(parent, TransferList):
            return
        if group.expanded:
            if self._files is None:
                self._files = GroupFiles(self.transfer.id)
                parent.mount(self._files, after=self)
            self._files.set_lines(group.lines(), parent.scrollable_content_region.width)
        elif self._files is not None:
            self._files.remove()
            self._files = None

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

    def show(self) -> None:
        """Bring every cell up to date with the transfer (once mounted; then it catches up)."""
        if not self._ready:
            return
        transfer = self.transfer
        state = transfer.state
        group = transfer.group
        name_cell = self.query_one(".name", NameCell)
        if group is None:
            name_cell.set_name(transfer.name)
        else:
            name_cell.set_name(*group.label_parts(transfer.name))
        self.cell("state").set(state_words(transfer))
        self.show_files()
        self.set_class(state is State.FAILED, "-failed")
        self.set_class(state is State.DONE, "-done")
        self.set_class(state is State.CANCELLED, "-cancelled")
        now = time.monotonic()
        words = row_words(transfer, now)
        self.set_class(bool(words), "-words")  # the stylesheet swaps the numbers for the words
        if words:  # a reason, a countdown or what the client waits for, in place of the numbers
            self.cell("reason").set(words)
            return
        shown = numbers(transfer, now, self._next_tick)
        self.query_one(".bar", BarCell).draw(shown.bar)
        self.cell("bytes").set(shown.bytes)
        self.cell("rate").set(shown.rate)
        self.cell("eta").set(shown.eta)


class TransferList(VerticalScroll, can_focus=False):
    """Rows of transfers under a heading, buttons below; up/down move between rows."""

    BORDER_TITLE = "Transfers"

    last_selected: TransferRow | None = None
    #: The Name column's width for the list's width (``None`` until the first resize).
    _name_width: int | None = None

    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous", show=False),
        Binding("down,j", "move(1)", "Next", show=False),
        Binding("space,enter", "toggle_group", "Files", show=False),
        Binding("right", "toggle_group(True)", "Expand", show=False),
        Binding("left", "toggle_group(False)", "Collapse", show=False),
    ]

    def action_toggle_group(self, expand: bool | None = None) -> None:
        """Expand the selected grouped row into its files, or collapse it again."""
        self.toggle_group(expand)

    def toggle_group(self, expand: bool | None = None) -> None:
        row = self.selected()
        group = row.transfer.group if row is not None else None
        if row is None or group is None:
            return
        group.expanded = (not group.expanded) if expand is None else expand
        row.show()

    def compose(self) -> ComposeResult:
        with Horizontal(id="transfer-heading"):
            for name, heading in COLUMNS:
                yield Label(heading, classes=f"cell {name}")
        with Horizontal(id="transfer-actions"):
            yield Button("Cancel ^x", id="cancel", compact=True, disabled=True)
            yield Button("Retry ^r", id="retry", compact=True, disabled=True)
            yield Button("Cancel all ^n", id="cancel-all", compact=True, disabled=True)
        yield Label("No downloads yet: fill in the form and press Enter.", id="no-transfers")

    def show_limit(self, rate: float | None) -> None:
        """The global rate limit in the title (``None``: no limit, no word)."""
        self.border_title = "Transfers" + (
            "" if rate is None else f" · limit {describe_limit(rate)}"
        )

    def selected_transfer(self) -> Transfer | None:
        row = self.selected()
        return row.transfer if row is not None else None

    def enable_actions(self, *, cancel: bool, retry: bool) -> None:
        self.query_one("#cancel", Button).disabled = not cancel
        self.query_one("#cancel-all", Button).disabled = not cancel
        self.query_one("#retry", Button).disabled = not retry

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = {"cancel": "cancel", "retry": "retry", "cancel-all": "cancel_all"}[
            str(event.button.id)
        ]
        await self.run_action(f"app.{action}")

    @property
    def rows(self) -> list[TransferRow]:
        return list(self.query(TransferRow))

    def row(self, transfer_id: int) -> TransferRow | None:
        found = self.query(f"#transfer-{transfer_id}")
        return found.first(TransferRow) if found else None

    def add(self, transfer: Transfer, *, select: bool = False) -> TransferRow:
        """Add a row; it shows the transfer as it is by then once mounted.

        ``select``: it becomes the current row (what cancel and retry act on), and
        takes the focus only from another row of the list or from nothing: the
        form keeps the focus the user typed in.
        """
        self.query_one("#no-transfers").display = False
        row = TransferRow(transfer)
        if select or self.selected() is None:
            for other in self.rows:
                other.can_focus = False
            row.can_focus = True  # the list's one Tab stop
            self.last_selected = row
        self.mount(row)
        self.call_after_refresh(row.scroll_visible)
        if select:
            self.call_after_refresh(self._take_focus, row)
        return row

    def _take_focus(self, row: TransferRow) -> None:
        """Focus ``row`` if the focus (of the list's own screen: a dialog may be on top)
        is on another row or nowhere; never away from the form or a field."""
        if row.parent is not self or self.last_selected is not row:
            return  # gone, or another new row took the selection meanwhile
        focused = self.screen.focused
        if focused is None or (isinstance(focused, TransferRow) and focused.parent is self):
            self.select(row)

    async def remove_transfers(self, transfer_ids: set[int]) -> None:
        """Take rows away; another row (the newest) becomes the list's Tab stop."""
        gone: list[Widget] = [row for row in self.rows if row.transfer.id in transfer_ids]
        ids = {f"group-{number}" for number in transfer_ids}
        gone += [files for files in self.query(GroupFiles) if files.id in ids]
        if gone:
            await self.remove_children(gone)
        rows = self.rows
        self.query_one("#no-transfers").display = not rows
        if rows and not any(row.can_focus for row in rows):
            rows[-1].can_focus = True
            self.last_selected = rows[-1]

    def select(self, row: TransferRow) -> None:
        """Make ``row`` the current one: the list's only Tab stop, focused."""
        for other in self.rows:
            other.can_focus = other is row
        self.last_selected = row
        row.focus()
        row.scroll_visible()

    # ------------------------------------------------------------ layout for the width

    def on_resize(self, _event: events.Resize) -> None:
        inner = self.scrollable_content_region.width
        if inner <= 0:
            return
        self.set_class(inner < NARROW, "-narrow")
        self._name_width = name_width(inner)
        for cell in self.query(".cell.name"):
            cell.styles.width = self._name_width
        current = self.selected()
        if current is not None:  # a resize must not scroll the running download away
            self.call_after_refresh(current.scroll_visible, animate=False)

    def fit(self, row: TransferRow) -> None:
        """Give a new row the Name width the others have."""
        if self._name_width is not None:
            row.cell("name").styles.width = self._name_width

    def selected(self) -> TransferRow | None:
        """The focused row, or the one focused last (a click on a button takes the focus)."""
        focused = self.app.focused
        if isinstance(focused, TransferRow) and focused.parent is self:
            return focused
        if self.last_selected is not None and self.last_selected.parent is self:
            return self.last_selected
        return None

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, TransferRow):
            self.last_selected = event.widget

    def on_mount(self) -> None:
        # A retry countdown moves once a second, between the client's progress snapshots.
        self.set_interval(1.0, self._tick_countdowns)

    def _tick_countdowns(self) -> None:
        for row in self.rows:
            if row.transfer.state is State.RETRYING:
                row.show()

    def refresh_transfer(self, transfer: Transfer) -> None:
        row = self.row(transfer.id)
        if row is not None:
            row.show()

    def action_move(self, step: int) -> None:
        rows = self.rows
        if not rows:
            return
        focused = self.app.focused
        current = focused if isinstance(focused, TransferRow) else None
        index = rows.index(current) + step if current in rows else (0 if step > 0 else -1)
        if 0 <= index < len(rows) or current is None:
            self.select(rows[index])
