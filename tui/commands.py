"""What the command palette (ctrl+p) offers besides Textual's own entries, built from
``tui.actions`` (one table for keys, help and palette); it never imports the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from textual.app import SystemCommand

from tui.actions import ACTIONS


def app_commands(
    run_action: Callable[[str], Awaitable[object]], key_for: Callable[[str], str]
) -> Iterable[SystemCommand]:
    """Every action with a palette name, as a person would look for it, with its key in force.

    ``run_action`` is the app's (``App.run_action``); ``key_for`` gives the key shown
    for a binding id ("" when it has none).
    """
    for action in ACTIONS:
        if not action.palette:
            continue
        key = key_for(action.id)
        help_text = f"{action.palette_help} ({key})" if key else action.palette_help
        yield SystemCommand(action.palette, help_text, partial(run_action, action.action))


def palette(
    ours: Iterable[SystemCommand], textual: Iterable[SystemCommand]
) -> Iterable[SystemCommand]:
    """Ours, then Textual's own entries but those ours replace.

    Textual's own "Keys" opens a side panel that Esc does not close and that
    squeezes the log; ours (F1) is the one kept.
    """
    ours = list(ours)
    yield from ours
    titles = {command.title for command in ours}
    yield from (command for command in textual if command.title not in titles)
