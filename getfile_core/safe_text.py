"""Text from outside, made safe to show on a terminal or in the app.

Names, paths, hosts and messages come from the network, the disk or the
user's shell, and a terminal obeys what it prints: ``ESC ] 2 ; … BEL``
retitles the window, ``ESC [ 2 J`` clears it, a C1 ``CSI`` (U+009B) does the
same on some terminals, and the bidi overrides (U+202E …) show
``exe.txt`` for ``txt.exe``. So every such text is shown with each character
that is not printable written as a visible escape (``\\x1b``, ``\\u202e``),
the way Python's ``repr`` writes it: nothing reaches the terminal as a
control, and the reader still sees that something odd is there (a ``?``
would hide which character it was).

Only the display changes: callers keep the original bytes for requests and
file names.
"""

from __future__ import annotations

#: Lone surrogates U+DC80..U+DCFF are undecodable bytes 0x80..0xFF under
#: ``surrogateescape`` (``os.fsdecode``); they are shown as the byte they stand for.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str | bytes, *, limit: int | None = None) -> str:
    """``text`` with every non-printable character written as a visible escape.

    Non-printable is Python's ``str.isprintable``: C0 and C1 controls, DEL,
    format characters (bidi overrides and isolates, zero-width joiners), line
    and paragraph separators, spaces other than the ASCII one, private-use and
    unassigned code points. Bytes are decoded as UTF-8, undecodable bytes
    shown as ``\\xNN``. ``limit`` cuts the result to that many characters
    (ending in ``…``), for lines that must stay one line on a terminal.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if text.isprintable():
        shown = text
    else:
        shown = "".join(char if char.isprintable() else _visible(char) for char in text)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(0, limit - 1)] + "…"
    return shown
