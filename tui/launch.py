"""The command line of ``getfile-tui``: what the form and the server pane start with, and
``--web``, which serves the app to a browser instead of drawing it here."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from getfile_core import DEFAULT_PORT, UsageError, __version__, parse_url


@dataclass(frozen=True)
class Launch:
    host: str = ""
    port: str = ""
    file: str = ""
    dest: str = ""
    serve: str | None = None
    serve_host: str = "127.0.0.1"
    serve_port: int = 0
    #: ``--dest`` was given (else settings' ``destination`` may choose the folder).
    dest_given: bool = False
    #: ``--web``: serve the app to a browser on (web_host, web_port) instead of the terminal.
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    #: The arguments a browser session's app starts with (``--web*`` taken out).
    app_argv: tuple[str, ...] = ()


def port_number(text: str) -> int:
    """argparse type for a TCP port (0 lets the system pick one, where that makes sense)."""
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="getfile-tui",
        description="Download files from getfile servers (and the book's), and serve a folder.",
        epilog="Keys: Enter in the form downloads; ctrl+p lists every command; ctrl+q quits.",
    )
    parser.add_argument("--version", action="version", version=f"getfile-tui {__version__}")
    parser.add_argument(
        "--web",
        action="store_true",
        help="serve the app to a web browser (textual-serve) instead of this terminal",
    )
    parser.add_argument(
        "--web-host", default="127.0.0.1", metavar="H", help="address --web binds (127.0.0.1)"
    )
    parser.add_argument(
        "--web-port", type=port_number, default=8000, metavar="P", help="its port (8000)"
    )
    parser.add_argument(
        "--completion",
        choices=SHELLS,
        metavar="SHELL",
        help="print a completion script for bash, zsh or fish and exit",
    )
    parser.add_argument("url", nargs="?", help="getfile://HOST[:PORT]/PATH to fill the form with")
    parser.add_argument("--host", help="server to download from")
    parser.add_argument("--port", type=port_number, help=f"its port (default {DEFAULT_PORT})")
    parser.add_argument("--dest", metavar="DIR", help="folder to save into (default: .)")
    parser.add_argument("--serve", metavar="DIR", help="start the local server on DIR at once")
    parser.add_argument(
        "--serve-host", default="127.0.0.1", metavar="H", help="address it binds (127.0.0.1)"
    )
    parser.add_argument(
        "--serve-port",
        type=port_number,
        default=0,
        metavar="P",
        help="its port (default: any free)",
    )
    return parser


SHELLS = ("bash", "zsh", "fish")


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The script for ``shell`` from the parser itself (shtab), folders completed as such.

    shtab is imported only here: it costs ~26 ms, which an ordinary start need not pay.
    """
    import shtab

    for action in parser._actions:
        if action.dest in ("dest", "serve"):
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


def parse_args(argv: Sequence[str] | None = None) -> Launch:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.completion:
        sys.stdout.write(completion_script(parser, args.completion))
        raise SystemExit(0)
    host, port, file = "", "", ""
    if args.url:
        try:
            target = parse_url(args.url)
        except UsageError as error:
            parser.error(error.message)
        # The raw path, undecodable bytes kept (surrogateescape): the form shows it readably.
        host, port, file = target.host, str(target.port), os.fsdecode(target.path)
    if args.host:
        host = args.host
    if args.port:
        port = str(args.port)
    if args.serve is not None and not os.path.isdir(args.serve):
        parser.error(f"--serve: not a folder: {args.serve}")
    if args.dest is not None and not os.path.isdir(args.dest):
        parser.error(f"--dest: not a folder: {args.dest}")
    if host and not port:
        port = str(DEFAULT_PORT)
    return Launch(
        host=host,
        port=port,
        file=file,
        dest=args.dest if args.dest is not None else os.getcwd(),
        serve=args.serve,
        serve_host=args.serve_host,
        serve_port=args.serve_port,
        dest_given=args.dest is not None,
        web=args.web,
        web_host=args.web_host,
        web_port=args.web_port,
        app_argv=tuple(without_web_flags(list(argv if argv is not None else sys.argv[1:]))),
    )


def without_web_flags(argv: list[str]) -> list[str]:
    """``argv`` minus ``--web``, ``--web-host H`` and ``--web-port P`` (either spelling)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--web" or arg.startswith(("--web-host=", "--web-port=")):
            continue
        elif arg in ("--web-host", "--web-port"):
            skip = True
        else:
            kept.append(arg)
    return kept


def serve_web(launch: Launch) -> int:
    """``--web``: textual-serve runs one app per browser tab, with the same arguments."""
    import shlex

    from textual_serve.server import Server

    command = shlex.join([sys.executable, "-m", "tui", *launch.app_argv])
    Server(command, host=launch.web_host, port=launch.web_port, title="getfile").serve()
    return 0
