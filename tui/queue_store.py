"""The persisted queue: transfers survive an SSH drop, a closed terminal or a crash.

The app keeps its transfers in ``state.json`` under
``platformdirs.user_state_dir("getfile")`` (``~/.local/state/getfile``) and
calls ``QueueStore.save`` when a transfer changes state, never per progress
tick: a save is a write, two fsyncs and a rename. Measured on this project's
ext4 VM: 1.4 ms for 12 transfers (4.7 KiB), 36 ms for 1000 (390 KiB); at
10 ticks a second that would be a disk flush every 100 ms for nothing, since
the bytes done are known again from the ``.part`` file anyway.

Safety rules, each tested:

- Atomic: ``write_atomically`` writes a temporary file in the same folder,
  fsyncs it, renames it over the old one and fsyncs the folder, so a crash
  leaves the old file or the new one, never half of each.
- Two instances: the first takes an ``flock`` on ``state.lock`` (a separate
  file, since the rename replaces ``state.json``'s inode); a second one opens
  the queue read-only and says so in ``notice``. The kernel drops the lock
  when a process dies, so a crash never leaves the queue locked.
- Hostile or damaged content never crashes the app: a file that is not our
  JSON is moved aside to ``state.json.bad-<UTC time>`` with one line; a file
  from a newer getfile is left alone and opened read-only; each entry is
  checked on its own and a bad one is dropped with one line.

Format 2 adds grouped rows (a folder download: ``group`` with the remote
folder and the selected names, percent-encoded since they are bytes and
need not be UTF-8). Format 1 files still load. A format-1 app would read a
group entry as a single file named after its server, so format 2 files are
"from a newer getfile" to it: it opens them read-only and leaves them alone.

URLs: a file with ``"exact_urls": true`` holds ``Target.url()`` as it is now,
the path percent-encoded (``a%2541.txt`` is the file ``a%41.txt``). Files
without it were written when ``url()`` put the readable path in unescaped,
so ``a%41.txt`` would come back as ``aA.txt`` and ``x#y`` not at all: their
URLs are read literally (``legacy_url``) and saved exactly from then on. The
flag is a new key, not a new version, because an app that knows no flag
reads the exact URLs right (``parse_url`` decodes them) and, when it saves,
drops the flag, which is then again true of what it wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import re
import stat
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

import platformdirs

FORMAT = "getfile-queue"
#: The document key saying its URLs are exact (percent-encoded); see the module's docstring.
EXACT_URLS = "exact_urls"
#: 2: grouped rows (``SavedGroup``). 1: single files only (still read).
VERSION = 2
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
#: A thousand transfers take 390 KiB (measured); anything over 4 MiB is not ours.
MAX_STATE_BYTES = 4 * 1024 * 1024
MAX_TRANSFERS = 1000
MAX_URL_CHARS = 4096
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255
MAX_ERROR_CHARS = 300
MAX_MIRRORS = 16
#: Names one grouped row may carry (a selection in the browser; a folder is one name).
MAX_GROUP_NAMES = 1000
#: Files a tree may count (the row's "done/total"), far above any real folder.
MAX_GROUP_FILES = 10**9
#: At most this many "entry dropped" lines; the rest are counted in one more.
MAX_PROBLEM_LINES = 5


def state_dir() -> Path:
    """``$XDG_STATE_HOME/getfile`` (``~/.local/state/getfile``)."""
    return Path(platformdirs.user_state_dir("getfile"))


# --- Storage helpers shared with history.py ---------------------------------------------


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file whole.

    Mode 0o600 by default: the queue and history name servers, folders and
    token-file paths, which are nobody else's business on a shared machine.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)  # the rename itself must survive a power cut
    finally:
        os.close(folder)


def move_aside(path: Path, why: str) -> str:
    """Rename a damaged file to ``NAME.bad-<UTC time>`` and return the one line saying so."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.bad-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{counter}")
    try:
        os.replace(path, target)
    except OSError as error:
        return f"{path.name}: {why}; could not move it aside ({error.strerror}), not using it"
    return f"{path.name}: {why}; moved aside to {target.name}, starting empty"


def read_json_bounded(path: Path, limit: int) -> Any:
    """The JSON in ``path``, or ``None`` when there is no file.

    Raises ``ValueError`` with a short reason for a file that is too big,
    not UTF-8 or not JSON; the caller moves it aside.
    """
    try:
        # O_NONBLOCK: a FIFO or device put in our place must not hang the app's start.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"larger than {limit // 1024} KiB")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 JSON"
        raise ValueError(f"not valid JSON ({reason})") from None


_LOST_BYTE = re.compile(rb"\\x([89a-f][0-9a-f])")


def legacy_url(text: str) -> str:
    """The exact URL for one that an older app saved with its path unescaped.

    Such a URL is ``SCHEME://HOST:PORT/`` and the path as ``Target.display_path``
    showed it: UTF-8, with each byte that was not UTF-8 spelled ``\\xNN``
    (always ``80``-``ff``, lower case: Python's ``backslashreplace``), which is
    turned back into that byte. Everything else is taken literally.
    """
    scheme, _, rest = text.partition("://")
    authority, _, path = rest.partition("/")
    raw = _LOST_BYTE.sub(lambda found: bytes([int(found[1], 16)]), path.encode("utf-8", "replace"))
    return f"{scheme}://{authority}/{quote_from_bytes(raw, safe='/')}"


def _reject_constant(name: str) -> None:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def has_control_characters(text: str) -> bool:
    """C0, DEL and C1 controls: never legitimate in a URL, a path or a name we show."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


class StateLock:
    """An exclusive, non-blocking ``flock`` on a lock file; ``held`` says whether we got it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd, self.held = fd, True
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd, self.held = None, False


# --- The queue ---------------------------------------------------------------------------


class SavedState(StrEnum):
    """A transfer's state as saved. ``active`` means it was running when the app stopped."""

    QUEUED = "queued"
    ACTIVE = "active"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Resumed by themselves on start (when ``resume_on_start`` is on); paused ones wait.
RESUMABLE = frozenset({SavedState.QUEUED, SavedState.ACTIVE})
FINISHED = frozenset({SavedState.DONE, SavedState.FAILED, SavedState.CANCELLED})


@dataclass(frozen=True)
class SavedGroup:
    """A grouped row's tree: the remote ``folder`` and the ``names`` selected in it.

    Bytes, as the server lists them (not necessarily UTF-8), saved
    percent-encoded. Each name is ONE component of ``folder``, and the folder
    is relative to the served root: a saved ``..`` or ``a/b`` must never
    widen what the next start asks for.
    """

    folder: bytes
    names: tuple[bytes, ...]
    files_done: int = 0
    files_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": quote_from_bytes(self.folder, safe=""),
            "names": [quote_from_bytes(name, safe="") for name in self.names],
            "files_done": self.files_done,
            "files_total": self.files_total,
        }

    @classmethod
    def check(cls, data: object, what: str = "group") -> SavedGroup:
        """A checked group, or ``ValueError`` naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"{what} is not an object")
        names = data.get("names")
        if not isinstance(names, list) or not 1 <= len(names) <= MAX_GROUP_NAMES:
            raise ValueError(f"{what} names is not a list of 1 to {MAX_GROUP_NAMES} names")
        checked = tuple(_remote_name(name, f"{what} name") for name in names)
        if len(set(checked)) != len(checked):
            raise ValueError(f"{what} names repeat")
        files = _count(0, MAX_GROUP_FILES)
        return cls(
            folder=_remote_folder(data.get("folder"), f"{what} folder"),
            names=checked,
            files_done=files(data.get("files_done", 0), f"{what} files_done"),
            files_total=files(data.get("files_total", 0), f"{what} files_total"),
        )


@dataclass(frozen=True)
class QueuedTransfer:
    """One transfer as the queue keeps it; ``from_json`` checks every field of a saved one."""

    url: str
    destination: str
    #: The local name the user chose (Rename), or None for the server's name.
    name: str | None = None
    state: SavedState = SavedState.QUEUED
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Bytes per second for this transfer alone, or None for no limit of its own.
    rate_limit: float | None = None
    retries: int | None = None
    size: int | None = None
    received: int = 0
    error: str | None = None
    added: float = field(default_factory=time.time)
    finished: float | None = None
    #: Reserved for segmented downloads and mirrors (issue 14): kept, not used yet.
    segments: int = 1
    mirrors: tuple[str, ...] = ()
    #: A grouped row (a folder download): ``url`` is then the server's root.
    group: SavedGroup | None = None
    #: A finished download's average bytes per second, shown again on its row.
    rate: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["mirrors"] = list(self.mirrors)
        data["group"] = self.group.to_json() if self.group is not None else None
        return data

    @classmethod
    def from_json(cls, data: object) -> QueuedTransfer:
        """A checked transfer, or ``ValueError`` naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return cls(
            url=_url(data.get("url"), "url"),
            destination=_absolute_path(data.get("destination"), "destination"),
            name=_optional(data.get("name"), _local_name, "name"),
            state=_state(data.get("state", "queued")),
            id=_identifier(data.get("id")),
            rate_limit=_optional(data.get("rate_limit"), _positive_number, "rate_limit"),
            retries=_optional(data.get("retries"), _count(0, 1000), "retries"),
            size=_optional(data.get("size"), _count(0, 2**63 - 1), "size"),
            received=_count(0, 2**63 - 1)(data.get("received", 0), "received"),
            error=_optional(data.get("error"), _short_text, "error"),
            added=_timestamp(data.get("added", 0.0), "added"),
            finished=_optional(data.get("finished"), _timestamp, "finished"),
            segments=_count(1, 64)(data.get("segments", 1), "segments"),
            mirrors=_mirrors(data.get("mirrors", [])),
            group=_optional(data.get("group"), SavedGroup.check, "group"),
            rate=_optional(data.get("rate"), _positive_number, "rate"),
        )


class QueueStore:
    """The queue file of one app instance: ``open()``, read ``transfers``, ``save()``, ``close()``.

    ``read_only`` is set when another instance holds the lock or the file
    comes from a newer getfile; ``notice`` then says so in one line for the
    app to show. ``problems`` holds one line per thing dropped or moved aside.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else state_dir()
        self.path = self.folder / STATE_FILE
        self._lock = StateLock(self.folder / LOCK_FILE)
        self.transfers: list[QueuedTransfer] = []
        self.read_only = False
        self.notice: str | None = None
        self.problems: list[str] = []
        self.save_error: str | None = None

    def __enter__(self) -> QueueStore:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> list[QueuedTransfer]:
        """Take the lock (or go read-only) and load the saved transfers."""
        try:
            locked = self._lock.acquire()
        except OSError as error:  # an unwritable or missing state folder: run, but say so
            self.read_only = True
            self.notice = f"cannot use {self.folder} ({error.strerror}): transfers are not saved"
        else:
            if not locked:
                self.read_only = True
                self.notice = (
                    "another getfile-tui has the queue open: this one will not save its transfers"
                )
        self.transfers = self._load()
        return self.transfers

    def close(self) -> None:
        self._lock.release()

    def save(self, transfers: Iterable[QueuedTransfer]) -> bool:
        """Write the queue atomically; False when nothing was written.

        Nothing is written when read-only. A failed write (disk full, folder
        gone) keeps the previous file whole and sets ``save_error`` to one
        line for the app to show; the next successful save clears it.
        """
        self.transfers = list(transfers)[:MAX_TRANSFERS]
        if self.read_only:
            return False
        document = {
            "format": FORMAT,
            "version": VERSION,
            EXACT_URLS: True,
            "transfers": [transfer.to_json() for transfer in self.transfers],
        }
        try:
            write_atomically(self.path, json.dumps(document, indent=1).encode())
        except OSError as error:
            self.save_error = f"could not save the queue to {self.path}: {error.strerror}"
            return False
        self.save_error = None
        return True

    def resumable(self) -> list[QueuedTransfer]:
        return [t for t in self.transfers if t.state in RESUMABLE]

    def _load(self) -> list[QueuedTransfer]:
        try:
            document = read_json_bounded(self.path, MAX_STATE_BYTES)
        except ValueError as error:
            return self._damaged(str(error))
        except OSError as error:
            self.problems.append(f"{self.path}: cannot read it ({error.strerror})")
            self.read_only = True
            return []
        if document is None:
            return []
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return self._damaged("not a getfile queue")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            return self._damaged("no valid format version")
        if version > VERSION:
            self.read_only = True
            self.notice = (
                f"{STATE_FILE} was written by a newer getfile (format {version}): "
                "shown read-only, not saved"
            )
            return []
        entries = document.get("transfers")
        if not isinstance(entries, list):
            return self._damaged("no list of transfers")
        kept = self._checked(entries)
        if document.get(EXACT_URLS) is not True:
            kept = [dataclasses.replace(t, url=legacy_url(t.url)) for t in kept]
        return kept

    def _checked(self, entries: list[Any]) -> list[QueuedTransfer]:
        kept: list[QueuedTransfer] = []
        dropped: list[str] = []
        seen: set[str] = set()
        for number, entry in enumerate(entries[:MAX_TRANSFERS], start=1):
            try:
                transfer = QueuedTransfer.from_json(entry)
            except ValueError as error:
                dropped.append(f"{STATE_FILE}: transfer {number} dropped: {error}")
                continue
            if transfer.id in seen:
                dropped.append(f"{STATE_FILE}: transfer {number} dropped: repeated id")
                continue
            seen.add(transfer.id)
            kept.append(transfer)
        if len(entries) > MAX_TRANSFERS:
            dropped.append(f"{STATE_FILE}: more than {MAX_TRANSFERS} transfers, rest dropped")
        self.problems.extend(dropped[:MAX_PROBLEM_LINES])
        if len(dropped) > MAX_PROBLEM_LINES:
            self.problems.append(f"{STATE_FILE}: {len(dropped) - MAX_PROBLEM_LINES} more dropped")
        return kept

    def _damaged(self, why: str) -> list[QueuedTransfer]:
        if self.read_only:  # the other instance owns the file: leave it where it is
            self.problems.append(f"{STATE_FILE}: {why}; not using it")
        else:
            self.problems.append(move_aside(self.path, why))
        return []


# --- Field checks: each returns the clean value or raises ValueError("FIELD: reason") ---------


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    if not value or len(value) > limit:
        raise ValueError(f"{what} is empty or longer than {limit} characters")
    if has_control_characters(value):
        raise ValueError(f"{what} has control characters")
    return value


def _url(value: object, what: str) -> str:
    url = _text(value, what, MAX_URL_CHARS)
    if not url.startswith(("getfile://", "getfiles://")):  # getfiles: over TLS
        raise ValueError(f"{what} is not a getfile:// URL")
    return url


def _absolute_path(value: object, what: str) -> str:
    path = _text(value, what, MAX_PATH_CHARS)
    if not os.path.isabs(path):
        raise ValueError(f"{what} is not an absolute path")
    return path


def _local_name(value: object, what: str) -> str:
    name = _text(value, what, MAX_NAME_BYTES)
    if "/" in name or name in (".", "..") or len(os.fsencode(name)) > MAX_NAME_BYTES:
        raise ValueError(f"{what} is not a single file name")
    return name


def _short_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    cleaned = "".join(c if not has_control_characters(c) else " " for c in value)
    return cleaned[:MAX_ERROR_CHARS]


def _state(value: object) -> SavedState:
    try:
        return SavedState(value)
    except ValueError:
        raise ValueError("state is not one of " + ", ".join(SavedState)) from None


def _identifier(value: object) -> str:
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not (1 <= len(value) <= 64) or not value.isalnum():
        raise ValueError("id is not 1-64 letters and digits")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite")
    return float(value)


def _positive_number(value: object, what: str) -> float:
    number = _number(value, what)
    if number < 1:
        raise ValueError(f"{what} is below 1")
    return number


def _timestamp(value: object, what: str) -> float:
    number = _number(value, what)
    if not 0 <= number < 2**34:
        raise ValueError(f"{what} is not a time")
    return number


def _count(low: int, high: int):
    def check(value: object, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{what} is not a whole number")
        if not low <= value <= high:
            raise ValueError(f"{what} is not from {low} to {high}")
        return value

    return check


def _optional(value: object, check, what: str):
    return None if value is None else check(value, what)


#: What ``quote_from_bytes(..., safe="")`` writes: unreserved characters and %XX escapes.
_PERCENT_ENCODED = re.compile(r"(?:[A-Za-z0-9_.~-]|%[0-9A-Fa-f]{2})*")


def _percent_bytes(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > 3 * limit:
        raise ValueError(f"{what} is not text of at most {limit} bytes")
    if not _PERCENT_ENCODED.fullmatch(value):
        raise ValueError(f"{what} is not percent-encoded")
    raw = unquote_to_bytes(value)
    if len(raw) > limit:
        raise ValueError(f"{what} is longer than {limit} bytes")
    return raw


def _component_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not one remote path component, or None."""
    if not raw or raw in (b".", b"..") or b"/" in raw:
        return "is not a single name"
    if len(raw) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    # Undecodable bytes become lone surrogates, never controls: only real controls count.
    if has_control_characters(raw.decode("utf-8", "surrogateescape")):
        return "has control characters"
    return None


def _remote_name(value: object, what: str) -> bytes:
    raw = _percent_bytes(value, what, MAX_NAME_BYTES)
    problem = _component_problem(raw)
    if problem is not None:
        raise ValueError(f"{what} {problem}")
    return raw


def _remote_folder(value: object, what: str) -> bytes:
    """The folder the names are in, relative to the served root (empty: the root)."""
    raw = _percent_bytes(value, what, MAX_PATH_CHARS)
    for component in raw.split(b"/") if raw else ():
        problem = _component_problem(component)
        if problem is not None:
            raise ValueError(f"{what} has a part that {problem}")
    return raw


def _mirrors(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_MIRRORS:
        raise ValueError(f"mirrors is not a list of at most {MAX_MIRRORS} URLs")
    return tuple(_url(item, "mirror") for item in value)


__all__ = [
    "FINISHED",
    "RESUMABLE",
    "QueueStore",
    "QueuedTransfer",
    "SavedGroup",
    "SavedState",
    "StateLock",
    "legacy_url",
    "move_aside",
    "read_json_bounded",
    "state_dir",
    "write_atomically",
]
