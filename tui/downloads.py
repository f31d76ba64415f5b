"""The download controller: from a request to a transfer's end, with no screen in sight.

A plain class the app owns. It asks the user through injected ``Prompts``
(overwrite? token?), runs its work through an injected ``spawn`` (the app's
workers; a test's tasks), talks to the network through injected ``fetch``
and ``list_folder`` (``getfile_core``'s by default), and reports only by
posting messages (``tui.messages``). So its rules (conflicts, retry, token,
legacy) are tested with fakes for all four, without a socket or a screen.

A download reads one way: form → ``start`` → conflict check (and a prompt)
→ ``fetch`` → ``Transfer``'s own methods → a message → the row and the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from textual.message import Message

from getfile_core import (
    PART_SUFFIX,
    ConnectError,
    FetchResult,
    GetfileError,
    LegacyServerError,
    Options,
    Progress,
    RetryNotice,
    Target,
    UnauthorizedError,
    UnsafeName,
    fetch,
    list_folder,
    safe_local_name,
)
from tui import format as fmt
from tui.limits import BothLimits, RateLimit, describe_limit
from tui.messages import LogLine, TransferAdded, TransferChanged, TransferProgress
from tui.text import in_app_words
from tui.transfers import (
    Choice,
    Conflict,
    Plan,
    State,
    Transfer,
    find_conflict,
    plan_for,
    plan_for_retry,
)

#: Seconds between progress snapshots: smooth enough to watch, cheap over SSH.
PROGRESS_INTERVAL = 0.25
#: How often a refused token may be asked for again before the download fails.
TOKEN_ATTEMPTS = 3
#: Bound on asking a server whether it can resume (a listing), before the dialog opens.
PROBE_TIMEOUT = 5.0


class Prompts(Protocol):
    """The questions only the user can answer (the app shows dialogs; tests answer directly)."""

    async def choose(self, conflict: Conflict, *, can_resume: bool) -> Choice: ...

    async def token(self, where: str, *, wrong: bool) -> bytes | None: ...


Spawn = Callable[[Coroutine[Any, Any, None], str], object]


class DownloadController:
    """Downloads, cancel and retry: the rules, the transfers, and nothing drawn."""

    def __init__(
        self,
        prompts: Prompts,
        post: Callable[[Message], object],
        spawn: Spawn,
        *,
        fetcher: Callable[..., Coroutine[Any, Any, FetchResult]] = fetch,
        lister: Callable[..., Coroutine[Any, Any, object]] = list_folder,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prompts = prompts
        self.post = post
        self.spawn = spawn
        self.fetcher = fetcher
        self.lister = lister
        self.clock = clock
        #: One limit every download shares (``Options.rate_limit``); changeable while they run.
        self.rate_limit = RateLimit()
        self.transfers: dict[int, Transfer] = {}
        self.tokens: dict[str, bytes] = {}  # "host:port" -> token typed in this session
        self.legacy_servers: set[str] = set()
        self._tasks: dict[int, asyncio.Task[object]] = {}
        #: Attempts per download after a dropped link (``Options.retries``; settings).
        self.retries = Options().retries

    # ------------------------------------------------------------ queries

    @property
    def any_active(self) -> bool:
        return any(t.active for t in self.transfers.values())

    @property
    def any_retryable(self) -> bool:
        return any(t.can_retry or t.state is State.RETRYING for t in self.transfers.values())

    def pick(
        self, preferred: Transfer | None, wanted: Callable[[Transfer], bool]
    ) -> Transfer | None:
        """``preferred`` (the selected row) if it qualifies, else the newest that does."""
        if preferred is not None and wanted(preferred):
            return preferred
        candidates = [t for t in self.transfers.values() if wanted(t)]
        return candidates[-1] if candidates else None

    # ------------------------------------------------------------ commands

    def adopt(self, transfer: Transfer) -> None:
        """Show a transfer from the saved queue (finished, or stopped to be resumed)."""
        self.transfers[transfer.id] = transfer
        self.post(TransferAdded(transfer))

    def clear_finished(self) -> list[Transfer]:
        """Forget every done, failed or cancelled transfer (not running ones); those gone."""
        gone = [t for t in self.transfers.values() if t.done_or_stopped]
        for transfer in gone:
            del self.transfers[transfer.id]
        return gone

    def start(self, target: Target, folder: str) -> None:
        self.spawn(self._new_download(target, folder), f"download {target.url()}")

    def cancel(self, transfer: Transfer) -> None:
        task = self._tasks.get(transfer.id)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        for transfer in self.transfers.values():
            if transfer.active:
                self.cancel(transfer)

    def retry(self, transfer: Transfer) -> bool:
        """Try ``transfer`` again now: end its backoff wait if it is waiting to retry, else
        start it again (continuing its ``.part``); ``False`` if it is neither."""
        if transfer.state is State.RETRYING and transfer.client is not None:
            transfer.client.retry_now()
            self._log(f"{transfer.name}: retrying now")
            return True
        if not transfer.claim():
            return False
        self._changed(transfer)
        self.spawn(self._retry(transfer), f"retry {transfer.target.url()}")
        return True

    def set_global_limit(self, rate: float | None) -> None:
        """Every download, running or to come, shares ``rate`` bytes/s (``None``: no limit)."""
        self.rate_limit.rate = rate
        self._log(f"global rate limit: {describe_limit(rate)}")

    def set_limit(self, transfer: Transfer, rate: float | None) -> None:
        """``transfer`` alone at most ``rate`` bytes/s (the global limit still applies)."""
        transfer.limit.rate = rate
        self._log(f"{transfer.name}: rate limit {describe_limit(rate)}")
        self._changed(transfer)

    # ------------------------------------------------------------ the flows

    async def _new_download(self, target: Target, folder: str) -> None:
        try:
            name = safe_local_name(target.path)
            conflict = find_conflict(folder, name)
            if conflict is not None:
                # Ask about the file only once the server is known to be there: a dialog
                # about a host that does not exist is a question for nothing.
                reachable = await self._reachable(target)
                if reachable is not None:
                    self._log(f"{name}: {in_app_words(reachable)}", "error")
                    return
            plan = Plan() if conflict is None else await self._ask_about(conflict, target)
        except (UnsafeName, OSError) as error:
            self._log(f"{target.display_path}: {describe(error)}", "error")
            return
        if plan is None:
            self._log(f"{name}: skipped (already in {folder})")
            return
        transfer = Transfer(target=target, folder=folder, name=plan.name or name)
        self.transfers[transfer.id] = transfer
        self.post(TransferAdded(transfer))
        await self._run(transfer, plan)

    async def _retry(self, transfer: Transfer) -> None:
        try:
            conflict = find_conflict(transfer.folder, transfer.name)
            plan = plan_for_retry(conflict, legacy=transfer.legacy)
            if plan is None and conflict is not None:
                plan = await self._ask_about(conflict, transfer.target)
        except OSError as error:
            self._failed(transfer, describe(error))
            return
        if plan is None:
            transfer.stop()
            self._changed(transfer)
            self._log(f"{transfer.name}: retry skipped")
            return
        # The name the transfer has now (a Rename's ``x (1).txt``), not the server's.
        plan = dataclasses.replace(plan, name=plan.name or transfer.name)
        transfer.reset(plan.name)
        self._log(f"{transfer.name}: retrying" + (" from where it stopped" if plan.resume else ""))
        await self._run(transfer, plan)

    async def _reachable(self, target: Target) -> str | None:
        """``None`` if the server answers (or cannot be told apart from one that does);
        else why not, in one line ("connection refused", "host not found")."""
        where = f"{target.host}:{target.port}"
        probe = Target(target.host, target.port, b"", target.tls)
        options = Options(
            connect_timeout=3, timeout=3, legacy=False, token=self.tokens.get(where), retries=0
        )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.lister(probe, options=options, max_entries=1)
        except LegacyServerError:
            self.legacy_servers.add(where)
        except ConnectError as error:
            return f"{where}: {error.message}"
        except (GetfileError, TimeoutError):
            pass  # it answered, or was too slow to tell: the download will say
        return None

    async def _ask_about(self, conflict: Conflict, target: Target) -> Plan | None:
        can_resume = conflict.part_exists and await self._server_is_ours(target)
        choice = await self.prompts.choose(conflict, can_resume=can_resume)
        return plan_for(choice, conflict)

    async def _server_is_ours(self, target: Target) -> bool:
        """Whether the server can resume: anything but a legacy one (asked with a listing)."""
        where = f"{target.host}:{target.port}"
        if where in self.legacy_servers:
            return False
        probe = Target(target.host, target.port, b"", target.tls)
        options = Options(connect_timeout=3, timeout=3, legacy=False, token=self.tokens.get(where))
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.lister(probe, options=options, max_entries=1)
        except LegacyServerError:
            self.legacy_servers.add(where)
            return False
        except (GetfileError, TimeoutError):
            return True  # it cannot be asked now: offer Resume, fetch will say if it fails
        return True

    async def _run(self, transfer: Transfer, plan: Plan) -> None:
        """One download to its end; every outcome becomes a state, a message and a log line."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks[transfer.id] = task
        try:
            await self._attempts(transfer, plan)
        finally:
            self._tasks.pop(transfer.id, None)

    async def _attempts(self, transfer: Transfer, plan: Plan) -> None:
        self._changed(transfer)
        on_progress = functools.partial(self._progress, transfer)
        on_retry = functools.partial(self._retrying, transfer)
        limit = BothLimits(self.rate_limit, transfer.limit)
        for _attempt in range(TOKEN_ATTEMPTS + 1):
            token = self.tokens.get(transfer.where)
            try:
                result = await self.fetcher(
                    transfer.target,
                    transfer.folder,
                    overwrite=plan.overwrite,
                    resume=plan.resume,
                    options=Options(token=token, rate_limit=limit, retries=self.retries),  # type: ignore[arg-type]
                    on_progress=on_progress,
                    interval=PROGRESS_INTERVAL,
                    name=plan.name,
                    state=transfer.start_attempts(),
                    on_retry=on_retry,
                )
            except UnauthorizedError as error:
                if not await self._token_for(transfer, token):
                    self._failed(transfer, error.message)
                    return
                continue
            except LegacyServerError as error:
                if not self._restart_from_legacy(transfer, plan):
                    self._failed(transfer, error.message)
                    return
                plan = Plan(overwrite=True, name=plan.name)
                continue
            except GetfileError as error:
                self._failed(transfer, error.message)
                return
            except asyncio.CancelledError:
                self._cancelled(transfer)
                raise
            except Exception as error:
                # A bug: the row and the log say so, and it still propagates (the worker's
                # error report), rather than a row stuck on "connecting" or a silent pass.
                self._failed(transfer, f"unexpected error: {error!r}")
                raise
            self._done(transfer, result)
            return
        self._failed(transfer, "gave up after several attempts (token refused?)")

    async def _token_for(self, transfer: Transfer, refused: bytes | None) -> bool:
        """Ask for a (new) token; ``False`` when the user gives up."""
        wrong = refused is not None
        said = "refused the token" if wrong else "needs a token"
        self._log(f"{transfer.name}: {transfer.where} {said}", "warn")
        new_token = await self.prompts.token(transfer.where, wrong=wrong)
        if new_token is None:
            return False
        self.tokens[transfer.where] = new_token
        transfer.reset(transfer.name)
        self._changed(transfer)
        return True

    def _restart_from_legacy(self, transfer: Transfer, plan: Plan) -> bool:
        """A resume met the book's server, which cannot start in the middle: fetch the whole
        file again (``True``), unless this was no resume or the final name is taken."""
        final = os.path.join(transfer.folder, transfer.name)
        if not plan.resume or os.path.lexists(final):
            return False
        self.legacy_servers.add(transfer.where)
        transfer.legacy = True
        self._log(
            f"{transfer.name}: {transfer.where} is a legacy server and cannot resume;"
            " starting again",
            "warn",
        )
        transfer.reset(transfer.name)
        self._changed(transfer)
        return True

    # ------------------------------------------------------------ reports

    def _log(self, text: str, level: str = "info") -> None:
        self.post(LogLine(text, level))

    def _changed(self, transfer: Transfer) -> None:
        self.post(TransferChanged(transfer))

    def _progress(self, transfer: Transfer, progress: Progress) -> None:
        """Called in the event loop at most every PROGRESS_INTERVAL."""
        before = transfer.observe(progress)
        if before is None:
            self.post(TransferProgress(transfer))
            return
        self._changed(transfer)
        if transfer.state is State.DOWNLOADING and before is not State.DOWNLOADING:
            self._connected(transfer, progress)

    def _retrying(self, transfer: Transfer, notice: RetryNotice) -> None:
        """Called on the event loop before each backoff wait of ``fetch``."""
        transfer.retrying(notice, self.clock())
        self._changed(transfer)
        self._log(
            f"{transfer.name}: retrying in {notice.delay:g} s "
            f"({notice.attempt}/{notice.attempts}): {in_app_words(notice.reason)}",
            "warn",
        )

    def _connected(self, transfer: Transfer, progress: Progress) -> None:
        if transfer.legacy:
            self.legacy_servers.add(transfer.where)
            self._log(
                f"{transfer.name}: connected to {transfer.where}: legacy server detected "
                "(no size, no checksum, no resume)",
                "warn",
            )
        else:
            size = f", {fmt.size(progress.total)}" if progress.total is not None else ""
            self._log(f"{transfer.name}: connected to {transfer.where}{size}")

    def _done(self, transfer: Transfer, result: FetchResult) -> None:
        fresh = result.size - result.resumed_from
        average = fresh / result.seconds if result.seconds > 0 else 0.0
        final = Progress("done", result.size, result.size, average, result.seconds, result.legacy)
        transfer.finish(result.path, final, legacy=result.legacy)
        self._changed(transfer)
        if result.legacy:
            self.legacy_servers.add(transfer.where)
        for text, level in saved_lines(transfer.name, result, average):
            self._log(text, level)

    def _failed(self, transfer: Transfer, reason: str) -> None:
        reason = in_app_words(reason)
        transfer.fail(reason)
        self._changed(transfer)
        where = "" if transfer.where in reason else f" (from {transfer.where})"
        self._log(f"{transfer.name}: {reason}{where}", "error")

    def _cancelled(self, transfer: Transfer) -> None:
        transfer.stop()
        self._changed(transfer)
        part = os.path.join(transfer.folder, transfer.name + PART_SUFFIX)
        kept = f"; kept {part}, Retry continues it" if os.path.exists(part) else ""
        self._log(f"{transfer.name}: cancelled{kept}", "warn")


def saved_lines(name: str, result: FetchResult, average: float) -> list[tuple[str, str]]:
    """The log's words for a finished download: where, how big, how fast, what was checked."""
    fresh = result.size - result.resumed_from
    resumed = f", resumed at {fmt.size(result.resumed_from)}" if result.resumed_from else ""
    if result.attempts > 1:
        resumed += f", {result.attempts} connections"
    # A rate over a few milliseconds says nothing; only big transfers get one.
    how = f" at {fmt.rate(average)}" if fresh >= 1024 * 1024 and average else ""
    lines = [
        (
            f"{name}: saved {result.path} ({fmt.size(result.size)} in "
            f"{result.seconds:.2f} s{how}{resumed})",
            "ok",
        )
    ]
    if result.legacy:
        lines.append((f"{name}: legacy server, so no size or digest to check it against", "warn"))
    elif result.digest:
        lines.append((f"{name}: digest verified ({result.digest[:24]}…)", "ok"))
    return lines


def describe(error: Exception) -> str:
    """One line for a person: ``Permission denied: /x`` rather than ``[Errno 13] ...``."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)
