"""What the command palette (ctrl+p) offers besides Textual's own entries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from tui.app import GetfileApp


def app_commands(app: GetfileApp) -> Iterable[SystemCommand]:
    """Every action of the app, named as a person would look for it, with its key."""
    yield SystemCommand("Download", "Fetch the file in the form (ctrl+g)", app.action_download)
    yield SystemCommand(
        "Cancel download", "Stop the selected (or newest) download (ctrl+x)", app.action_cancel
    )
    yield SystemCommand(
        "Cancel all downloads", "Stop every running download (ctrl+n)", app.action_cancel_all
    )
    yield SystemCommand(
        "Retry download",
        "Try the selected (or newest) failed download again (ctrl+r)",
        app.action_retry,
    )
    yield SystemCommand(
        "Start/stop local server",
        "Serve a folder from inside the app (ctrl+s)",
        app.action_toggle_server,
    )
    yield SystemCommand(
        "Point the form at the local server",
        "Fill Server and Port from the running server",
        app.action_use_local_server,
    )
    yield SystemCommand(
        "Choose destination folder",
        "Pick where downloads are saved (ctrl+o)",
        app.action_pick_folder,
    )
    yield SystemCommand(
        "List files on the server",
        "Browse the server's folders, pick the File (ctrl+l)",
        app.action_browse,
    )
    yield SystemCommand("Clear log", "Empty the log pane (f3)", app.action_clear_log)
    yield SystemCommand(
        "Switch theme", "Cycle to the next colour theme (f2)", app.action_next_theme
    )
    yield SystemCommand(
        "Show log / server", "Switch the lower pane (ctrl+t)", app.action_switch_pane
    )
