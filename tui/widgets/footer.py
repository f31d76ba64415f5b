"""The footer of keys, rebuilt only when it would look different."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class QuietFooter(Footer):
    """A footer that rebuilds only when what it shows changes.

    Textual's footer rebuilds itself on every focus move; here the keys it
    shows are the app's, so most moves change nothing, and the rebuild is
    most of what a Tab costs while a download needs the CPU.
    """

    _shown: tuple[tuple[str, str, bool], ...] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (key, active.binding.description, active.enabled)
            for key, active in screen.active_bindings.items()
            if active.binding.show
        )
        if shown == self._shown:
            return
        super().bindings_changed(screen)
        if screen is self.screen and screen.app.app_focus:
            self._shown = shown  # rebuilt for these
