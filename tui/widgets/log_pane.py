"""The log: one timestamped line per thing that happened, newest at the bottom."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text

from tui.text import printable
from tui.widgets.reflow_log import ReflowLog

STYLES = {"info": "", "ok": "green", "warn": "yellow", "error": "bold red"}


class LogPane(ReflowLog):
    """A log whose lines start with the local time; styles only where they add meaning."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        history: list[str] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(max_lines=2000, **kwargs)
        self.clock = clock
        #: Plain copies of the lines, kept by the app (tests read them after it exits).
        self.lines_text: list[str] = [] if history is None else history

    def add(self, message: str, level: str = "info") -> None:
        """One line; ``message`` may hold names and words from servers: shown as printable
        plain text (a ``Text``, never markup), escape sequences spelled out."""
        message = printable(message)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        line = Text(f"{stamp} ", style="dim")
        # A marker word as well as a colour, so NO_COLOR and monochrome terminals see it too.
        if level == "error":
            line.append("error: ", style=STYLES[level])
        line.append(message, style=STYLES[level] if level != "error" else "")
        self.lines_text.append(f"{stamp} {'error: ' if level == 'error' else ''}{message}")
        del self.lines_text[:-2000]
        self.add_text(line)

    def clear(self) -> LogPane:
        self.lines_text.clear()
        super().clear()
        return self
