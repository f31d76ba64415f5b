"""Every action of the app, once: its id, default key, footer word, help text and palette name.

The bindings (``bindings()``), the F1 keys screen and the command palette
(``tui.commands``) are all built from ``ACTIONS``, so an action is spelled
in one place, and a keymap that remaps an id (``App.set_keymap``) shows in
all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    id: str  # the binding id: what a keymap names (``download = "f5"``)
    action: str  # the app's ``action_<name>``
    key: str  # default key(s), Textual's spelling; "" for palette-only actions
    footer: str  # the footer's word
    help: str  # the F1 screen's line
    palette: str  # the palette's title; "" keeps it out of the palette
    palette_help: str = ""
    show: bool = True  # in the footer


ACTIONS: tuple[Action, ...] = (
    Action(
        "download", "download", "ctrl+g", "Get", "download the file in the form",
        "Download", "Fetch the file in the form",
    ),
    Action(
        "cancel", "cancel", "ctrl+x", "Cancel", "cancel the selected download (or the newest)",
        "Cancel download", "Stop the selected (or newest) download",
    ),
    Action(
        "retry", "retry", "ctrl+r", "Retry",
        "retry the selected failed download (now, if waiting)",
        "Retry download", "Try the selected (or newest) failed download again, now",
    ),
    Action(
        "server", "toggle_server", "ctrl+s", "Server", "start or stop the local server",
        "Start/stop local server", "Serve a folder from inside the app",
    ),
    Action(
        "switch-pane", "switch_pane", "ctrl+t", "Log/Server", "show the log or the server pane",
        "Show log / server", "Switch the lower pane",
    ),
    Action(
        "keys", "toggle_keys", "f1", "Keys", "this list",
        "Keys", "List every key in force", show=False,
    ),
    Action(
        "quit", "quit", "ctrl+q", "Quit", "quit (asks first if downloads run)",
        "", "",
    ),
    Action(
        "cancel-all", "cancel_all", "ctrl+n", "Cancel all", "cancel every running download",
        "Cancel all downloads", "Stop every running download", show=False,
    ),
    Action(
        "pick-folder", "pick_folder", "ctrl+o", "Folder", "choose the folder to save into",
        "Choose destination folder", "Pick where downloads are saved", show=False,
    ),
    Action(
        "browse", "browse", "ctrl+l", "List", "list the server's files and pick one",
        "List files on the server", "Browse the server's folders, pick the File", show=False,
    ),
    Action(
        "clear-log", "clear_log", "f3", "Clear log", "clear the log",
        "Clear log", "Empty the log pane", show=False,
    ),
    Action(
        "theme", "next_theme", "f2", "Theme", "next colour theme",
        "Switch theme", "Cycle to the next colour theme", show=False,
    ),
    Action(
        "limit", "limit_rate", "f4", "Limit", "set the global rate limit (all downloads share it)",
        "Set global rate limit", "Cap all downloads together: 500K, 2M, or none", show=False,
    ),
    Action(
        "limit-one", "limit_transfer", "f5", "Limit one", "set the selected download's own limit",
        "Limit the selected download", "Cap one download's rate (the global limit still applies)",
        show=False,
    ),
    Action(
        "local-server", "use_local_server", "f6", "Local", "point the form at the local server",
        "Point the form at the local server", "Fill Server and Port from the running server",
        show=False,
    ),
    Action(
        "verify", "verify", "f8", "Verify", "verify the selected download against a checksum",
        "Verify against…", "Check a finished download against sha256:HEX or SHA256SUMS",
        show=False,
    ),
    Action(
        "deliver", "deliver", "f9", "To browser",
        "hand the selected finished download to the browser (--web)",
        "Send to browser", "Save a finished download through this browser (--web sessions)",
        show=False,
    ),
    Action(
        "recent", "recent", "ctrl+y", "Recent", "recent servers and bookmarks: fill the form",
        "Recent servers and bookmarks", "Fill Server and Port from one used before", show=False,
    ),
    Action(
        "bookmark", "bookmark", "", "", "",
        "Bookmark this server", "Name the form's server, port and folder (ctrl+y lists it)",
    ),
    Action(
        "clear-finished", "clear_finished", "", "", "",
        "Clear finished downloads", "Remove done, failed and cancelled rows (and history)",
    ),
    Action(
        "connections", "connections", "", "", "",
        "Segments and mirrors…", "Connections per file and other servers, for the next downloads",
    ),
    Action(
        "files", "toggle_group", "", "", "",
        "Expand/collapse a folder download", "Show the selected grouped row's files (or hide them)",
    ),
    Action(
        "form", "focus_form", "f7", "Form", "jump to the download form",
        "Go to the form", "Move the focus to the download form", show=False,
    ),
)  # fmt: skip


def bindings() -> list[Binding]:
    """The app's bindings, in footer order.

    Priority, so they work from inside a field too (ctrl+x wins over "cut");
    the app's ``check_action`` switches them off under dialogs.
    """
    return [
        Binding(a.key, a.action, a.footer, id=a.id, show=a.show, priority=True)
        for a in ACTIONS
        if a.key
    ]


def key_in_force(app: App[object], binding_id: str) -> str:
    """The key bound to ``binding_id`` now (after any keymap), as the footer shows it."""
    for active in app.screen_stack[0].active_bindings.values():
        if active.binding.id == binding_id:
            return app.get_key_display(active.binding)
    for binding in app.BINDINGS:
        if isinstance(binding, Binding) and binding.id == binding_id:
            return app.get_key_display(binding)
    return ""


#: The app's keys (a dialog open, only ``DIALOG_ACTIONS`` of them stay usable; the
#: palette-only actions are run from the palette, itself a screen, so they are not here).
OWN_ACTIONS = frozenset(a.action for a in ACTIONS if a.key)
#: Actions still allowed while a dialog (or the command palette) is open.
DIALOG_ACTIONS = frozenset({"quit", "toggle_keys", "next_theme"})


def delegate(collaborator: str, method: str) -> Callable[[Any], object]:
    """An ``action_<method>`` for the app that is one of its collaborators' methods.

    ``action_cancel = delegate("tools", "cancel")`` reads as a table: the key
    (``ACTIONS``) runs ``app.tools.cancel()``; the collaborator holds the
    logic, the app only routes the key to it.
    """

    def action(app: Any) -> object:
        return getattr(getattr(app, collaborator), method)()

    action.__name__ = f"action_{method}"
    action.__doc__ = f"``{collaborator}.{method}()``"
    return action
