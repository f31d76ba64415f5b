"""Telling the user a long download ended while they looked elsewhere.

Three signals, each a plain string for the app to write to the terminal:

- the bell (``BEL``), which most terminals turn into a sound, an urgent
  window hint or a tab marker;
- OSC 9 (``ESC ] 9 ; text BEL``): iTerm2, kitty, WezTerm, Windows Terminal,
  foot, ConEmu show a desktop notification;
- OSC 777 (``ESC ] 777 ; notify ; title ; body BEL``): rxvt's extension,
  also read by VTE terminals (GNOME Terminal, Tilix), foot and WezTerm.

They travel in the terminal's byte stream, so they reach a desktop through
SSH. Terminals that know neither ignore them. Both are terminated by BEL
rather than ST: every terminal that implements them accepts BEL, and
rxvt's original implementation accepts only BEL.

The text comes from outside (file names, server error messages), so it is
cleaned: every control character (C0, DEL, C1 including the 8-bit ST and
OSC) and invisible format character (bidi overrides) is removed, which means
a file name can neither end the sequence nor start another one. ``;``
separates OSC 777's fields, so it becomes ``,`` there.

``should_notify`` is the rule, a pure function the app calls when a
transfer ends.
"""

from __future__ import annotations

import re
import unicodedata

BELL = "\a"
OSC = "\x1b]"
#: Desktop notifications truncate long text anyway; bounded so a hostile name stays small.
MAX_TEXT_CHARS = 200
#: Outcomes worth interrupting for (the ``Phase`` values; a cancel was the user's own doing).
NOTIFY_OUTCOMES = frozenset({"done", "failed"})

_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` with no control or invisible characters, whitespace runs as one space, bounded."""
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in _INVISIBLE:
            kept.append(" " if category in ("Cc", "Zl", "Zp") else "")
        else:
            kept.append(char)
    cleaned = re.sub(r"\s+", " ", "".join(kept)).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def osc9(title: str, body: str) -> str:
    """One OSC 9 notification, ``title: body``.

    ConEmu and Windows Terminal read ``9;<digit>;`` as other commands
    (``9;4;`` is a progress bar), so a text starting with a digit gets a
    leading space.
    """
    text = clean_text(f"{title}: {body}")
    if text[:1].isdigit():
        text = " " + text
    return f"{OSC}9;{text}{BELL}"


def osc777(title: str, body: str) -> str:
    """One OSC 777 ``notify`` with its title and body (``;`` in either becomes ``,``)."""
    title = clean_text(title, 60).replace(";", ",")
    body = clean_text(body).replace(";", ",")
    return f"{OSC}777;notify;{title};{body}{BELL}"


def tmux_passthrough(sequence: str) -> str:
    """Wrap a sequence for tmux (needs ``set -g allow-passthrough on``) so the outer terminal
    sees it: tmux otherwise swallows OSC 9 and 777."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def notification(
    title: str, body: str, *, bell: bool = True, osc: bool = True, in_tmux: bool = False
) -> str:
    """Everything to write for one notification, as the settings allow; "" for nothing."""
    parts = [BELL] if bell else []
    if osc:
        for sequence in (osc9(title, body), osc777(title, body)):
            parts.append(tmux_passthrough(sequence) if in_tmux else sequence)
    return "".join(parts)


def describe(name: str, outcome: str, reason: str | None = None) -> tuple[str, str]:
    """(title, body) for a finished transfer: ``("getfile", "big.iso downloaded")``."""
    if outcome == "done":
        return "getfile", f"{name} downloaded"
    return "getfile", f"{name} failed: {reason}" if reason else f"{name} failed"


def should_notify(
    *, outcome: str, duration: float, in_background: bool, notify_after: float
) -> bool:
    """Notify when a download of at least ``notify_after`` seconds finished or failed while
    the app was in the background (the terminal lost focus, or the app was suspended).

    A short one ends before anyone looks away, and a foreground one is seen
    in the table; a notification for either is noise.
    """
    return in_background and outcome in NOTIFY_OUTCOMES and duration >= notify_after
