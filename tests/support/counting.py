"""What a process holds, counted rather than guessed: descriptors, memory, tasks, threads.

Leaks are counted: descriptors in ``/proc/self/fd``, tasks in the event
loop, and every task that ends in an exception nobody expected (the closest
thing an asyncio server has to a crash). ``LoopThread`` hosts a server on its
own loop for synchronous tests (hypothesis) and counts its tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.support.waits import PATIENCE

T = TypeVar("T")


def open_fd_count() -> int:
    """Descriptors this process holds right now (the listing's own one included, always)."""
    return len(os.listdir("/proc/self/fd"))


def fds_under(folder: str | os.PathLike[str]) -> list[str]:
    """Open descriptors of this process that point into ``folder`` (open files left behind)."""
    prefix = os.path.realpath(folder).rstrip("/") + "/"
    found = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith(prefix):
                found.append(target)
    return found


def raise_fd_limit(wanted: int) -> int:
    """Lift the soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def rss_of(pid: int) -> int:
    """Resident memory of a process in bytes (from /proc, as ``ps`` shows it)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"no VmRSS for pid {pid}"
    return int(match[1]) * 1024


class TaskFailures:
    """Every task on a loop that ended with an exception: a server handler that crashed.

    Installed as the loop's task factory, so it sees handler tasks that
    ``asyncio.start_server`` creates, which nobody awaits.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def factory(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        task.add_done_callback(self._note)
        return task

    def _note(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]


@contextlib.contextmanager
def recording_task_failures() -> Iterator[TaskFailures]:
    """Record crashed tasks on the running loop for the duration of an async test."""
    loop = asyncio.get_running_loop()
    failures = TaskFailures()
    previous = loop.get_task_factory()
    loop.set_task_factory(failures.factory)
    try:
        yield failures
    finally:
        loop.set_task_factory(previous)


class LoopThread:
    """An event loop in a daemon thread, so synchronous tests (hypothesis) can host servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.failures = TaskFailures()
        self.loop.set_task_factory(self.failures.factory)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 10) -> T:
        """Run a plain function on the loop's thread (reading server state safely)."""

        async def wrapper() -> T:
            return function()

        return self.run(wrapper(), timeout)

    def task_count(self) -> int:
        """Tasks alive on the loop, not counting the one that counts."""
        return self.call(lambda: len(asyncio.all_tasks(self.loop)) - 1)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


def transfer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "getfile-transfer" and t.is_alive()]


def join_transfer_threads(timeout: float = PATIENCE) -> list[threading.Thread]:
    """Join every transfer thread; return the ones still alive afterwards (should be none)."""
    deadline = time.monotonic() + timeout
    for thread in transfer_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    return transfer_threads()
