"""The download flow: from a request to a row state and a log line.

A mixin of the app (it needs the app's dialogs, log and transfer list): a
worker of group "downloads" checks the destination, asks about a name
already taken, then awaits ``getfile_core.client.fetch``; progress goes to
the transfer list as coalescing messages; every outcome (done, failed,
cancelled) becomes a row state and a log line, never an exception.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from getfile_core.address import Target
from getfile_core.client.api import FetchResult, Options, Progress, fetch, list_folder
from getfile_core.client.names import PART_SUFFIX, UnsafeName, safe_local_name
from getfile_core.errors import GetfileError, LegacyServerError, UnauthorizedError
from tui import format as fmt
from tui.messages import TransferProgress
from tui.screens.overwrite import OverwriteScreen
from tui.screens.token_prompt import TokenScreen
from tui.transfers import Conflict, Plan, Transfer, find_conflict, plan_for, plan_for_retry
from tui.widgets.download_form import DownloadForm
from tui.widgets.transfer_list import TransferList

if TYPE_CHECKING:
    from textual.app import App

    from tui.widgets.log_pane import LogPane

    _AppBase = App[None]
else:
    _AppBase = object

#: Seconds between progress snapshots: smooth enough to watch, cheap over SSH.
PROGRESS_INTERVAL = 0.25
#: How often a refused token may be asked for again before the download fails.
TOKEN_ATTEMPTS = 3


class DownloadFlow(_AppBase):
    """Downloads, cancel and retry; mixed into ``GetfileApp``."""

    transfers: dict[int, Transfer]
    tokens: dict[str, bytes]  # "host:port" -> token typed in this session
    legacy_servers: set[str]
    _usable_keys: tuple[bool, bool]

    if TYPE_CHECKING:

        @property
        def form(self) -> DownloadForm: ...

        @property
        def transfer_list(self) -> TransferList: ...

        @property
        def log_pane(self) -> LogPane: ...

    def action_download(self) -> None:
        self.form.submit()

    def on_download_form_submitted(self, message: DownloadForm.Submitted) -> None:
        request = message.request
        self.start_download(request.target, request.folder)

    def start_download(self, target: Target, folder: str) -> None:
        self.run_worker(
            self._new_download(target, folder),
            group="downloads",
            description=f"download {target.url()}",
            exit_on_error=False,
        )

    async def _new_download(self, target: Target, folder: str) -> None:
        try:
            name = safe_local_name(target.path)
            conflict = find_conflict(folder, name)
            plan = Plan() if conflict is None else await self._ask_about(conflict, target)
        except (UnsafeName, OSError) as error:
            self.log_pane.add(f"{target.display_path}: {describe(error)}", "error")
            return
        if plan is None:
            self.log_pane.add(f"{name}: skipped (already in {folder})")
            return
        transfer = Transfer(target=target, folder=folder, name=plan.name or name)
        self.transfers[transfer.id] = transfer
        # The row mounts while the download starts: the bytes need not wait for the screen.
        self.transfer_list.add(transfer, focus=self.focused is None)
        await self._run(transfer, plan)

    async def _ask_about(self, conflict: Conflict, target: Target) -> Plan | None:
        can_resume = conflict.part_exists and await self._server_is_ours(target)
        choice = await self.push_screen_wait(OverwriteScreen(conflict, can_resume=can_resume))
        return plan_for(choice, conflict)

    async def _server_is_ours(self, target: Target) -> bool:
        """Whether the server can resume: anything but a legacy one (asked with a listing)."""
        where = f"{target.host}:{target.port}"
        if where in self.legacy_servers:
            return False
        probe = Target(target.host, target.port, b"", target.tls)
        options = Options(connect_timeout=3, timeout=3, legacy=False, token=self.tokens.get(where))
        try:
            await asyncio.wait_for(list_folder(probe, options=options, max_entries=1), 5)
        except LegacyServerError:
            self.legacy_servers.add(where)
            return False
        except Exception:  # it answered as ours, or cannot be asked: offer it, fetch will say
            return True
        return True

    async def _run(self, transfer: Transfer, plan: Plan) -> None:
        """One download to its end; every outcome becomes a row state and a log line."""
        worker = get_current_worker()
        transfer.worker = worker
        self._show(transfer)
        on_progress = functools.partial(self._post_progress, transfer.id)
        for _attempt in range(TOKEN_ATTEMPTS + 1):
            token = self.tokens.get(transfer.where)
            try:
                result = await fetch(
                    transfer.target,
                    transfer.folder,
                    overwrite=plan.overwrite,
                    resume=plan.resume,
                    options=Options(token=token),
                    on_progress=on_progress,
                    interval=PROGRESS_INTERVAL,
                    name=plan.name,
                )
            except UnauthorizedError as error:
                new_token = await self._ask_token(transfer, wrong=token is not None)
                if new_token is None:
                    self._failed(transfer, error.message)
                    return
                self.tokens[transfer.where] = new_token
                transfer.reset(transfer.name)
                self._show(transfer)
                continue
            except LegacyServerError as error:
                final = os.path.join(transfer.folder, transfer.name)
                if not plan.resume or os.path.lexists(final):
                    self._failed(transfer, error.message)
                    return
                # The .part cannot be continued from the book's server: fetch it whole again.
                self.legacy_servers.add(transfer.where)
                transfer.legacy = True
                self.log_pane.add(
                    f"{transfer.name}: {transfer.where} is a legacy server and cannot resume;"
                    " starting again",
                    "warn",
                )
                plan = Plan(overwrite=True, name=plan.name)
                transfer.reset(transfer.name)
                self._show(transfer)
                continue
            except GetfileError as error:
                self._failed(transfer, error.message)
                return
            except asyncio.CancelledError:
                self._cancelled(transfer)
                raise
            except Exception as error:  # a bug must not take the app down: say it, keep going
                self._failed(transfer, f"unexpected error: {error!r}")
                return
            self._done(transfer, result)
            return
        self._failed(transfer, "gave up after several attempts (token refused?)")

    def _post_progress(self, transfer_id: int, progress: Progress) -> None:
        # Called in the event loop at most every PROGRESS_INTERVAL; the list coalesces.
        self.transfer_list.post_message(TransferProgress(transfer_id, progress))

    async def _ask_token(self, transfer: Transfer, *, wrong: bool) -> bytes | None:
        self.log_pane.add(
            f"{transfer.name}: {transfer.where} "
            + ("refused the token" if wrong else "needs a token"),
            "warn",
        )
        return await self.push_screen_wait(TokenScreen(transfer.where, wrong=wrong))

    # ------------------------------------------------------------ outcomes

    def _show(self, transfer: Transfer) -> None:
        self.transfer_list.refresh_transfer(transfer)
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        """Re-dim footer keys, only when that changes anything (the footer rebuilds itself)."""
        transfers = self.transfers.values()
        usable = (any(t.active for t in transfers), any(t.can_retry for t in transfers))
        if usable != self._usable_keys:
            self._usable_keys = usable
            self.refresh_bindings()
            self.transfer_list.enable_actions(cancel=usable[0], retry=usable[1])

    def _done(self, transfer: Transfer, result: FetchResult) -> None:
        transfer.state = "done"
        transfer.saved_path = result.path
        transfer.legacy = result.legacy
        fresh = result.size - result.resumed_from
        average = fresh / result.seconds if result.seconds > 0 else 0.0
        transfer.progress = Progress(
            "done", result.size, result.size, average, result.seconds, result.legacy
        )
        self._show(transfer)
        resumed = f", resumed at {fmt.size(result.resumed_from)}" if result.resumed_from else ""
        # A rate over a few milliseconds says nothing; only big transfers get one.
        how = f" at {fmt.rate(average)}" if fresh >= 1024 * 1024 and average else ""
        self.log_pane.add(
            f"{transfer.name}: saved {result.path} ({fmt.size(result.size)} in "
            f"{result.seconds:.2f} s{how}{resumed})",
            "ok",
        )
        if result.legacy:
            self.legacy_servers.add(transfer.where)
            self.log_pane.add(
                f"{transfer.name}: legacy server, so no size or digest to check it against",
                "warn",
            )
        elif result.digest:
            self.log_pane.add(f"{transfer.name}: digest verified ({result.digest[:24]}…)", "ok")

    def _failed(self, transfer: Transfer, reason: str) -> None:
        transfer.state = "failed"
        transfer.error = reason
        self._show(transfer)
        where = "" if transfer.where in reason else f" (from {transfer.where})"
        self.log_pane.add(f"{transfer.name}: {reason}{where}", "error")

    def _cancelled(self, transfer: Transfer) -> None:
        transfer.state = "cancelled"
        self._show(transfer)
        part = os.path.join(transfer.folder, transfer.name + PART_SUFFIX)
        kept = f"; kept {part}, Retry continues it" if os.path.exists(part) else ""
        self.log_pane.add(f"{transfer.name}: cancelled{kept}", "warn")

    def on_transfer_list_phase_changed(self, message: TransferList.PhaseChanged) -> None:
        transfer = message.transfer
        if transfer.state != "downloading" or message.before == "downloading":
            return
        progress = transfer.progress
        if transfer.legacy:
            self.legacy_servers.add(transfer.where)
            self.log_pane.add(
                f"{transfer.name}: connected to {transfer.where}: legacy server detected "
                "(no size, no checksum, no resume)",
                "warn",
            )
        else:
            known = progress is not None and progress.total is not None
            size = f", {fmt.size(progress.total)}" if known else ""  # type: ignore[union-attr]
            self.log_pane.add(f"{transfer.name}: connected to {transfer.where}{size}")

    # ------------------------------------------------------------ cancel / retry

    def _pick(self, wanted: Callable[[Transfer], bool]) -> Transfer | None:
        """The focused row's transfer if it qualifies, else the newest that does."""
        row = self.transfer_list.selected()
        if row is not None and wanted(row.transfer):
            return row.transfer
        candidates = [t for t in self.transfers.values() if wanted(t)]
        return candidates[-1] if candidates else None

    def action_cancel(self) -> None:
        transfer = self._pick(lambda t: t.active)
        if transfer is None:
            self.notify("Nothing to cancel.", timeout=2)
            return
        if transfer.worker is not None:
            transfer.worker.cancel()

    def action_cancel_all(self) -> None:
        for transfer in self.transfers.values():
            if transfer.active and transfer.worker is not None:
                transfer.worker.cancel()

    def action_retry(self) -> None:
        transfer = self._pick(lambda t: t.can_retry)
        if transfer is None:
            self.notify("Nothing to retry.", timeout=2)
            return
        transfer.state = "queued"  # claimed: a second ctrl+r must not start it twice
        self.run_worker(
            self._retry(transfer),
            group="downloads",
            description=f"retry {transfer.target.url()}",
            exit_on_error=False,
        )

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
            transfer.state = "cancelled"
            self._show(transfer)
            self.log_pane.add(f"{transfer.name}: retry skipped")
            return
        transfer.reset(plan.name or transfer.name)
        self.log_pane.add(
            f"{transfer.name}: retrying" + (" from where it stopped" if plan.resume else "")
        )
        await self._run(transfer, plan)


def describe(error: Exception) -> str:
    """One line for a person: ``Permission denied: /x`` rather than ``[Errno 13] ...``."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)
