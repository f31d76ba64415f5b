"""Text from outside (the network, the disk, the user) made safe to show.

Textual parses ``[...]`` in plain strings as markup, including
``[@click=app.quit]``: a server that names a file ``[@click=app.quit]x.txt``
would quit the app on one click, and a message of ``[/]`` crashes it
(``MarkupError``). A terminal, for its part, obeys escape sequences: an ESC
in a name can retitle the window or clear the screen. So everything that did
not come from this program's own source goes through here, and is shown as
``Content`` (never parsed as markup) made of printable characters only.
"""

from __future__ import annotations

from textual.content import Content

from getfile_core import printable as _printable

#: Longer than any name or message worth reading; bounds what a hostile peer can make us draw.
MAX_SHOWN = 1024


def printable(text: str | bytes, limit: int = MAX_SHOWN) -> str:
    """``text`` with every unprintable character spelled out (``\\x1b``, ``\\n``, ``\\xff``),
    at most ``limit`` characters: ``getfile_core.printable`` (the one rule, shared with the
    command line) with the app's bound, since nothing the app draws is unbounded."""
    return _printable(text, limit=limit)


def plain(text: str | bytes, limit: int = MAX_SHOWN) -> Content:
    """Outside text as a widget's content: printable, and never read as markup."""
    return Content(printable(text, limit))


#: The library's advice is for its command line; in the app the same step is a key or a
#: button. (Longest first: one phrase may contain another.)
APP_WORDS = (
    (
        "(use --resume to continue it, or --overwrite to start again)",
        "(Retry offers Resume, Overwrite or Rename)",
    ),
    ("; use --overwrite to download it again", "; Retry downloads it again from the start"),
    (" (use --overwrite to replace it)", " (Retry offers Overwrite or Rename)"),
    ("; --resume continues it)", "; Retry continues it)"),
    ("is a folder (use ls)", "is a folder (List… or ctrl+l picks a file in it)"),
)


def in_app_words(message: str) -> str:
    """``message`` with command-line advice (``use --overwrite``) said as the app's steps."""
    for cli, app in APP_WORDS:
        message = message.replace(cli, app)
    return message


#: Advice to continue a partial file, which a retry the client makes by itself is doing.
RESUME_ADVICE = ("; --resume continues it)", ")")


def retry_words(message: str) -> str:
    """``message`` for a retry already on its way: no advice to press Retry for it."""
    return in_app_words(message.replace(*RESUME_ADVICE))
