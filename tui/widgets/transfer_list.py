"""The live list of downloads: one focusable row per transfer; it only displays them
(a ``Transfer`` changes itself; the app asks a row to redraw).

Each row is a handful of fixed-width cells, and a cell is redrawn only when
its text changes. A steady download therefore repaints a few dozen
characters a few times a second, instead of the whole table: what matters
when every byte drawn crosses an SSH link.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Label, Static

from tui import format as fmt
from tui.limits import describe_limit
from tui.text import printable, retry_words
from tui.transfers import State, Transfer

BAR_WIDTH = 6
#: Fixed widths (with their one-column gaps) of state, bytes, rate and ETA, plus the gaps
#: after Name and the bar.
FIXED_COLUMNS = (11 + 1) + (17 + 1) + (10 + 1) + 7 + 2
#: Below this inner width, rate and ETA give their room to the name and the bar.
NARROW = 72
#: The bar's least useful width (6 cells of bar and a percentage).
BAR_MIN = 11


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


def short_reason(reason: str) -> str:
    """A word or two for a failed row; the log has the whole reason."""
    text = reason.lower()
    for needles, word in (
        (("closed", "reset", "lost", "broken pipe", "eof"), "link lost"),
        (("timed out", "timeout", "stall", "silent"), "timed out"),
        (("digest", "checksum", "mismatch"), "bad digest"),
        (("no space", "disk full", "quota"), "disk full"),
        (("permission", "forbidden", "denied"), "forbidden"),
        (("no such file", "not found", "404"), "not found"),
        (("refused",), "refused"),
    ):
        if any(needle in text for needle in needles):
            return word
    return "error"


COLUMNS = (  # (class, heading)
    ("name", "Name"),
    ("state", "State"),
    ("bar", "Progress"),
    ("bytes", "Done/Total"),
    ("rate", "Rate"),
    ("eta", "ETA"),
)


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


def fit_name(name: str, room: int, tail: str = "") -> str:
    """``name`` then ``tail`` in ``room`` columns. With a ``tail`` (a grouped row's
    `` 806/5230``) the tail stays whole and the name gives way at its end; a file name
    alone gives way in its middle, keeping its start and its end, where the extension
    and a Rename's ``(1)`` are (``medium…1).iso``, ``debian-…nst.iso``).

    At 80 columns Name has 13-15: ``+ usr-share-doc 806/5230`` lost its count to the
    cell's own ellipsis (``+ usr-share-do…``), the one number that moves.
    """
    if cell_len(name + tail) <= room:
        return name + tail
    if tail:
        keep = room - cell_len(tail) - 1
        if keep < 1:  # no room even for the tail: its start, cut
            return set_cell_size(name + tail, max(room - 1, 0)) + "…"
        return set_cell_size(name, keep) + "…" + tail
    if room < 2:
        return "…"[:room]
    end = (room - 1) // 2
    ending = name[-end:] if end else ""
    while cell_len(ending) > end:  # wide characters: fewer of them
        ending = ending[1:]
    return set_cell_size(name, room - 1 - cell_len(ending)) + "…" + ending


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


def state_words(transfer: Transfer) -> str:
    """The State cell: the state, or how many connections move bytes when more than one."""
    progress = transfer.progress
    connections = progress.connections if progress is not None else 0
    if transfer.state is State.DOWNLOADING and connections > 1:
        return f"dl {connections} conns"
    return str(transfer.state)


def tail(text: str, room: int) -> str:
    """``text`` in at most ``room`` columns, its end kept (where a path says most)."""
    return text if len(text) <= room else "…" + text[-(room - 1) :]


class GroupFiles(Static):
    """Under an expanded grouped row: its files in flight and the last ones done."""

    def __init__(self, transfer_id: int) -> None:
        super().__init__("", id=f"group-{transfer_id}", classes="group-files", markup=False)

    def set_lines(self, lines: list[tuple[str, str]], width: int) -> None:
        """One line per file, never wrapped: a deep path keeps its end (``…/x/name``)."""
        room = max(8, width - 12)
        shown = [f"    {word:<7} {tail(printable(path), room)}" for word, path in lines]
        self.update(Content("\n".join(shown) or "    (no files yet)"), layout=True)


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

    def words(self) -> str:
        """What the row says instead of its numbers: why it failed, when it retries (and
        why), what it waits for; "" when the numbers say it all."""
        transfer = self.transfer
        if transfer.state is State.FAILED and not self._got_bytes():
            return transfer.error
        notice = transfer.retry
        if transfer.state is State.RETRYING and notice is not None and not self._got_bytes():
            left = math.ceil(transfer.retry_left(time.monotonic()))
            reason = retry_words(notice.reason)
            return f"retrying in {left} s ({notice.attempt}/{notice.attempts}): {reason}"
        if transfer.state in (State.CONNECTING, State.WAITING) and transfer.note:
            return transfer.note
        return ""

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

    def show_retry(self) -> None:
        """A row that got bytes and waits to retry: ``retry 4 s`` and ``2/10`` in Rate and
        ETA, the bar where it stopped. The whole row used to turn into "retrying in 4 s
        (2/10): connection closed after 3124679 of 41943040 bytes (kept…", so through a
        link that resets every few MB the bar vanished for a second every few seconds."""
        notice = self.transfer.retry
        if notice is None:
            self.cell("rate").set("")
            self.cell("eta").set("")
            return
        left = math.ceil(self.transfer.retry_left(time.monotonic()))
        self.cell("rate").set(f"retry {left} s")
        self.cell("eta").set(f"{notice.attempt}/{notice.attempts}")

    def _got_bytes(self) -> bool:
        progress = self.transfer.progress
        return progress is not None and progress.done > 0

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
        words = self.words()
        self.set_class(bool(words), "-words")  # the stylesheet swaps the numbers for the words
        if words:  # a reason, a countdown or what the client waits for, in place of the numbers
            self.cell("reason").set(words)
            return
        progress = transfer.progress
        if progress is None:
            self.query_one(".bar", BarCell).draw(None)
            for name in ("bytes", "rate", "eta"):
                self.cell(name).set("")
            return
        fraction = 1.0 if state is State.DONE else progress.fraction
        moving = state in (State.DOWNLOADING, State.VERIFYING)
        retrying = state is State.RETRYING
        bar = self.query_one(".bar", BarCell)
        if moving and fraction is None:  # size unknown (legacy server): a block that moves
            self._tick += 1
            tick = self._tick
            bar.draw(lambda width: fmt.bar(None, width, tick) + "  ?? ")
        elif fraction is not None and (moving or transfer.done_or_stopped or retrying):
            shown = fraction
            bar.draw(lambda width: fmt.bar(shown, width) + " " + fmt.percent(shown))
        else:
            bar.draw(None)
        started = progress.done > 0 or moving or state is State.DONE
        self.cell("bytes").set(fmt.bytes_done(progress.done, progress.total) if started else "")
        running = state in (State.CONNECTING, State.DOWNLOADING, State.VERIFYING)
        if state is State.FAILED:  # the bar stays where it stopped; the log says why in full
            self.cell("rate").set(short_reason(transfer.error))
            self.cell("eta").set("")
            return
        if retrying:  # the bar stays too; the countdown and the attempt where the rate was
            self.show_retry()
            return
        self.cell("rate").set(fmt.rate(transfer.rate) if running or state is State.DONE else "")
        self.cell("eta").set(fmt.duration(transfer.eta) if running else "")


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
