"""A ``RichLog`` whose lines re-wrap when its width changes, and that follows new lines.

Textual's ``RichLog`` wraps a line once, at the width it has when written:
a log filled while the Keys panel squeezed it stayed wrapped at ~20 columns
for good, lines written at 80 columns stayed wrapped at ~75 on a
200-column terminal, and a pane filled while hidden (the Server tab at
start-up) came up blank, then showed its oldest lines. This one keeps the
lines it was given (bounded by ``max_lines``) and renders them again at the
new width, scrolled to the newest line, whenever the width changes.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import events
from textual.widgets import RichLog


class ReflowLog(RichLog):
    """Lines of plain ``Text`` that re-wrap to the width the log has now."""

    def __init__(self, *, max_lines: int = 2000, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, min_width=1, wrap=True, markup=False, **kwargs)  # type: ignore[arg-type]
        self._texts: deque[Text] = deque(maxlen=max_lines)
        self._drawn_width = 0

    def add_text(self, line: Text) -> None:
        """Append one line (kept, so it can wrap again at another width)."""
        self._texts.append(line)
        self.write(line, width=self._drawn_width or None, scroll_end=True)

    def clear(self) -> ReflowLog:
        self._texts.clear()
        super().clear()
        return self

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width > 0:
            self._size_known = True  # RichLog's own replay of deferred lines is replaced by ours
            self._deferred_renders.clear()
            # After the layout settles: the region lines wrap to is only known then.
            self.call_after_refresh(self._reflow)

    def _reflow(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0 or width == self._drawn_width:
            return
        self._drawn_width = width
        super().clear()
        for line in self._texts:
            # An explicit width: RichLog measures against the console's width, which can
            # be the terminal's size at start, so lines wrapped at ~75 on a wide screen.
            self.write(line, width=width, scroll_end=False)
        self.scroll_end(animate=False, immediate=False)

    def on_show(self) -> None:
        self.call_after_refresh(self.scroll_end, animate=False)
