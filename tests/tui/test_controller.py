"""The download controller's rules with fakes: no socket, no screen, no Textual app.

``fetch`` and ``list_folder`` are scripted coroutines, the prompts answer
from a list, ``spawn`` makes plain asyncio tasks and ``post`` collects the
messages the app would draw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from getfile_core import (
    FetchResult,
    GetfileError,
    LegacyServerError,
    Progress,
    Target,
    UnauthorizedError,
    part_name,
)
from tui.downloads import DownloadController
from tui.limits import BothLimits, RateLimit
from tui.messages import LogLine, TransferAdded, TransferChanged
from tui.transfers import Choice, Conflict, State, Transfer

TARGET = Target("files.example.org", 50001, b"docs/report.pdf")
WHERE = "files.example.org:50001"


class Answers:
    """Prompts that answer from lists and remember what they were asked."""

    def __init__(self, choices: list[Choice] = (), tokens: list[bytes | None] = ()) -> None:  # type: ignore[assignment]
        self.choices, self.tokens = list(choices), list(tokens)
        self.asked: list[tuple[str, object, bool]] = []

    async def choose(self, conflict: Conflict, *, can_resume: bool) -> Choice:
        self.asked.append(("choose", conflict, can_resume))
        return self.choices.pop(0)

    async def token(self, where: str, *, wrong: bool) -> bytes | None:
        self.asked.append(("token", where, wrong))
        return self.tokens.pop(0)


class Harness:
    """A controller wired to fakes; ``fetch_script`` decides each fetch call's outcome."""

    def __init__(
        self,
        fetch_script: Callable[[dict[str, Any]], Any],
        answers: Answers | None = None,
        lister_error: Exception | None = None,
    ) -> None:
        self.calls: list[dict[str, Any]] = []
        self.messages: list[object] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.answers = answers or Answers()
        self.fetch_script = fetch_script
        self.lister_error = lister_error
        self.controller = DownloadController(
            self.answers,
            self.messages.append,
            lambda work, _description: self.tasks.append(asyncio.ensure_future(work)),
            fetcher=self.fetch,
            lister=self.lister,
        )

    async def fetch(self, target: Target, folder: str, **kwargs: Any) -> FetchResult:
        kwargs.update(target=target, folder=folder)
        self.calls.append(kwargs)
        outcome = self.fetch_script(kwargs)
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def lister(self, _target: Target, **_kwargs: Any) -> tuple[list[object], bool]:
        if self.lister_error is not None:
            raise self.lister_error
        return [], False

    async def settle(self) -> None:
        while pending := [t for t in self.tasks if not t.done()]:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)

    def logs(self) -> list[str]:
        return [m.text for m in self.messages if isinstance(m, LogLine)]

    @property
    def only(self) -> Transfer:
        (transfer,) = self.controller.transfers.values()
        return transfer


def saved(folder: Path, size: int = 10, **extra: Any) -> FetchResult:
    values = dict(
        path=str(folder / "report.pdf"),
        size=size,
        digest="blake3:" + "ab" * 32,
        legacy=False,
        resumed_from=0,
        seconds=0.5,
    )
    values.update(extra)
    return FetchResult(**values)  # type: ignore[arg-type]


async def test_a_plain_download_is_added_runs_and_is_done(tmp_path: Path) -> None:
    harness = Harness(lambda _call: saved(tmp_path))
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    transfer = harness.only
    assert transfer.state is State.DONE and transfer.saved_path.endswith("report.pdf")
    assert isinstance(harness.messages[0], TransferAdded)
    assert any(isinstance(m, TransferChanged) for m in harness.messages)
    assert harness.calls[0]["overwrite"] is False and harness.calls[0]["resume"] is False
    assert "report.pdf: digest verified (blake3:ababababababababa…)" in harness.logs()


async def test_a_token_is_asked_for_then_asked_again_when_refused(tmp_path: Path) -> None:
    def script(call: dict[str, Any]) -> object:
        token = call["options"].token
        return saved(tmp_path) if token == b"right" else UnauthorizedError("needs a token", 401)

    harness = Harness(script, Answers(tokens=[b"wrong", b"right"]))
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    assert harness.only.state is State.DONE
    assert harness.answers.asked == [("token", WHERE, False), ("token", WHERE, True)]
    assert harness.controller.tokens == {WHERE: b"right"}


async def test_giving_up_on_the_token_fails_the_transfer(tmp_path: Path) -> None:
    harness = Harness(
        lambda _call: UnauthorizedError("unauthorized (401)", 401), Answers(tokens=[None])
    )
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    assert harness.only.state is State.FAILED
    assert harness.only.error == "unauthorized (401)"


async def test_a_name_taken_asks_and_skip_adds_nothing(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"old")
    harness = Harness(lambda _call: saved(tmp_path), Answers(choices=[Choice.SKIP]))
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    assert harness.controller.transfers == {}
    ((_kind, conflict, can_resume),) = harness.answers.asked
    assert conflict == Conflict(str(tmp_path), "report.pdf", True, None) and not can_resume
    assert harness.calls == []
    assert any("skipped" in line for line in harness.logs())


async def test_resume_is_offered_only_by_a_server_that_is_not_legacy(tmp_path: Path) -> None:
    (tmp_path / part_name("report.pdf")).write_bytes(b"half")
    ours = Harness(lambda _call: saved(tmp_path), Answers(choices=[Choice.RESUME]))
    ours.controller.start(TARGET, str(tmp_path))
    await ours.settle()
    assert ours.answers.asked[0][2] is True
    assert ours.calls[0]["resume"] is True

    legacy = Harness(
        lambda _call: saved(tmp_path),
        Answers(choices=[Choice.OVERWRITE]),
        lister_error=LegacyServerError("needs a getfile server"),
    )
    legacy.controller.start(TARGET, str(tmp_path))
    await legacy.settle()
    assert legacy.answers.asked[0][2] is False
    assert legacy.calls[0]["overwrite"] is True
    assert WHERE in legacy.controller.legacy_servers


async def test_rename_downloads_under_the_free_name(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"old")
    harness = Harness(lambda _call: saved(tmp_path), Answers(choices=[Choice.RENAME]))
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    assert harness.calls[0]["name"] == "report (1).pdf"
    assert harness.only.name == "report (1).pdf"


async def test_a_legacy_server_met_while_resuming_starts_again(tmp_path: Path) -> None:
    def script(call: dict[str, Any]) -> object:
        if call["resume"]:
            return LegacyServerError("needs a getfile server")
        return saved(tmp_path, legacy=call["overwrite"])  # the fresh start learns it is legacy

    harness = Harness(script)
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    # A cancelled transfer whose .part is left: retry resumes, the server turns out legacy.
    transfer = harness.only
    transfer.stop()
    (tmp_path / "report.pdf").unlink(missing_ok=True)
    (tmp_path / part_name("report.pdf")).write_bytes(b"half")
    assert harness.controller.retry(transfer)
    await harness.settle()
    assert [(c["resume"], c["overwrite"]) for c in harness.calls] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    assert transfer.state is State.DONE and transfer.legacy
    assert any("is a legacy server and cannot resume" in line for line in harness.logs())


async def test_retry_claims_once_and_fails_cleanly(tmp_path: Path) -> None:
    outcomes: list[object] = [GetfileError("connection refused by files.example.org:50001")]
    harness = Harness(lambda _call: outcomes.pop(0) if outcomes else saved(tmp_path))
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    transfer = harness.only
    assert transfer.state is State.FAILED and harness.controller.any_retryable
    assert any(
        line == "report.pdf: connection refused by files.example.org:50001"
        for line in harness.logs()
    )  # no "(from …)" when the reason already says where
    assert harness.controller.retry(transfer)
    assert not harness.controller.retry(transfer)  # claimed: a second press starts nothing
    await harness.settle()
    assert transfer.state is State.DONE and len(harness.calls) == 2


async def test_cancel_stops_a_running_fetch(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def forever() -> object:
        started.set()
        await asyncio.Event().wait()
        return None

    harness = Harness(lambda _call: forever())
    harness.controller.start(TARGET, str(tmp_path))
    await asyncio.wait_for(started.wait(), 5)
    assert harness.controller.any_active
    harness.controller.cancel_all()
    await harness.settle()
    assert harness.only.state is State.CANCELLED
    assert not harness.controller.any_active


async def test_progress_moves_the_state_and_logs_the_connection(tmp_path: Path) -> None:
    async def run(call: dict[str, Any]) -> object:
        report = call["on_progress"]
        report(Progress("connecting", 0, None, 0.0, 0.1, False))
        report(Progress("downloading", 5, 2048, 10.0, 0.2, False))
        report(Progress("downloading", 7, 2048, 10.0, 0.3, False))
        return saved(tmp_path, size=2048)

    harness = Harness(run)
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    assert harness.logs().count(f"report.pdf: connected to {WHERE}, 2.00 KiB") == 1


def test_a_widget_cannot_set_the_state() -> None:
    transfer = Transfer(TARGET, "/tmp", "report.pdf")
    with pytest.raises(AttributeError):
        transfer.state = State.DONE  # type: ignore[misc]
    assert transfer.observe(Progress("done", 1, 1, 0.0, 0.0, False)) is None  # only fetch says
    assert transfer.state is State.QUEUED


async def test_every_download_gets_the_shared_limit_and_its_own(tmp_path: Path) -> None:
    harness = Harness(lambda _call: saved(tmp_path))
    harness.controller.set_global_limit(2 * 1024 * 1024)
    harness.controller.start(TARGET, str(tmp_path))
    harness.controller.start(Target("h", 1, b"other.bin"), str(tmp_path))
    await harness.settle()
    first, second = (call["options"].rate_limit for call in harness.calls)
    assert first.shared is second.shared is harness.controller.rate_limit  # one, shared
    assert first.own is not second.own
    transfer = next(iter(harness.controller.transfers.values()))
    harness.controller.set_limit(transfer, 64 * 1024)
    assert first.rate == 64 * 1024  # the slower wins, read live
    assert first.chunk(1 << 20) <= 64 * 1024 * 0.1 + 4096
    harness.controller.set_global_limit(None)
    assert second.rate is None and first.rate == 64 * 1024
    assert "global rate limit: no limit" in harness.logs()


def test_both_limits_never_hand_out_more_than_asked() -> None:
    both = BothLimits(RateLimit(256 * 1024), RateLimit(1024 * 1024))
    assert both.chunk(81) == 81  # the end of a body: one byte more would be the trailer's
    assert both.chunk(1 << 20) == int(256 * 1024 * 0.1)


async def test_segments_default_from_settings_and_per_download_connections(
    tmp_path: Path,
) -> None:
    from tui.groups import Connections

    def script(call: dict[str, Any]) -> object:
        call["options"].on_remark("mirror b.example: different file (digest …), not used")
        return saved(tmp_path)

    harness = Harness(script)
    harness.controller.segments = 3  # the settings' ``segments``
    harness.controller.start(TARGET, str(tmp_path))
    await harness.settle()
    mirror = "getfile://mirror.example:50002/docs/report.pdf"
    harness.controller.start(TARGET, str(tmp_path / "x"), Connections(8, (mirror,)))
    await harness.settle()
    first, second = (call["options"] for call in harness.calls)
    assert first.segments == 3 and first.mirrors == ()
    assert second.segments == 8
    assert [(m.host, m.port, m.path) for m in second.mirrors] == [
        ("mirror.example", 50002, b"docs/report.pdf")
    ]
    await asyncio.sleep(0)  # the remark comes back to the loop with call_soon_threadsafe
    assert "report.pdf: mirror b.example: different file (digest …), not used" in harness.logs()
