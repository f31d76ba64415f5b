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
    ConnectError,
    FetchResult,
    GetfileError,
    LegacyServerError,
    Options,
    RetryNotice,
    Target,
    UnauthorizedError,
    UnsafeName,
    fetch,
    list_folder,
    parse_url,
    safe_local_name,
)
from tui import format as fmt
from tui.group_runs import GroupRuns, TreeRunner, group_label
from tui.groups import Connections, Group
from tui.limits import BothLimits, RateLimit, describe_limit
from tui.messages import TransferAdded
from tui.reports import TransferReports, describe
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
        tree_runner: TreeRunner | None = None,
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
        #: Segments per file when a download asks for none (the settings' ``segments``).
        self.segments = Options().segments
        self.report = TransferReports(post, self.legacy_servers)
        self.groups = GroupRuns(self.report, tree_runner) if tree_runner else GroupRuns(self.report)

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
        self.post(TransferAdded(transfer, restored=True))

    def clear_finished(self) -> list[Transfer]:
        """Forget every done, failed or cancelled transfer (not running ones); those gone."""
        gone = [t for t in self.transfers.values() if t.done_or_stopped]
        for transfer in gone:
            del self.transfers[transfer.id]
        return gone

    def start(self, target: Target, folder: str, connections: Connections | None = None) -> None:
        work = self._new_download(target, folder, connections)
        self.spawn(work, f"download {target.url()}")

    def start_group(
        self,
        server: Target,
        names: tuple[bytes, ...],
        folder: str,
        connections: Connections | None = None,
    ) -> Transfer:
        """Download ``names`` (files and folders of the folder ``server.path``) into
        ``folder`` as one tree, on one grouped row."""
        group = Group(folder=server.path, names=names)
        transfer = Transfer(target=server, folder=folder, name=group_label(names), group=group)
        transfer.connections = connections
        self.transfers[transfer.id] = transfer
        self.post(TransferAdded(transfer))
        self.spawn(self._run_group(transfer), f"download {server.url()} ({len(names)} items)")
        return transfer

    async def _run_group(self, transfer: Transfer) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks[transfer.id] = task
        try:
            await self.groups.run(transfer, self._options(transfer))
        finally:
            self._tasks.pop(transfer.id, None)

    def _options(self, transfer: Transfer, token: bytes | None = None) -> Options:
        """The library's options for ``transfer``: its token, limits, retries, connections."""
        connections = transfer.connections or Connections(self.segments)
        loop = asyncio.get_running_loop()
        name = transfer.name

        def remark(line: str) -> None:  # from the transfer's threads
            loop.call_soon_threadsafe(self.report.log, f"{name}: {in_app_words(line)}", "warn")

        return Options(
            token=token if token is not None else self.tokens.get(transfer.where),
            rate_limit=BothLimits(self.rate_limit, transfer.limit),  # type: ignore[arg-type]
            retries=self.retries,
            segments=connections.segments,
            mirrors=tuple(parse_url(url) for url in connections.mirrors),
            on_remark=remark,
        )

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
            self.report.log(f"{transfer.name}: retrying now")
            return True
        if not transfer.claim():
            return False
        self.report.changed(transfer)
        if transfer.group is not None:  # the tree again: it continues where it stopped
            self.report.log(
                f"{transfer.name}: continuing where it stopped (files already there are skipped)"
            )
            self.spawn(self._run_group(transfer), f"retry {transfer.target.url()}")
            return True
        self.spawn(self._retry(transfer), f"retry {transfer.target.url()}")
        return True

    def set_global_limit(self, rate: float | None) -> None:
        """Every download, running or to come, shares ``rate`` bytes/s (``None``: no limit)."""
        self.rate_limit.rate = rate
        self.report.log(f"global rate limit: {describe_limit(rate)}")

    def set_limit(self, transfer: Transfer, rate: float | None) -> None:
        """``transfer`` alone at most ``rate`` bytes/s (the global limit still applies)."""
        transfer.limit.rate = rate
        self.report.log(f"{transfer.name}: rate limit {describe_limit(rate)}")
        self.report.changed(transfer)

    # ------------------------------------------------------------ the flows

    async def _new_download(
        self, target: Target, folder: str, connections: Connections | None = None
    ) -> None:
        try:
            name = safe_local_name(target.path)
            conflict = find_conflict(folder, name)
            if conflict is not None:
                # Ask about the file only once the server is known to be there: a dialog
                # about a host that does not exist is a question for nothing.
                reachable = await self._reachable(target)
                if reachable is not None:
                    self.report.log(f"{name}: {in_app_words(reachable)}", "error")
                    return
            plan = Plan() if conflict is None else await self._ask_about(conflict, target)
        except (UnsafeName, OSError) as error:
            self.report.log(f"{target.display_path}: {describe(error)}", "error")
            return
        if plan is None:
            self.report.log(f"{name}: skipped (already in {folder})")
            return
        transfer = Transfer(target=target, folder=folder, name=plan.name or name)
        transfer.connections = connections
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
            self.report.failed(transfer, describe(error))
            return
        if plan is None:
            transfer.stop()
            self.report.changed(transfer)
            self.report.log(f"{transfer.name}: retry skipped")
            return
        # The name the transfer has now (a Rename's ``x (1).txt``), not the server's.
        plan = dataclasses.replace(plan, name=plan.name or transfer.name)
        transfer.reset(plan.name)
        kept = conflict.part_size if conflict is not None and plan.resume else None
        self.report.log(
            # Not "retrying": at start it followed "resuming N unfinished download(s)".
            f"{transfer.name}: continuing from {fmt.size(kept)}"
            if kept
            else f"{transfer.name}: starting again"
        )
        await self._run(transfer, plan)

    async def _reachable(self, target: Target) -> str | None:
        """``None`` if the server answers (or cannot be told apart from one that does);
        else why not, in one line ("connection refused", "host not found")."""
        error = await self._probe(target)
        return None if error is None else f"{target.address}: {error.message}"

    async def _ask_about(self, conflict: Conflict, target: Target) -> Plan | None:
        can_resume = conflict.part_exists and await self._server_is_ours(target)
        choice = await self.prompts.choose(conflict, can_resume=can_resume)
        return plan_for(choice, conflict)

    async def _server_is_ours(self, target: Target) -> bool:
        """Whether the server can resume: anything but a legacy one (asked with a listing).
        One that cannot be asked now is offered Resume: fetch will say if it fails."""
        if target.address not in self.legacy_servers:
            await self._probe(target)
        return target.address not in self.legacy_servers

    async def _probe(self, target: Target) -> ConnectError | None:
        """Ask for a one-entry listing, bounded by ``PROBE_TIMEOUT``: the error if nothing
        answers; a legacy server (it cannot list) is remembered in ``legacy_servers``."""
        probe = Target(target.host, target.port, b"", target.tls)
        token = self.tokens.get(target.address)
        options = Options(connect_timeout=3, timeout=3, legacy=False, token=token, retries=0)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.lister(probe, options=options, max_entries=1)
        except LegacyServerError:
            self.legacy_servers.add(target.address)
        except ConnectError as error:
            return error
        except (GetfileError, TimeoutError):
            pass  # it answered, or was too slow to tell: the download will say
        return None

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
        self.report.changed(transfer)
        on_progress = functools.partial(self.report.progress, transfer)
        on_retry = functools.partial(self._retrying, transfer)
        for _attempt in range(TOKEN_ATTEMPTS + 1):
            token = self.tokens.get(transfer.where)
            try:
                result = await self.fetcher(
                    transfer.target,
                    transfer.folder,
                    overwrite=plan.overwrite,
                    resume=plan.resume,
                    options=self._options(transfer, token),
                    on_progress=on_progress,
                    interval=PROGRESS_INTERVAL,
                    name=plan.name,
                    state=transfer.start_attempts(),
                    on_retry=on_retry,
                )
            except UnauthorizedError as error:
                if not await self._token_for(transfer, token):
                    self.report.failed(transfer, error.message)
                    return
                continue
            except LegacyServerError as error:
                if not self._restart_from_legacy(transfer, plan):
                    self.report.failed(transfer, error.message)
                    return
                plan = Plan(overwrite=True, name=plan.name)
                continue
            except GetfileError as error:
                self.report.failed(transfer, error.message)
                return
            except asyncio.CancelledError:
                self.report.cancelled(transfer)
                raise
            except Exception as error:
                # A bug: the row and the log say so, and it still propagates (the worker's
                # error report), rather than a row stuck on "connecting" or a silent pass.
                self.report.failed(transfer, f"unexpected error: {error!r}")
                raise
            self.report.done(transfer, result)
            return
        self.report.failed(transfer, "gave up after several attempts (token refused?)")

    async def _token_for(self, transfer: Transfer, refused: bytes | None) -> bool:
        """Ask for a (new) token; ``False`` when the user gives up."""
        wrong = refused is not None
        said = "refused the token" if wrong else "needs a token"
        self.report.log(f"{transfer.name}: {transfer.where} {said}", "warn")
        new_token = await self.prompts.token(transfer.where, wrong=wrong)
        if new_token is None:
            return False
        self.tokens[transfer.where] = new_token
        transfer.reset(transfer.name)
        self.report.changed(transfer)
        return True

    def _restart_from_legacy(self, transfer: Transfer, plan: Plan) -> bool:
        """A resume met the book's server, which cannot start in the middle: fetch the whole
        file again (``True``), unless this was no resume or the final name is taken."""
        final = os.path.join(transfer.folder, transfer.name)
        if not plan.resume or os.path.lexists(final):
            return False
        self.legacy_servers.add(transfer.where)
        transfer.legacy = True
        self.report.log(
            f"{transfer.name}: {transfer.where} is a legacy server and cannot resume;"
            " starting again",
            "warn",
        )
        transfer.reset(transfer.name)
        self.report.changed(transfer)
        return True

    def _retrying(self, transfer: Transfer, notice: RetryNotice) -> None:
        self.report.retrying(transfer, notice, self.clock())
