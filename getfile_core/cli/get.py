"""``getfile get``, ``getfile ls`` and the book's client form.

asyncio (and the client API built on it) is imported only by the paths that
need an event loop: a single download with no progress display, the usual
case in scripts, runs the blocking transfer directly, which saves the 35 ms
that importing asyncio costs (a third of a small fetch; docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from getfile_core import auth
from getfile_core.address import Target, parse_url
from getfile_core.client.transfer import FetchResult, Options
from getfile_core.errors import GetfileError, UsageError
from getfile_core.units import human_size


def client_options(args: argparse.Namespace, *, legacy: bool | None = None) -> Options:
    try:
        token = auth.load_token(args.token_file)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read token: {error}") from None
    ssl_context = None
    if args.cafile or args.pin or args.insecure:
        from getfile_core.tls import client_context

        ssl_context = client_context(args.cafile, pin=args.pin, insecure=args.insecure)
    return Options(
        timeout=args.timeout,
        legacy=legacy,
        token=token,
        ssl_context=ssl_context,
        pin_sha256=args.pin,
    )


def run_get(args: argparse.Namespace) -> int:
    targets = [parse_url(url) for url in args.urls]
    if not os.path.isdir(args.output):
        raise UsageError(f"destination folder does not exist: {args.output}")
    legacy = True if args.legacy else False if args.no_legacy else None
    options = client_options(args, legacy=legacy)
    show = not args.quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    if len(targets) == 1 and not show:
        return _get_one_directly(targets[0], args, options)
    import asyncio

    return asyncio.run(_get_all(targets, args, options, show))


def _get_one_directly(target: Target, args: argparse.Namespace, options: Options) -> int:
    """One file, nothing to display: the blocking transfer in this thread, no event loop.

    Ctrl-C raises KeyboardInterrupt out of the blocked receive; the transfer
    keeps the ``.part`` on the way out, as a cancelled ``fetch`` does.
    """
    from getfile_core.client.destination import Destination
    from getfile_core.client.transfer import TransferState, download

    try:
        destination = Destination.for_remote(
            args.output, target.path, overwrite=args.overwrite, resume=args.resume
        )
        download(target, destination, options, TransferState())
    except GetfileError as error:
        print(f"getfile: {target.display_path}: {error}", file=sys.stderr)
        return error.exit_code
    return 0


async def _get_all(
    targets: list[Target], args: argparse.Namespace, options: Options, show: bool
) -> int:
    import asyncio

    from getfile_core.client.api import fetch

    display = None
    if show:
        from getfile_core.cli.progress import ProgressDisplay

        display = ProgressDisplay()
    slots = asyncio.Semaphore(args.jobs)
    began = time.monotonic()

    async def one(target: Target) -> FetchResult | GetfileError:
        async with slots:
            callback = display.add(target) if display else None
            try:
                result = await fetch(
                    target,
                    args.output,
                    overwrite=args.overwrite,
                    resume=args.resume,
                    options=options,
                    on_progress=callback,
                )
            except GetfileError as error:
                if display:
                    display.finish(target, None)
                print(f"getfile: {target.display_path}: {error}", file=sys.stderr)
                return error
            if display:
                display.finish(target, result)
            if result.legacy and show:
                # The book's protocol has no size or digest: a cut looks like the end.
                print(
                    f"getfile: {target.display_path}: from a legacy server, so size and "
                    "integrity are not verified (--no-legacy refuses such downloads)",
                    file=sys.stderr,
                )
            return result

    tasks = [asyncio.ensure_future(one(t)) for t in targets]
    try:
        if display:
            with display:
                outcomes = await asyncio.gather(*tasks)
        else:
            outcomes = await asyncio.gather(*tasks)
    except asyncio.CancelledError:  # pragma: no cover - Ctrl-C path is KeyboardInterrupt
        raise
    failures = [o for o in outcomes if isinstance(o, GetfileError)]
    results = [o for o in outcomes if isinstance(o, FetchResult)]
    if show:
        total = sum(r.size - r.resumed_from for r in results)
        seconds = time.monotonic() - began
        rate = total / seconds if seconds > 0 else 0
        failed = f"; {len(failures)} failed" if failures else ""
        print(
            f"getfile: {len(results)} file(s), {human_size(total)} in {seconds:.2f} s "
            f"({human_size(rate)}/s){failed}",
            file=sys.stderr,
        )
    return failures[0].exit_code if failures else 0


def run_ls(args: argparse.Namespace) -> int:
    import asyncio

    from getfile_core.client.api import list_folder

    target = parse_url(args.url)
    options = client_options(args, legacy=False)
    entries, cut = asyncio.run(list_folder(target, options=options, max_entries=args.max))
    for entry in entries:
        name = entry.name.decode("utf-8", "backslashreplace")
        name = "".join(ch if ch.isprintable() else "?" for ch in name)
        if entry.kind == "dir":
            name += "/"
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime_ns / 1e9))
        size = str(entry.size) if entry.kind == "file" else "-"
        print(f"{entry.kind:<5} {size:>12}  {stamp}  {name}")
    if cut:
        print(f"getfile: listing cut at {args.max} entries (--max raises it)", file=sys.stderr)
    return 0


def run_book_client(path: str, host: str, port: int) -> int:
    import asyncio

    from getfile_core.client.api import fetch

    target = Target(host=host, port=port, path=os.fsencode(path))
    asyncio.run(fetch(target, ".", options=Options()))
    print(f"Client got {path} at {time.ctime()}")
    return 0


__all__ = ["run_book_client", "run_get", "run_ls"]
