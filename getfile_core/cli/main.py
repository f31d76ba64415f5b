"""The ``getfile`` command: ``serve``, ``get``, ``ls``, and the book's own argv form.

Start-up time is a feature (``getfile --version`` should cost about as much
as importing asyncio, a one-file ``get`` about as much as a 20-line socket
script), so only argparse is imported up front; the server, client, rich
and ssl are imported by the command that needs them, and the parser
(``cli.parser``) adds a subcommand's flags only when it is chosen.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from getfile_core.cli.book import looks_like_book_argv, parse_book_argv, run_book
from getfile_core.cli.exit_codes import BROKEN_PIPE, CTRL_C, SUCCESS, USAGE, exit_code_for
from getfile_core.cli.output import error_line
from getfile_core.cli.parser import build_parser, limit_rate, port_number
from getfile_core.errors import GetfileError

__all__ = ["build_parser", "limit_rate", "main", "port_number"]


# ---------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the process's own command line: the process ends when this returns
        _exit_without_collecting()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if looks_like_book_argv(argv):
            return run_book(parse_book_argv(argv))
        parser = build_parser(lazy=True)
        args = parser.parse_args(argv)
        if args.completion:
            from getfile_core.cli.completion import completion_script

            print(completion_script(build_parser(), args.completion), end="")
            return SUCCESS
        if args.command is None:
            parser.print_help(sys.stderr)
            return USAGE
        if args.command in ("get", "serve"):
            args.rate = limit_rate(args)
        if args.command == "serve":
            from getfile_core.cli.serve import run_serve

            return run_serve(args)
        if args.command == "get" and args.recursive:
            from getfile_core.cli.checksum import refuse_with_tree
            from getfile_core.cli.tree import run_get_tree

            refuse_with_tree(args)
            return run_get_tree(args)
        if args.command == "ls" and (args.recursive or args.long or args.human or args.json):
            from getfile_core.cli.tree import run_ls_tree

            return run_ls_tree(args)
        from getfile_core.cli.get import run_get, run_ls

        return run_get(args) if args.command == "get" else run_ls(args)
    except GetfileError as error:
        error_line(error)
        return exit_code_for(error)
    except KeyboardInterrupt:
        error_line("stopped")
        return CTRL_C
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """stdout's reader left (``getfile ls … | head``): no traceback, no line, exit 141.

    What is still buffered for stdout would raise again when Python flushes it at
    exit ("Exception ignored … BrokenPipeError"), so stdout now writes to /dev/null.
    """
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE


def _exit_without_collecting() -> None:
    """At exit, spare the garbage collector's last passes over every object still alive.

    The interpreter's shutdown collects all generations (several times) before
    tearing the modules down: 4.5 ms of a 1 MiB ``getfile get`` that takes 37
    ms in all (docs/performance.md), for memory the kernel takes back anyway.
    ``gc.freeze`` in an ``atexit`` hook moves everything to the permanent
    generation, which those passes skip; ``atexit`` hooks, flushing and module
    teardown still happen as before. Only for the process's own command:
    ``main(argv)`` called by a test or a script changes nothing.
    """
    import atexit
    import gc

    atexit.register(gc.freeze)
