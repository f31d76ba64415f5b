"""The app's one screen."""

from __future__ import annotations

from textual.binding import ActiveBinding, Binding
from textual.screen import Screen


class MainScreen(Screen):
    """The one screen; it lists the app's keys in the footer in the order they are declared.

    Textual orders the footer by which widget binds a key first, so a focused
    field (which binds ctrl+x itself) would otherwise shuffle it as focus moves.
    """

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        found = super().active_bindings
        order = {
            b.action: i for i, b in enumerate(type(self.app).BINDINGS) if isinstance(b, Binding)
        }
        ranked = sorted(found.items(), key=lambda item: order.get(item[1].binding.action, -1))
        return dict(ranked)
