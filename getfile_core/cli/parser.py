"""The ``getfile`` command's argparse parser: its flags, their types, its help formatter.

It is built on every run, so it is built lazily (a subcommand's flags are
added when that subcommand is chosen) and its formatter never makes
argparse import ``shutil``: a one-file ``get`` is meant to start about as
fast as a 20-line socket script (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from getfile_core import DEFAULT_PORT, __version__
from getfile_core.cli.checksum import add_checksum_flags
from getfile_core.cli.completion import SHELLS
from getfile_core.cli.exit_codes import epilog as _exit_codes_epilog
from getfile_core.cli.output import PROG
from getfile_core.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from typing import Any


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the width: it would import ``shutil`` (1.6 ms) to ask.

    argparse builds one of these for every ``add_argument`` (to check the
    metavar), so the import was on every command's path, help or not.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _help_width() if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def _help_width() -> int:
    """argparse's own choice: ``$COLUMNS``, else the terminal's width, else 80; less 2.

    (What ``shutil.get_terminal_size`` does, minus the import.)
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole ``getfile`` parser; ``lazy``: each subcommand's flags added only when chosen.

    ``main`` parses with a lazy one: a ``get`` never builds ``serve``'s and
    ``ls``'s flags (half of the parser's 1.2 ms, on every command's path).
    Anything that walks the parser (completion, tests) wants the whole one.
    """
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=PROG,
        description="Serve a folder, or download files from a getfile (or legacy getfile) server.",
        epilog="The book's form also works: getfile -mode server [-host H] [-port P] | "
        "getfile [-mode client] -file F [-host H] [-port P]\n\n" + _exit_codes_epilog(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"getfile {__version__}")
    parser.add_argument(
        "--completion",
        choices=SHELLS,
        metavar="SHELL",
        help="print a completion script for bash, zsh or fish (see the README)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Subcommands)
    assert isinstance(commands, _Subcommands)
    commands.add_lazily(
        "serve",
        _add_serve,
        help="serve one folder (read-only) to getfile and legacy clients",
        description="Serve DIR (default: the current folder), read-only, confined to it.",
    )
    commands.add_lazily(
        "get",
        _add_get,
        help="download files: getfile get getfile://HOST[:PORT]/PATH ...",
        description="Download each URL into -o DIR as its base name, verified and atomic.",
    )
    commands.add_lazily(
        "ls",
        _add_ls,
        add_help=False,
        help="list a remote folder: getfile ls getfile://HOST[:PORT]/DIR",
        description="List a folder under a getfile server's root (name, kind, size, mtime).",
    )
    if not lazy:
        commands.add_all()
    return parser


#: Subcommands whose positionals may stand between flags (several URLs).
INTERMIXED = frozenset({"get"})


class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose flags are added when one is chosen (or by ``add_all``), not before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def add_lazily(
        self,
        name: str,
        add_flags: Callable[[argparse.ArgumentParser], None],
        *,
        help: str,
        description: str,
        add_help: bool = True,
    ) -> None:
        """One subcommand, shaped as every other: no abbreviations, the exit codes as epilog."""
        self.add_parser(
            name,
            allow_abbrev=False,
            add_help=add_help,
            help=help,
            description=description,
            epilog=_exit_codes_epilog(),
            formatter_class=HelpFormatter,
        )
        self._pending[name] = add_flags

    def add_flags(self, name: str) -> None:
        """``name``'s flags, if not added yet (an unknown name: nothing)."""
        add_flags = self._pending.pop(name, None)
        if add_flags is not None:
            add_flags(self._name_parser_map[name])

    def add_all(self) -> None:
        for name in list(self._pending):
            self.add_flags(name)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name, *rest = values
        self.add_flags(name)  # the chosen subcommand (argparse refuses an unknown one)
        if name not in INTERMIXED:
            super().__call__(parser, namespace, values, option_string)
            return
        # ``get URL -o DIR URL2``: argparse's plain parse gives the URLs before the
        # first flag to ``urls`` and calls the rest unrecognized (exit 2); the
        # intermixed parse collects every positional wherever it stands.
        setattr(namespace, self.dest, name)
        found, extras = self._name_parser_map[name].parse_known_intermixed_args(rest)
        for key, value in vars(found).items():
            setattr(namespace, key, value)
        if extras:
            unrecognized = argparse._UNRECOGNIZED_ARGS_ATTR  # type: ignore[attr-defined]
            vars(namespace).setdefault(unrecognized, []).extend(extras)


def _add_serve(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("dir", nargs="?", default=".", help="folder to serve (default: .)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="port (default: 50001)"
    )
    _add_serve_limits(serve)
    security = serve.add_argument_group("access control")
    security.add_argument(
        "--token-file", metavar="F", help="require this shared secret (or set $GETFILE_TOKEN)"
    )
    security.add_argument("--tls-cert", metavar="F", help="serve TLS with this certificate (PEM)")
    security.add_argument("--tls-key", metavar="F", help="private key for --tls-cert (PEM)")
    security.add_argument(
        "--allow-hardlinks",
        action="store_true",
        help="serve files with several hard links (one may be a file outside DIR)",
    )
    serve.add_argument("-q", "--quiet", action="store_true", help="no access log")


def _add_serve_limits(serve: argparse.ArgumentParser) -> None:
    limits = serve.add_argument_group("limits")
    limits.add_argument(
        "--max-transfers",
        type=_positive_int,
        default=64,
        metavar="N",
        help="files sent at once; more get 'busy' (default: 64)",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive_int,
        default=2048,
        metavar="N",
        help="open connections at once (default: 2048)",
    )
    limits.add_argument(
        "--request-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds to send the request line (default: 10)",
    )
    limits.add_argument(
        "--stall-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds a client may accept no byte at all; slow readers are never cut (default: 30)",
    )
    limits.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds running transfers get after Ctrl-C (default: 10)",
    )
    limits.add_argument(
        "--limit-rate",
        metavar="RATE",
        help="cap each connection at RATE bytes/s (500K, 2M, 1.5G: powers of 1024)",
    )


def _add_get(get: argparse.ArgumentParser) -> None:
    get.add_argument("urls", nargs="+", metavar="URL", help="getfile://HOST[:PORT]/PATH")
    get.add_argument("-o", "--output", default=".", metavar="DIR", help="destination (default: .)")
    get.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=4,
        metavar="N",
        help="downloads at once (default: 4)",
    )
    get.add_argument(
        "--resume", action="store_true", help="continue NAME.getfile-part where it stopped"
    )
    get.add_argument("--overwrite", action="store_true", help="replace an existing NAME")
    dialect = get.add_mutually_exclusive_group()
    dialect.add_argument(
        "--legacy", action="store_true", help="speak only the book's protocol (no size, no digest)"
    )
    dialect.add_argument(
        "--no-legacy",
        action="store_true",
        help="never fall back to the book's protocol (refuse unverifiable downloads)",
    )
    get.add_argument(
        "--retries",
        type=_count,
        default=10,
        metavar="N",
        help="retry a lost connection N times, resuming, with backoff 1, 2, 4 … 30 s "
        "(default: 10; 0: never)",
    )
    get.add_argument(
        "--limit-rate",
        metavar="RATE",
        help="cap all downloads together at RATE bytes/s (500K, 2M, 1.5G: powers of 1024)",
    )
    add_checksum_flags(get)
    _add_segment_flags(get)
    _add_client_flags(get)
    get.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    _add_get_tree(get)


def _add_get_tree(get: argparse.ArgumentParser) -> None:
    """``get -r``: a whole folder (issue 12)."""
    tree = get.add_argument_group("folders (-r)")
    tree.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="download the folder URL as OUT/<its name>/... (re-running continues it)",
    )
    tree.add_argument(
        "--include",
        dest="rules",
        action=_Rule,
        include=True,
        metavar="GLOB",
        help="fetch paths matching GLOB (rsync-style *, **, ?; first matching rule wins)",
    )
    tree.add_argument(
        "--exclude",
        dest="rules",
        action=_Rule,
        include=False,
        metavar="GLOB",
        help="skip paths matching GLOB (a trailing / matches folders only)",
    )
    tree.add_argument(
        "--max-entries",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="refuse a tree of more than N entries (default: 1000000)",
    )
    tree.add_argument(
        "--max-depth",
        type=_positive_int,
        default=64,
        metavar="N",
        help="refuse folders more than N levels deep (default: 64)",
    )
    tree.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


class _Rule(argparse.Action):
    """--include and --exclude into one list, in command-line order (the order decides)."""

    def __init__(self, *args: object, include: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.include = include

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        rules = list(getattr(namespace, self.dest, None) or [])
        rules.append((self.include, values))
        setattr(namespace, self.dest, rules)


def _add_segment_flags(get: argparse.ArgumentParser) -> None:
    """``--segments`` and ``--mirror`` (issue 13): one file over several connections."""
    more = get.add_argument_group("several connections per file")
    more.add_argument(
        "--segments",
        type=_segment_count,
        default=None,
        metavar="N",
        help="fetch each file as N byte ranges over N connections, verified as one file "
        "(1-32; files under 4 MiB use one; default: 1, and --resume of a segmented part "
        "goes on over as many as it was started with)",
    )
    more.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="another server with the same file (repeatable; one URL only): ranges are "
        "spread over all of them, a mirror with a different file is not used",
    )


def _segment_count(text: str) -> int:
    count = _positive_int(text)
    if count > 32:
        raise argparse.ArgumentTypeError(f"at most 32 segments, not {count}")
    return count


def _add_ls(ls: argparse.ArgumentParser) -> None:
    ls.add_argument("--help", action="help", help="show this help message and exit")
    ls.add_argument("url", metavar="URL", help="getfile://HOST[:PORT]/DIR")
    ls.add_argument(
        "--max",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="stop after N entries (default: 10000)",
    )
    ls.add_argument("-r", "--recursive", action="store_true", help="list every folder below")
    ls.add_argument("-l", "--long", action="store_true", help="times to the second")
    ls.add_argument("-h", "--human", action="store_true", help="sizes as 4.00 KiB, 1.21 MiB")
    ls.add_argument("--json", action="store_true", help="one JSON object per entry")
    ls.add_argument(
        "--max-depth", type=_positive_int, default=64, metavar="N", help=argparse.SUPPRESS
    )
    _add_client_flags(ls)


def _add_client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="give up after S seconds without data (default: 30)",
    )
    parser.add_argument(
        "--token-file",
        metavar="F",
        help="shared secret for a server that needs one (or $GETFILE_TOKEN)",
    )
    tls = parser.add_argument_group("TLS (getfiles:// URLs)")
    tls.add_argument("--cafile", metavar="F", help="trust this CA bundle instead of the system's")
    tls.add_argument(
        "--pin", metavar="SHA256", help="accept only the certificate with this SHA-256"
    )
    tls.add_argument("--insecure", action="store_true", help="do not verify the certificate")


def port_number(text: str) -> int:
    """argparse type for a port to listen on (0 = any free one)."""
    from getfile_core.address import parse_port  # dataclasses: 10 ms that --version need not pay

    try:
        return parse_port(text, allow_any=True)
    except UsageError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value < least:
        floor = "0 or more" if least == 0 else f"at least {least}"
        raise argparse.ArgumentTypeError(f"must be {floor}: {text}")
    return value


def _count(text: str) -> int:
    return _whole_number(text, 0)


def limit_rate(args: argparse.Namespace) -> float | None:
    """``--limit-rate`` in bytes/s, or ``None``; a bad value is one line, exit 2.

    Checked after parsing rather than as an argparse ``type``, whose errors
    print the whole usage first: the issue asks for one clear line here.
    """
    if args.limit_rate is None:
        return None
    from getfile_core.units import parse_rate

    try:
        return parse_rate(args.limit_rate)
    except ValueError as error:
        raise UsageError(f"--limit-rate: {error}") from None


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"seconds must be in (0, 86400]: {text}")
    return value
