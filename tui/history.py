"""What the app remembers between runs: the last server, recent servers, bookmarks.

Kept in ``history.json`` beside the queue (``platformdirs.user_state_dir``),
written with the queue's own ``write_atomically``, so a crash leaves the old
file or the new one. Two instances may both save it; the last one wins,
whole. A damaged file is moved aside like the queue's.

A bookmark names the *path* of a token file, never a token: a plain JSON
file in a state folder is no place for a secret, and a bookmark with a
``token`` field is dropped with a line saying so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.queue_store import (
    has_control_characters,
    move_aside,
    read_json_bounded,
    state_dir,
    write_atomically,
)

FORMAT = "getfile-history"
VERSION = 1
HISTORY_FILE = "history.json"
MAX_HISTORY_BYTES = 1024 * 1024
#: Enough to be "one key away" in a short list; more is scrolling, not recall.
MAX_RECENT = 20
MAX_BOOKMARKS = 200
MAX_NAME_CHARS = 64
MAX_PATH_CHARS = 4096
#: Host names, IPv4, and IPv6 with brackets or a zone (``fe80::1%eth0``): no spaces or slashes.
_HOST = re.compile(r"[A-Za-z0-9._:%\[\]-]{1,253}")


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    def __post_init__(self) -> None:
        _check_host(self.host)
        _check_port(self.port)


@dataclass(frozen=True)
class Bookmark:
    """A name for a server, port and folder, and where the token for it is kept (a path)."""

    name: str
    host: str
    port: int
    folder: str = ""
    token_file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= MAX_NAME_CHARS:
            raise ValueError(f"name is not 1-{MAX_NAME_CHARS} characters")
        if not self.name.isprintable():
            raise ValueError("name has control characters")
        _check_host(self.host)
        _check_port(self.port)
        _check_path(self.folder, "folder", allow_empty=True)
        if self.token_file is not None:
            _check_path(self.token_file, "token_file", allow_empty=False)
            if not self.token_file.startswith(("/", "~")):
                raise ValueError("token_file is not an absolute path (or one starting with ~)")

    @property
    def server(self) -> Server:
        return Server(self.host, self.port)

    @classmethod
    def from_json(cls, data: object) -> Bookmark:
        if not isinstance(data, dict):
            raise ValueError("not an object")
        if "token" in data:
            raise ValueError("holds a token; give token_file (a path to it) instead")
        return cls(
            name=data.get("name"),  # type: ignore[arg-type]  (checked in __post_init__)
            host=data.get("host"),  # type: ignore[arg-type]
            port=data.get("port"),  # type: ignore[arg-type]
            folder=data.get("folder", ""),
            token_file=data.get("token_file"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "folder": self.folder,
            "token_file": self.token_file,
        }


@dataclass(frozen=True)
class History:
    """Immutable: each change returns a new History for the app to save when it likes."""

    recent: tuple[Server, ...] = ()
    bookmarks: Mapping[str, Bookmark] = field(default_factory=dict)

    @property
    def last(self) -> Server | None:
        """The server and port the form starts with."""
        return self.recent[0] if self.recent else None

    def remember(self, host: str, port: int) -> History:
        """``host:port`` first, without a duplicate further down, at most ``MAX_RECENT``."""
        used = Server(host, port)
        recent = (used, *(s for s in self.recent if s != used))
        return replace(self, recent=recent[:MAX_RECENT])

    def with_bookmark(self, bookmark: Bookmark) -> History:
        """Add or replace a bookmark by name; ``ValueError`` past ``MAX_BOOKMARKS``."""
        if bookmark.name not in self.bookmarks and len(self.bookmarks) >= MAX_BOOKMARKS:
            raise ValueError(f"at most {MAX_BOOKMARKS} bookmarks")
        return replace(self, bookmarks={**self.bookmarks, bookmark.name: bookmark})

    def without_bookmark(self, name: str) -> History:
        return replace(self, bookmarks={k: v for k, v in self.bookmarks.items() if k != name})


class HistoryStore:
    """``load()`` never raises for the file's content; ``problems`` says what was dropped."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder if folder is not None else state_dir()) / HISTORY_FILE
        self.problems: list[str] = []
        #: Set for a file from a newer getfile: it is kept as it is, never overwritten.
        self.read_only = False
        self.save_error: str | None = None

    def load(self) -> History:
        try:
            document = read_json_bounded(self.path, MAX_HISTORY_BYTES)
        except ValueError as error:
            self.problems.append(move_aside(self.path, str(error)))
            return History()
        except OSError as error:
            self.problems.append(f"{self.path}: cannot read it ({error.strerror})")
            return History()
        if document is None:
            return History()
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            self.problems.append(move_aside(self.path, "not getfile's history"))
            return History()
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.problems.append(move_aside(self.path, "no valid format version"))
            return History()
        if version > VERSION:
            self.read_only = True
            self.problems.append(f"{HISTORY_FILE}: written by a newer getfile; not changed")
            return History()
        return History(self._recent(document.get("recent")), self._bookmarks(document))

    def save(self, history: History) -> bool:
        """Write atomically; False when nothing was written (read-only, or ``save_error``)."""
        if self.read_only:
            return False
        document = {
            "format": FORMAT,
            "version": VERSION,
            "recent": [{"host": s.host, "port": s.port} for s in history.recent],
            "bookmarks": [b.to_json() for b in history.bookmarks.values()],
        }
        try:
            write_atomically(self.path, json.dumps(document, indent=1).encode())
        except OSError as error:
            self.save_error = f"could not save the history to {self.path}: {error.strerror}"
            return False
        self.save_error = None
        return True

    def _recent(self, entries: object) -> tuple[Server, ...]:
        servers: list[Server] = []
        for entry in entries[:MAX_RECENT] if isinstance(entries, list) else []:
            try:
                server = Server(entry.get("host"), entry.get("port"))  # type: ignore[union-attr]
            except (ValueError, AttributeError):
                continue  # a recent server is a convenience: drop a bad one quietly
            if server not in servers:
                servers.append(server)
        return tuple(servers)

    def _bookmarks(self, document: dict[str, Any]) -> dict[str, Bookmark]:
        entries = document.get("bookmarks", [])
        bookmarks: dict[str, Bookmark] = {}
        for number, entry in enumerate(entries if isinstance(entries, list) else [], start=1):
            if len(bookmarks) >= MAX_BOOKMARKS:
                self.problems.append(f"{HISTORY_FILE}: more than {MAX_BOOKMARKS} bookmarks")
                break
            try:
                bookmark = Bookmark.from_json(entry)
            except ValueError as error:
                self.problems.append(f"{HISTORY_FILE}: bookmark {number} dropped: {error}")
                continue
            bookmarks[bookmark.name] = bookmark
        return bookmarks


def _check_host(host: object) -> None:
    if not isinstance(host, str) or not _HOST.fullmatch(host):
        raise ValueError("host is not a host name or address")


def _check_port(port: object) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port is not from 1 to 65535")


def _check_path(path: object, what: str, *, allow_empty: bool) -> None:
    if not isinstance(path, str) or len(path) > MAX_PATH_CHARS:
        raise ValueError(f"{what} is not a path")
    if not path and not allow_empty:
        raise ValueError(f"{what} is empty")
    if has_control_characters(path):
        raise ValueError(f"{what} has control characters")
