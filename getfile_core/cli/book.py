"""The book's command line, as forgiving as the book's program.

``getfile.py`` read its argv as single-dash words taken in pairs into a
dict: a trailing word with no value was dropped, an unknown flag was stored
and never looked at, any ``-mode`` other than ``server`` meant client, and
``-host ''`` (or ``-host`` with nothing after it, which the book's GUI sends
when its Server field is empty) meant this machine. Scripts and the book's
GUI frontends depend on that, so the same argv is accepted here, with a
warning line on stderr where the user probably meant something else. What
the book turned into a crash or a silent misdeed (``-port abc``, ``-mode
sideways``, a client with no ``-file``) is a one-line error, exit 2.

One addition: ``-overwrite yes``. The book replaced an existing file
silently; getfile never does that unasked, and this is how the book's form
asks.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from getfile_core import DEFAULT_PORT
from getfile_core.cli.output import warning_line
from getfile_core.errors import UsageError

BOOK_FLAGS = ("-mode", "-file", "-host", "-port")
#: Ours, in the book's style: the book's own flags never said how to keep a file.
EXTRA_FLAGS = ("-overwrite",)
_KNOWN = (*BOOK_FLAGS, *EXTRA_FLAGS)
_YES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False}
_PAIRS = "the book's form takes flags in pairs: -mode M -file F -host H -port P"


def looks_like_book_argv(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is the book's form: it starts with one of its single-dash flags."""
    return bool(argv) and argv[0] in _KNOWN


def parse_book_argv(argv: Sequence[str]) -> argparse.Namespace:
    """``-mode server|client -file F -host H -port P [-overwrite yes]``, read as the book did."""
    from getfile_core.address import check_host, parse_port  # not on --version's path

    values = dict(zip(argv[::2], argv[1::2], strict=False))
    notes: list[str] = []
    dangling = argv[-1] if len(argv) % 2 else None
    if dangling is not None and dangling != "-host":  # a bare -host is the GUI's "local"
        notes.append(f"{dangling} has no value ({_PAIRS})")
    unknown = [flag for flag in values if flag not in _KNOWN]
    notes += [
        f"unknown flag {flag} ignored (the book's flags: {', '.join(_KNOWN)})" for flag in unknown
    ]

    mode = values.get("-mode", "client").lower()
    if mode not in ("client", "server"):
        raise UsageError(f"-mode is client or server, not {values['-mode']!r}")
    port_text = values.get("-port", str(DEFAULT_PORT))
    try:
        port = parse_port(port_text)
    except UsageError as error:
        raise UsageError(f"-port takes a number from 1 to 65535: {error}") from None
    overwrite_text = values.get("-overwrite", "no").lower()
    if overwrite_text not in _YES:
        raise UsageError(f"-overwrite takes yes or no, not {values['-overwrite']!r}")
    if mode == "client" and not values.get("-file"):
        raise UsageError("client mode needs -file F" + "".join(f"; {note}" for note in notes))
    for note in notes:
        warning_line(note)

    host = values.get("-host", "localhost")
    if mode == "client":
        # The book's client connected to '' as to this machine; say so plainly.
        host = check_host(host or "localhost")
    return argparse.Namespace(
        mode=mode, file=values.get("-file"), host=host, port=port, overwrite=_YES[overwrite_text]
    )


def run_book(book: argparse.Namespace) -> int:
    if book.mode == "server":
        from getfile_core.cli.serve import run_book_server

        return run_book_server(book.host, book.port)
    from getfile_core.cli.get import run_book_client

    return run_book_client(book.file, book.host, book.port, overwrite=book.overwrite)
