"""Local file names for downloads: one plain, safe name from whatever a server or a user said.

The client half of the old ``paths`` module: the server's confinement lives in
``getfile_core.server.root``.
"""

from __future__ import annotations

import os
import unicodedata

from getfile_core.protocol import MAX_NAME

#: A download is written to ``NAME`` + this suffix until it is verified. Not the
#: book-era ``.part``: a real file called ``notes.part`` (or a second download of
#: ``x.part`` next to ``x``) collided with the partial file of ``notes`` (``x``);
#: no downloaded file is ever saved under a name ending in this suffix.
PART_SUFFIX = ".getfile-part"
_MAX_LOCAL_NAME = MAX_NAME - len(PART_SUFFIX)


def part_name(name: str) -> str:
    """The partial file's name for a download saved as ``name``."""
    return name + PART_SUFFIX


class UnsafeName(ValueError):
    """No usable local file name can be made from what was asked for."""


def safe_local_name(remote_path: str | bytes) -> str:
    """The one plain file name a download of ``remote_path`` is saved as.

    Takes the last component (``/`` and ``\\`` both separate, since servers
    and users come from every platform), replaces control and separator
    characters, refuses ``.``/``..``/empty and names ending in ``PART_SUFFIX``
    (reserved for partial files), and trims so that ``NAME`` + ``PART_SUFFIX``
    still fits in NAME_MAX, keeping the extension.
    """
    text = os.fsdecode(remote_path) if isinstance(remote_path, bytes) else remote_path
    base = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    cleaned = "".join(
        "_" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch for ch in base
    ).strip()
    if cleaned in ("", ".", "..") or set(cleaned) == {"."}:
        raise UnsafeName(f"no file name in {text!r}")
    encoded = cleaned.encode("utf-8", "surrogateescape")
    if len(encoded) > _MAX_LOCAL_NAME:
        stem, dot, ext = cleaned.rpartition(".")
        ext_bytes = (dot + ext).encode("utf-8", "surrogateescape") if dot and stem else b""
        if len(ext_bytes) > 16:
            ext_bytes = b""
        room = _MAX_LOCAL_NAME - len(ext_bytes)
        head = encoded[: room if ext_bytes else _MAX_LOCAL_NAME]
        cleaned = head.decode("utf-8", "ignore") + ext_bytes.decode("utf-8", "surrogateescape")
    if cleaned.endswith(PART_SUFFIX):
        raise UnsafeName(f"names ending in {PART_SUFFIX} are reserved for partial downloads")
    return cleaned
