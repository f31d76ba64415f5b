"""Asked before quitting while downloads run: quitting cancels them."""

from __future__ import annotations

from textual.binding import Binding

from tui.screens.confirm import ConfirmScreen


class ConfirmQuitScreen(ConfirmScreen):
    """The generic yes/no question, worded for quitting; q answers yes as well as y."""

    BINDINGS = [
        Binding("y,q", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Stay"),
        Binding("left", "app.focus_previous", show=False),
        Binding("right", "app.focus_next", show=False),
    ]

    def __init__(self, running: int) -> None:
        one = running == 1
        what = "1 download is" if one else f"{running} downloads are"
        super().__init__(
            "Quit getfile?",
            f"{what} still running. Quitting stops {'it' if one else 'them'}: what "
            "arrived so far stays in a partial file, never under the final name, "
            f"and the next start of getfile-tui resumes {'it' if one else 'them'}.",
            yes="Quit (y)",
            no="Stay (n)",
        )
