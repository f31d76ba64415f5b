"""The app's settings: ``config.toml`` in ``platformdirs.user_config_dir("getfile")``.

Every key is optional and documented with its default in docs/settings.md.
A bad file or a bad value never stops the app: each problem becomes ONE
line naming the key (and its line in the file), and that setting keeps its
default while every good one is kept. A file that is not TOML at all gives
one line with tomllib's line and column, and all the defaults.

Plain Python on purpose (no Textual): the app, the tests and a future
``getfile-tui --check-config`` read it the same way without a screen.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from getfile_core import DEFAULT_PORT, human_rate, parse_rate

CONFIG_FILE = "config.toml"
#: A generous config is a few KiB; more is a mistake (or a /dev/zero symlink).
MAX_CONFIG_BYTES = 256 * 1024
MAX_SEGMENTS = 16
MAX_RETRIES = 1000
#: One day: a longer "notify after" is surely a typo for something else.
MAX_NOTIFY_AFTER = 86_400.0
MAX_KEY_CHARS = 64
MAX_THEME_CHARS = 64

_MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
#: One Textual key: modifiers joined by ``+``, then a key name (``f5``, ``question_mark``)
#: or one printable character; several keys for one action are comma-separated.
_KEY = re.compile(
    rf"(?:(?:{'|'.join(_MODIFIERS)})\+)*(?:[A-Za-z0-9_]+|[!-+\--~])",
)


@dataclass(frozen=True)
class Settings:
    """Everything ``config.toml`` can set, with the defaults the app uses without one."""

    #: Where downloads go; None means the folder the app was started in.
    destination: Path | None = None
    port: int = DEFAULT_PORT
    #: Bytes per second shared by all downloads; None for no limit.
    rate_limit: float | None = None
    retries: int = 10
    segments: int = 1
    resume_on_start: bool = True
    #: A Textual theme name; None keeps Textual's default.
    theme: str | None = None
    notify_bell: bool = True
    notify_osc: bool = True
    notify_after: float = 10.0
    #: Action id → Textual key string(s), for ``App.set_keymap``.
    keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    #: One line per problem, for the app's log; empty when the file was fine or absent.
    problems: tuple[str, ...]
    path: Path


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/getfile/config.toml`` (``~/.config/getfile/config.toml``)."""
    return Path(platformdirs.user_config_dir("getfile")) / CONFIG_FILE


def load_settings(
    path: Path | None = None,
    *,
    action_ids: Collection[str] | None = None,
    themes: Collection[str] | None = None,
) -> LoadedSettings:
    """Read ``config.toml``; never raises for its content.

    ``action_ids`` are the binding ids of ``tui/actions.py`` that ``[keys]``
    may remap (None: accept any well-formed id); ``themes`` the names the app
    knows (None: accept any short name).
    """
    path = path if path is not None else config_path()
    text, problem = _read(path)
    if problem:
        return LoadedSettings(Settings(), (problem,), path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return LoadedSettings(
            Settings(), (f"{path.name}: {_one_line(error)}; using defaults",), path
        )
    reader = _Reader(path.name, text, action_ids, themes)
    return LoadedSettings(reader.settings(document), tuple(reader.problems), path)


def _read(path: Path) -> tuple[str, str | None]:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return "", None
    except OSError as error:
        return "", f"{path}: cannot read it ({error.strerror}); using defaults"
    if len(raw) > MAX_CONFIG_BYTES:
        return "", f"{path.name}: larger than {MAX_CONFIG_BYTES // 1024} KiB; using defaults"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return "", f"{path.name}: not UTF-8 text; using defaults"


def _one_line(error: Exception) -> str:
    """tomllib says ``Expected '=' after a key (at line 3, column 5)``: keep that, one line."""
    return " ".join(str(error).split())[:200]


# --- One checker per kind of value: return the clean value or raise ValueError(reason) ----


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value

    return check


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number of seconds")
    if not (math.isfinite(value) and 0 <= value <= MAX_NOTIFY_AFTER):
        raise ValueError(f"must be from 0 to {MAX_NOTIFY_AFTER:.0f} seconds")
    return float(value)


def _rate(value: Any) -> float | None:
    """``"2M"``, ``"500K"``, a number of bytes per second, or ``false``/``""`` for none."""
    if value is False or value == "" or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, bool):
        raise ValueError('must be a rate such as "2M", or false for none')
    if isinstance(value, int | float):
        if not (math.isfinite(value) and value >= 1):
            raise ValueError("must be at least 1 byte per second")
        return float(value)
    if isinstance(value, str) and len(value) <= 32:
        return parse_rate(value)  # its ValueError is already one clear line
    raise ValueError('must be a rate such as "2M", or false for none')


def _destination(value: Any) -> Path:
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise ValueError("must be a folder path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("has control characters")
    folder = Path(os.path.expanduser(value))
    if not folder.is_absolute():
        raise ValueError("must be an absolute path (or start with ~)")
    return folder


class _Reader:
    """Turns a parsed document into ``Settings``, collecting one line per problem."""

    def __init__(
        self,
        file_name: str,
        text: str,
        action_ids: Collection[str] | None,
        themes: Collection[str] | None,
    ) -> None:
        self.file_name = file_name
        self.lines = text.splitlines()
        self.action_ids = action_ids
        self.themes = themes
        self.problems: list[str] = []

    def settings(self, document: dict[str, Any]) -> Settings:
        checks: dict[str, Callable[[Any], Any]] = {
            "destination": _destination,
            "port": _whole(1, 65535),
            "rate_limit": _rate,
            "retries": _whole(0, MAX_RETRIES),
            "segments": _whole(1, MAX_SEGMENTS),
            "resume_on_start": _boolean,
            "theme": self._theme,
            "notify_after": _seconds,
        }
        chosen: dict[str, Any] = {}
        for key, value in document.items():
            if key in checks:
                self._take(chosen, key, key, checks[key], value)
            elif key == "notifications":
                self._notifications(chosen, value)
            elif key == "keys":
                chosen["keys"] = self._keys(value)
            else:
                self._problem(None, key, "unknown setting (ignored)")
        return replace(Settings(), **chosen)

    def _take(
        self,
        chosen: dict[str, Any],
        name: str,
        key: str,
        check: Callable[[Any], Any],
        value: Any,
        table: str | None = None,
    ) -> None:
        try:
            chosen[name] = check(value)
        except ValueError as error:
            default = getattr(Settings(), name)
            self._problem(table, key, f"{error}; using the default ({_shown(name, default)})")

    def _notifications(self, chosen: dict[str, Any], table: Any) -> None:
        if not isinstance(table, dict):
            self._problem(None, "notifications", "must be a table ([notifications])")
            return
        for key, value in table.items():
            if key in ("bell", "osc"):
                self._take(chosen, f"notify_{key}", key, _boolean, value, "notifications")
            else:
                self._problem("notifications", key, "unknown setting (ignored)")

    def _keys(self, table: Any) -> dict[str, str]:
        if not isinstance(table, dict):
            self._problem(None, "keys", "must be a table ([keys])")
            return {}
        keys: dict[str, str] = {}
        owner: dict[str, str] = {}
        for action, value in table.items():
            if self.action_ids is not None and action not in self.action_ids:
                self._problem("keys", action, "no such action (ignored)")
                continue
            if not _valid_keys(value):
                self._problem("keys", action, 'not a key such as "f5" or "ctrl+k" (ignored)')
                continue
            taken = [k for k in value.split(",") if k in owner]
            if taken:
                self._problem("keys", action, f"{taken[0]!r} is already {owner[taken[0]]}'s")
                continue
            owner.update(dict.fromkeys(value.split(","), action))
            keys[action] = value
        return keys

    def _theme(self, value: Any) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= MAX_THEME_CHARS:
            raise ValueError("must be a theme name")
        if self.themes is not None and value not in self.themes:
            raise ValueError("no such theme")
        if not value.isprintable():
            raise ValueError("has control characters")
        return value

    def _problem(self, table: str | None, key: str, reason: str) -> None:
        """``config.toml line 4: keys.download: no such action (ignored)``."""
        shown = _safe_key(key)
        dotted = f"{table}.{shown}" if table else shown
        line = self._line_of(table, key)
        where = f"{self.file_name} line {line}" if line else self.file_name
        self.problems.append(f"{where}: {dotted}: {reason}")

    def _line_of(self, table: str | None, key: str) -> int | None:
        """Best effort: the line that sets ``key`` in ``[table]`` (tomllib keeps no positions)."""
        assignment = re.compile(rf"[\"']?{re.escape(key)}[\"']?\s*=")
        current: str | None = None
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            header = re.fullmatch(r"\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?", stripped)
            if header:
                current = header[1]
            if header and table is None and current == key:
                return number  # an unknown [table]
            if not header and current == table and assignment.match(stripped):
                return number
            if table and current is None and stripped.startswith(f"{table}.{key}"):
                return number  # dotted: keys.download = "f5"
        return None


def _valid_keys(value: Any) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_CHARS:
        return False
    return all(_KEY.fullmatch(key) for key in value.split(","))


def _safe_key(key: str) -> str:
    """A key name from the file, shown safely: printable and short."""
    shown = key if key.isprintable() else repr(key)
    return shown if len(shown) <= 40 else shown[:40] + "…"


def _shown(name: str, default: Any) -> str:
    if default is None:
        return "none"
    if name == "rate_limit":
        return human_rate(default)
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)
