"""``getfile serve`` and ``getfile -mode server``: run a FileServer until a signal."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from getfile_core.address import format_address
from getfile_core.cli.exit_codes import SUCCESS
from getfile_core.cli.options import load_token
from getfile_core.cli.output import error_line, print_access, print_book_access
from getfile_core.errors import UsageError
from getfile_core.safe_text import printable
from getfile_core.server import FileServer, ServerLimits
from getfile_core.server.limits import raise_fd_limit


def run_serve(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    ssl_context = None
    if args.tls_cert:
        from getfile_core.tls import server_context

        ssl_context = server_context(args.tls_cert, args.tls_key)
    token = load_token(args.token_file)
    limits = ServerLimits(
        max_transfers=args.max_transfers,
        max_connections=args.max_connections,
        request_timeout=args.request_timeout,
        stall_timeout=args.stall_timeout,
        grace=args.grace,
        rate=args.rate,
    )
    return _serve(
        args.dir,
        args.host,
        args.port,
        limits=limits,
        token=token,
        ssl_context=ssl_context,
        on_access=None if args.quiet else print_access,
        allow_hardlinks=args.allow_hardlinks,
    )


def run_book_server(host: str, port: int) -> int:
    """The book's server: serves the current folder; host 'localhost' (or '') binds everywhere."""
    bind = "" if host in ("localhost", "") else host
    return _serve(
        ".",
        bind,
        port,
        limits=ServerLimits(),
        token=None,
        ssl_context=None,
        on_access=print_book_access,
    )


def _serve(  # type: ignore[no-untyped-def]
    folder, host, port, *, limits, token, ssl_context, on_access, allow_hardlinks=False
) -> int:
    if not os.path.isdir(folder):
        raise UsageError(f"not a folder: {printable(folder)}")
    raise_fd_limit(limits)
    server = FileServer(
        folder,
        host,
        port,
        limits=limits,
        token=token,
        ssl_context=ssl_context,
        on_access=on_access,
        allow_hardlinks=allow_hardlinks,
    )
    try:
        asyncio.run(_run_until_signal(server))
    except OSError as error:
        where = format_address(host or "0.0.0.0", port)
        raise UsageError(f"cannot listen on {where}: {error.strerror or error}") from None
    return SUCCESS


async def _run_until_signal(server: FileServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    scheme = "getfiles" if server.ssl_context else "getfile"
    for host, port in server.addresses:
        everywhere = " (all interfaces)" if host in ("0.0.0.0", "::") else ""
        error_line(
            f"serving {server.root.path} on {scheme}://{format_address(host, port)}/{everywhere}"
            f"{' with a token' if server.token else ''}; Ctrl-C stops"
        )
    await stop.wait()
    error_line(
        f"stopping; {server.active_transfers} transfer(s) get "
        f"{server.limits.grace:g} s to finish (Ctrl-C again cuts them)"
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.cut)
    await server.stop()
