"""The controller's questions, asked with the app's dialogs.

``DownloadController`` asks through an injected object with these two
coroutines, so its rules are tested with fakes; this is the real one, which
pushes a dialog and waits for its answer (from a worker: ``push_screen_wait``
must not run on the app's own message loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.screen import Screen

from tui.screens.overwrite import OverwriteScreen
from tui.screens.token_prompt import TokenScreen
from tui.transfers import Choice, Conflict


class DialogPrompts:
    """``choose`` (the file is already there) and ``token`` (the server asks for one)."""

    def __init__(self, ask: Callable[[Screen[Any]], Awaitable[Any]]) -> None:
        self.ask = ask  # the app's ``push_screen_wait``

    async def choose(self, conflict: Conflict, *, can_resume: bool) -> Choice:
        return await self.ask(OverwriteScreen(conflict, can_resume=can_resume))

    async def token(self, where: str, *, wrong: bool) -> bytes | None:
        return await self.ask(TokenScreen(where, wrong=wrong))
