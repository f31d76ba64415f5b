"""Servers that answered ``slice=K/N`` before: may a segmented start ask on all connections at once?

A fresh ``--segments N`` download is fastest when its N connections ask for
their slices at once (``slices``): no connection waits a round trip for
another's head. But until a server has answered, nobody knows it is a
getfile server at all, and the book's server (or a version-1 one) sees N
connections asking for a file named ``\\0getfile/2 GET …``, each one an
``Error downloading file`` on its console, before the one download it can
serve. Waiting for the first answer before opening the others costs that
round trip on every fast start: on a path of 40 ms each way, 16 MiB in 8
segments took 0.90 s against 0.83 s all at once (medians of 5, load 1.0).
No client can know before the first answer, so it remembers it: a server
that answered a slice is asked all at once from then on, and one never
seen (or that stopped answering slices) gets one connection first, which
costs a legacy or version-1 server exactly one connection more than its
download.

Kept in the process (every download of a ``get`` with several URLs, or of
the app, learns from the first) and, when ``Options.known_servers`` names
a file (the command line: ``$XDG_CACHE_HOME/getfile/servers``), on disk:
one ``HOST PORT`` line per server, the most recent last, at most
``MAX_ENTRIES``. The file is a cache and may have been tampered with: it
is read only up to ``MAX_BYTES``, lines that are not a host and a port are
skipped, and a wrong entry costs at most the connections it would have
saved. Any error reading or writing it is ignored (a read-only home must
not fail a download).
"""

from __future__ import annotations

import _thread
import contextlib
import os

#: Servers remembered on disk (the oldest are forgotten first).
MAX_ENTRIES = 256
#: Most bytes read from the file (256 entries of a 255-byte host name fit).
MAX_BYTES = 80 * 1024
_HEADER = "getfile-servers 1"

_LOCK = _thread.allocate_lock()  # threading.Lock, without importing threading
#: (host, port) -> answers slices, for this process; loaded files are merged in.
_SEEN: dict[tuple[str, int], bool] = {}
_LOADED: set[str] = set()


def default_path() -> str | None:
    """``$XDG_CACHE_HOME/getfile/servers`` (``~/.cache/getfile/servers``); None without a home."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "getfile", "servers")


def answers_slices(host: str, port: int, path: str | None) -> bool:
    """True when this server answered a slice before (in this process, or in ``path``)."""
    with _LOCK:
        if path is not None and path not in _LOADED:
            _LOADED.add(path)
            for key in _read(path):
                _SEEN.setdefault(key, True)
        return _SEEN.get((host, port), False)


def learned(host: str, port: int, answers: bool, path: str | None) -> None:
    """What this server's first answer showed; written to ``path`` when it changed something."""
    key = (host, port)
    with _LOCK:
        if _SEEN.get(key) is answers:
            return
        _SEEN[key] = answers
    if path is None or not _valid_host(host):
        return
    entries = _read(path)
    kept = [entry for entry in entries if entry != key]
    if answers:
        kept.append(key)
    elif len(kept) == len(entries):
        return  # forgetting a server the file never had: nothing to write
    _write(path, kept[-MAX_ENTRIES:])


def forget_all() -> None:
    """The process's memory emptied (tests)."""
    with _LOCK:
        _SEEN.clear()
        _LOADED.clear()


def _valid_host(host: str) -> bool:
    return 0 < len(host) <= 255 and host.isprintable() and " " not in host


def _read(path: str) -> list[tuple[str, int]]:
    """The file's entries, in order; [] when it is missing, unreadable or not ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        if not _regular(fd):
            return []
        data = os.read(fd, MAX_BYTES)
    except OSError:
        return []
    finally:
        os.close(fd)
    lines = data.decode("utf-8", "replace").splitlines()
    if not lines or lines[0] != _HEADER:
        return []
    entries: list[tuple[str, int]] = []
    for line in lines[1:]:
        host, _, port = line.rpartition(" ")
        if _valid_host(host) and port.isdigit() and 0 < int(port) < 65536:
            entries.append((host, int(port)))
    return entries[-MAX_ENTRIES:]


def _regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def _write(path: str, entries: list[tuple[str, int]]) -> None:
    """Replace the file whole (a temporary file and a rename): a reader never sees half."""
    text = "\n".join([_HEADER, *(f"{host} {port}" for host, port in entries)]) + "\n"
    folder = os.path.dirname(path)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o600)
    except OSError:
        return
    try:
        with open(fd, "w", encoding="utf-8", closefd=True) as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


__all__ = ["MAX_ENTRIES", "answers_slices", "default_path", "forget_all", "learned"]
