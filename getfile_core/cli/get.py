"""``getfile get``, ``getfile ls`` and the book's client form.

asyncio (and the client API built on it) is imported only by the paths that
need an event loop: a single download with no progress display, the usual
case in scripts, runs the blocking transfer directly, which saves the 35 ms
that importing asyncio costs (a third of a small fetch; docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import time

from getfile_core.address import Target, check_host, parse_url
from getfile_core.cli.checksum import published_checksums, with_checksum
from getfile_core.cli.exit_codes import SUCCESS, exit_code_for
from getfile_core.cli.options import check_output, client_options
from getfile_core.cli.output import error_line, retry_text, shows_progress
from getfile_core.client import FetchResult, Options
from getfile_core.errors import GetfileError, LocalFileError, UsageError
from getfile_core.safe_text import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from getfile_core.cli.progress import ProgressDisplay
    from getfile_core.client import Progress, RetryNotice


def run_get(args: argparse.Namespace) -> int:
    targets = [parse_url(url) for url in args.urls]
    published_checksums(args, targets)
    check_output(args.output)
    legacy = True if args.legacy else False if args.no_legacy else None
    options = client_options(args, legacy=legacy, retries=args.retries, rate=args.rate)
    options = _segment_options(args, targets, options)
    show = shows_progress(args.quiet)
    if len(targets) == 1 and not show:
        return _get_one_directly(targets[0], args, options)
    import asyncio

    return asyncio.run(_get_all(targets, args, options, show))


def _segment_options(args: argparse.Namespace, targets: list[Target], options: Options) -> Options:
    """``--segments`` and ``--mirror`` into the options (a mirror is for one URL only)."""
    if args.mirror and len(targets) != 1:
        raise UsageError("--mirror needs exactly one URL (the same file from other servers)")
    if args.mirror and args.legacy:
        raise UsageError("--mirror needs getfile servers (not --legacy)")
    mirrors = tuple(parse_url(url) for url in args.mirror)
    # Without --segments, a segmented part resumes on the connections its record names.
    segments = 1 if args.segments is None else args.segments
    options = options.replace(
        segments=segments, resume_connections=args.segments is None, mirrors=mirrors
    )
    if segments > 1:
        from getfile_core.client.known import default_path

        options = options.replace(known_servers=default_path())
    return options


def _remarks(options: Options, target: Target, quiet: bool) -> Options:
    """The options for one URL: a mirror dropped, or ranges refused, is one line about it."""
    if quiet:
        return options
    return options.replace(on_remark=lambda line: error_line(line, subject=target.path))


def _retry_lines(target: Target, quiet: bool) -> Callable[[RetryNotice], None] | None:
    """A line per retry about ``target`` (``None`` with ``-q``)."""
    if quiet:
        return None
    return lambda notice: error_line(retry_text(notice), subject=target.path)


def _get_one_directly(target: Target, args: argparse.Namespace, options: Options) -> int:
    """One file, nothing to display: the blocking transfer in this thread, no event loop.

    Ctrl-C raises KeyboardInterrupt out of the blocked receive; the transfer
    keeps the ``.part`` on the way out, as a cancelled ``fetch`` does. Retries
    are announced even off a terminal (unless ``-q``): a log that shows a
    download took five connections explains why it took so long.
    """
    from getfile_core.client import Destination, TransferState, download

    options = with_checksum(options, args, target)
    try:
        destination = Destination.for_remote(
            args.output, target.path, overwrite=args.overwrite, resume=args.resume
        )
        download(
            target,
            destination,
            _remarks(options, target, args.quiet),
            TransferState(),
            on_retry=_retry_lines(target, args.quiet),
        )
    except GetfileError as error:
        error_line(error, subject=target.path)
        return exit_code_for(error)
    return SUCCESS


async def _get_one(
    target: Target, args: argparse.Namespace, options: Options, display: ProgressDisplay | None
) -> FetchResult | GetfileError:
    """One download of several: its bar, a line per retry (unless -q), a line if it fails."""
    from getfile_core.client import fetch

    options = with_checksum(options, args, target)
    try:
        result = await fetch(
            target,
            args.output,
            overwrite=args.overwrite,
            resume=args.resume,
            options=_remarks(options, target, args.quiet),
            on_progress=display.add(target) if display else None,
            on_retry=_retry_lines(target, args.quiet),
        )
    except GetfileError as error:
        if display:
            display.finish(target, None)
        error_line(error, subject=target.path)
        return error
    if display:
        display.finish(target, result)
        if result.legacy and result.checksum is None:
            # The book's protocol has no size or digest: a cut looks like the end.
            error_line(
                "from a legacy server, so size and integrity are not verified "
                "(--no-legacy refuses such downloads)",
                subject=target.path,
            )
    return result


async def _get_all(
    targets: list[Target], args: argparse.Namespace, options: Options, show: bool
) -> int:
    import asyncio

    display = None
    if show:
        from getfile_core.cli.progress import ProgressDisplay

        display = ProgressDisplay()
    slots = asyncio.Semaphore(args.jobs)
    began = time.monotonic()

    async def one(target: Target) -> FetchResult | GetfileError:
        async with slots:
            return await _get_one(target, args, options, display)

    tasks = [asyncio.ensure_future(one(t)) for t in targets]
    if display:
        with display:
            outcomes = await asyncio.gather(*tasks)
    else:
        outcomes = await asyncio.gather(*tasks)
    failures = [o for o in outcomes if isinstance(o, GetfileError)]
    results = [o for o in outcomes if isinstance(o, FetchResult)]
    if show and (results or len(outcomes) > 1):  # one URL that failed: its line said it all
        from getfile_core.units import human_rate, human_size  # a regex: not on one file's path

        total = sum(r.size - r.resumed_from for r in results)
        seconds = time.monotonic() - began
        rate = total / seconds if seconds > 0 else 0
        failed = f"; {len(failures)} failed" if failures else ""
        error_line(
            f"{len(results)} file(s), {human_size(total)} in {seconds:.2f} s "
            f"({human_rate(rate)}){failed}"
        )
    return exit_code_for(failures[0]) if failures else SUCCESS


def run_ls(args: argparse.Namespace) -> int:
    import asyncio

    from getfile_core.client import list_folder

    target = parse_url(args.url)
    options = client_options(args, legacy=False)
    try:
        entries, cut = asyncio.run(list_folder(target, options=options, max_entries=args.max))
    except GetfileError as error:  # which folder: "getfile: docs/a.txt: not a folder (420 …)"
        error_line(error, subject=target.display_path or "/")
        return exit_code_for(error)
    if len(entries) > args.max:
        # The listing arrives in pages; --max is a promise about what is printed.
        entries, cut = entries[: args.max], True
    for entry in entries:
        name = printable(entry.name) + ("/" if entry.kind == "dir" else "")
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime_ns / 1e9))
        size = str(entry.size) if entry.kind == "file" else "-"
        print(f"{printable(entry.kind):<5} {size:>12}  {stamp}  {name}")
    if cut:
        error_line(f"listing cut at {args.max} entries (--max raises it)")
    return SUCCESS


def run_book_client(path: str, host: str, port: int, *, overwrite: bool = False) -> int:
    """The book's client: save the file's base name in the current folder, then say so.

    The book replaced an existing file silently; getfile refuses, and says how
    to ask in the book's own form (``-overwrite yes``), not with a flag that
    form does not take. Running the same command again continues a download
    that was cut (its ``.part``; from a legacy server, which cannot resume,
    it starts again), since the form has no ``--resume`` to ask for it (it
    used to say "use --resume", which the form refuses). On a terminal the
    download shows its bar, as ``get`` does: the book's program showed
    nothing, for minutes on a slow link.
    """
    import asyncio

    from getfile_core.client import safe_local_name

    target = Target(host=check_host(host), port=port, path=os.fsencode(path))
    try:
        asyncio.run(_book_fetch(target, overwrite=overwrite))
    except LocalFileError:
        name = safe_local_name(target.path)
        if overwrite or not os.path.lexists(name):
            raise
        raise LocalFileError(
            f"{name} exists here; add -overwrite yes to replace it, as the book's program did"
        ) from None
    print(f"Client got {printable(path)} at {time.ctime()}")
    return SUCCESS


async def _book_fetch(target: Target, *, overwrite: bool) -> None:
    """One download into ``.``, with a bar on a terminal."""
    if not shows_progress(quiet=False):
        await _continue_or_start(target, overwrite, None)
        return
    from getfile_core.cli.progress import ProgressDisplay

    display = ProgressDisplay()
    with display:
        result = None
        try:
            result = await _continue_or_start(target, overwrite, display.add(target))
        finally:
            display.finish(target, result)


async def _continue_or_start(
    target: Target, overwrite: bool, on_progress: Callable[[Progress], None] | None
) -> FetchResult:
    """Continue a ``.part`` left here, or start; a legacy server's ``.part`` starts again."""
    from getfile_core.client import fetch, safe_local_name
    from getfile_core.errors import LegacyServerError

    def attempt(overwrite: bool, resume: bool) -> Awaitable[FetchResult]:
        return fetch(
            target,
            ".",
            overwrite=overwrite,
            resume=resume,
            options=Options(),
            on_progress=on_progress,
        )

    try:
        return await attempt(overwrite, resume=True)
    except LegacyServerError as error:
        if "cannot resume" not in str(error) or os.path.lexists(safe_local_name(target.path)):
            raise
        # The book's server sends whole files only: start again, as the book did.
        return await attempt(True, resume=False)


__all__ = ["run_book_client", "run_get", "run_ls"]
