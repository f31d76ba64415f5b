"""A whole remote folder: walk it (listings page by page), plan each file, download, keep going.

``download_tree`` mirrors ``getfile://HOST/DIR`` into ``OUT/<DIR's name>``
(the served root: into ``OUT``) on ``jobs`` kept, pipelined connections
(``pipeline``). Listings and downloads share them: a listing page's files
are queued as soon as it arrives, so downloads start while the rest of
the tree is still being listed.

Re-running continues: a local file with the server's size and
modification time (to the nanosecond, which ``commit`` gave it) is taken
as identical and not touched, rsync's "quick check". The server's digest
was weighed and not used for this: a listing carries no digest, so
asking for it costs a request per file and the server reading every file
it has not hashed, and the local file would have to be read whole too, to
confirm what size and time already say for files getfile wrote itself.
A ``.getfile-part`` resumes (verified whole by the digest at the end); a
local file that differs is kept, with one line, unless ``overwrite``.

``walk_tree`` is the listing half alone (``getfile ls -r``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from getfile_core import protocol
from getfile_core._values import FrozenValue, Value, init_field
from getfile_core.address import Target
from getfile_core.client.globs import Filter
from getfile_core.client.multiplex import Multiplexer
from getfile_core.client.names import UnsafeName
from getfile_core.client.pipeline import JobQueue, Lane, Worker
from getfile_core.client.state import Options
from getfile_core.client.tree_disk import DiskWriter
from getfile_core.client.tree_files import FileJob, refusal
from getfile_core.client.tree_local import LocalTree, Parts, check_name
from getfile_core.errors import GetfileError, LocalFileError, ProtocolError, UsageError
from getfile_core.protocol import LATEST, Entry, Request, Response, Status, Trailer, Verb

#: Default bounds of one tree (``--max-entries``, ``--max-depth``).
MAX_ENTRIES = 1_000_000
MAX_DEPTH = 64
#: Longest relative path (bytes) a tree may hold: Linux's PATH_MAX.
MAX_PATH = 4096
#: Seconds between two progress samples while a tree runs.
TICK = 0.2


class TreeLimitError(UsageError):
    """The tree is bigger or deeper than the command allowed (a flag raises the bound)."""


class TreeOptions(Value):
    """What to fetch and how far to go (a plain value class: no ``dataclasses`` on the path).

    ``get -r``'s start-up imports what it needs only: ``dataclasses`` with
    ``inspect`` cost 6 ms of ``-X importtime`` (see ``getfile_core._values``).
    """

    _fields = (
        "jobs",
        "overwrite",
        "filter",
        "max_entries",
        "max_depth",
        "recursive",
        "entries_flag",
        "select",
        "file_advice",
    )
    __slots__ = _fields
    jobs: int
    overwrite: bool
    filter: Filter
    max_entries: int
    max_depth: int
    #: False: this folder's entries only (``ls -l`` without ``-r``).
    recursive: bool
    #: The flag that raises ``max_entries``, named in the message when it is hit.
    entries_flag: str
    #: Only these names of the top folder (files and folders, as ``check_name`` gives
    #: them), saved straight into OUT with no top folder: the app's multi-select.
    select: frozenset[str] | None
    #: Said after "is a file, not a folder" when the top URL is a file: what to run
    #: instead. ``get -r`` points to plain ``get``; ``ls`` says none (plain ``ls`` of a
    #: file is no error worth advice).
    file_advice: str

    def __init__(
        self,
        jobs: int = 4,
        overwrite: bool = False,
        filter: Filter | None = None,
        max_entries: int = MAX_ENTRIES,
        max_depth: int = MAX_DEPTH,
        recursive: bool = True,
        entries_flag: str = "--max-entries",
        select: frozenset[str] | None = None,
        file_advice: str = "use get without -r",
    ) -> None:
        self.jobs = jobs
        self.overwrite = overwrite
        self.filter = Filter() if filter is None else filter
        self.max_entries = max_entries
        self.max_depth = max_depth
        self.recursive = recursive
        self.entries_flag = entries_flag
        self.select = select
        self.file_advice = file_advice


class TreeEntry(FrozenValue):
    """One entry of a walked tree: its path under the top folder and what the listing said."""

    _fields = ("path", "kind", "size", "mtime_ns")
    __slots__ = _fields
    path: str
    kind: str
    size: int
    mtime_ns: int

    def __init__(self, path: str, kind: str, size: int, mtime_ns: int) -> None:
        init_field(self, "path", path)
        init_field(self, "kind", kind)
        init_field(self, "size", size)
        init_field(self, "mtime_ns", mtime_ns)


class TreeResult(Value):
    """What a tree download did: counts, the first error of each kind, whether it was cancelled."""

    _fields = (
        "files",
        "skipped",
        "kept",
        "failed",
        "folders",
        "bytes",
        "seconds",
        "errors",
        "cancelled",
    )
    __slots__ = _fields
    files: int  # fetched (completed now)
    skipped: int  # already identical
    kept: int  # differing local files kept
    failed: int
    folders: int
    #: The sizes of the files fetched (saved) this run, whole: what the summary's
    #: "N file(s) fetched, X" means, and ``--json``'s "bytes". Not the traffic:
    #: bytes asked for again after a reset are not counted twice, and a part left
    #: by an earlier run counts with its file (so the rate is of files completed).
    bytes: int
    seconds: float
    #: The first error of each kind, for the exit code (first one wins).
    errors: list[GetfileError]
    #: ``Tree.cancel`` stopped it: what is missing was not tried (parts are kept).
    cancelled: bool

    def __init__(
        self,
        files: int = 0,
        skipped: int = 0,
        kept: int = 0,
        failed: int = 0,
        folders: int = 0,
        bytes: int = 0,
        seconds: float = 0.0,
        errors: list[GetfileError] | None = None,
        cancelled: bool = False,
    ) -> None:
        self.files = files
        self.skipped = skipped
        self.kept = kept
        self.failed = failed
        self.folders = folders
        self.bytes = bytes
        self.seconds = seconds
        self.errors = [] if errors is None else errors
        self.cancelled = cancelled


class Tree:
    """Counters and plans of one tree, shared by the workers (one lock, short holds)."""

    def __init__(
        self,
        target: Target,
        options: Options,
        tree_options: TreeOptions,
        local: LocalTree | None,
        on_line: Callable[[str, str], None],
    ) -> None:
        self.target = target
        self.options = options
        self.tree_options = tree_options
        self.local = local
        self.on_line = on_line
        self.queue = JobQueue()
        self.lock = threading.Lock()
        self.result = TreeResult()
        self.entries = 0
        self.files_total = 0
        self.bytes_total = 0
        self.bytes_resumed = 0
        self.listed: list[tuple[Parts, int]] = []  # folders and their mtimes
        self.found: list[TreeEntry] = []  # walk_tree only
        #: The loop: listings and small files, every connection in one thread.
        self.loop = Multiplexer(target, options, self.queue, tree_options.jobs)
        #: Threads for big files, started with the first one (``jobs`` of them).
        self.workers: list[Worker] = []
        self.threads: list[threading.Thread] = []
        self.queue.on_big = self._start_workers
        #: Small files' bodies are written by this thread (``download_tree`` only).
        self.disk: DiskWriter | None = None
        self.limit_hit = False
        #: ``on_file(path, event)`` from worker threads, event one of started, done,
        #: skipped, kept, failed: the app's grouped row expands into its files with it.
        self.on_file: Callable[[str, str], None] | None = None

    def file_event(self, path: str, event: str) -> None:
        if self.on_file is not None:
            self.on_file(path, event)

    def path_of(self, parts: Parts) -> bytes:
        top = self.target.path.rstrip(b"/")
        rest = b"/".join(os.fsencode(p) for p in parts)
        return b"/".join(x for x in (top, rest) if x) or b"."

    def fail(self, error: GetfileError, subject: str, *, quiet: bool = False) -> None:
        with self.lock:
            self.result.failed += 1
            if not quiet:
                self.result.errors.append(error)
        if not quiet:
            self.on_line(subject, str(error))

    @property
    def bytes_done(self) -> int:
        """Bytes of the listed files that are here, for a progress bar.

        Counted as they arrive, so bytes that came before a reset and are
        asked for again (answers in flight on a cut connection) count twice;
        never shown as more than the listed total (a tree through a link
        resetting every 6 MB showed "24.6/24.5 MB").
        """
        moved = self.loop.state.done + sum(w.state.done for w in list(self.workers))
        done = self.bytes_resumed + moved
        return min(done, self.bytes_total) if self.bytes_total else done

    def cancel(self) -> None:
        """Stop the whole tree (any thread): partial files are kept for the next run."""
        self.result.cancelled = True
        self.queue.stop()
        self.loop.state.cancel()
        with self.lock:
            workers = list(self.workers)
        for worker in workers:
            worker.state.cancel()

    def in_flight(self) -> list[str]:
        jobs = [*self.loop.in_flight(), *(w.current for w in list(self.workers))]
        return [job.shown for job in jobs if isinstance(job, FileJob)]

    def _start_workers(self) -> None:
        """The first big file: ``jobs`` threads, each with its own connection, stream them."""
        with self.lock:
            if self.workers:
                return
            self.workers = [
                Worker(self.target, self.options, self.queue) for _ in range(self.tree_options.jobs)
            ]
            for worker in self.workers:
                thread = threading.Thread(target=worker.run, daemon=True, name="getfile-tree")
                self.threads.append(thread)
                thread.start()


class ListJob:
    """One page of one folder's listing; its answer queues the files and folders it names."""

    alone = False
    lane = Lane.LIST
    body_limit = protocol.MAX_LIST_BODY
    expected = 0  # not known before it comes

    def __init__(self, tree: Tree, parts: Parts, after: bytes | None = None) -> None:
        self.tree = tree
        self.parts = parts
        self.after = after
        self.interrupted = 0
        self.seen: dict[str, str] = {}  # name -> kind, across this folder's pages

    @property
    def shown(self) -> str:
        if not self.parts:
            return os.fsdecode(self.tree.target.path) or "/"
        return "/".join(self.parts) + "/"

    def request(self) -> Request:
        path = self.tree.path_of(self.parts)
        return Request(Verb.LIST, path, after=self.after, version=LATEST, keep=True)

    def cut(self, body: bytes) -> None:
        """A page cut short is asked again whole."""

    def complete(self, head: Response, body: bytes, trailer: Trailer | None) -> None:
        if head.status is not Status.OK:
            self._refused(head)
            return
        assert head.entries is not None
        if head.body_length > protocol.MAX_LIST_BODY or head.entries > protocol.MAX_LIST_ENTRIES:
            raise ProtocolError("listing page larger than the protocol allows")
        if head.next_after is not None:
            if not head.entries:
                raise ProtocolError("listing page with a next cursor but no entries")
            if self.after is not None and head.next_after <= self.after:
                raise ProtocolError("listing cursor went backwards")
        entries = protocol.decode_listing(body, head.entries)
        for entry in entries:
            self._one(entry)
        if head.next_after is not None and not self.tree.limit_hit:
            more = ListJob(self.tree, self.parts, head.next_after)
            more.seen = self.seen
            self.tree.queue.add(more)

    def _refused(self, head: Response) -> None:
        special = "listed as a folder but is a file now; refused"
        if not self.parts:
            advice = self.tree.tree_options.file_advice
            special = "is a file, not a folder" + (f" ({advice})" if advice else "")
        self.give_up(refusal(head, Status.NOT_A_DIRECTORY, special))

    def _one(self, entry: Entry) -> None:
        tree = self.tree
        try:
            name = check_name(entry.name)
        except UnsafeName as error:
            tree.fail(ProtocolError(str(error)), self.shown)
            return
        earlier = self.seen.get(name)
        if earlier is not None:
            what = "twice" if earlier == entry.kind else f"as a {earlier} and as a {entry.kind}"
            tree.fail(ProtocolError(f"the listing names {name!r} {what}; refused"), self.shown)
            return
        self.seen[name] = entry.kind
        parts = (*self.parts, name)
        relative = "/".join(parts)
        select = tree.tree_options.select
        if select is not None and not self.parts and name not in select:
            return
        if not self._count(relative):
            return
        if entry.kind == "other":
            tree.on_line(relative, "not a file or folder on the server; skipped")
            return
        is_dir = entry.kind == "dir"
        if not tree.tree_options.filter.wants(relative, is_dir):
            return
        if tree.local is None:
            with tree.lock:
                tree.found.append(TreeEntry(relative, entry.kind, entry.size, entry.mtime_ns))
        if is_dir:
            self._folder(parts, entry)
        elif tree.local is not None:
            with tree.lock:
                tree.files_total += 1
                tree.bytes_total += entry.size
            tree.queue.add(FileJob(tree, parts, entry))

    def _count(self, relative: str) -> bool:
        """Bound the tree: entries, depth, path length; one line when a bound is hit."""
        tree = self.tree
        with tree.lock:
            tree.entries += 1
            over = tree.entries > tree.tree_options.max_entries
            first = over and not tree.limit_hit
            tree.limit_hit = tree.limit_hit or over
        if over:
            if first:
                bound = tree.tree_options.max_entries
                tree.fail(
                    TreeLimitError(
                        f"more than {bound} entries in the tree; stopped listing "
                        f"({tree.tree_options.entries_flag} raises the bound)"
                    ),
                    self.shown,
                )
            return False
        if relative.count("/") >= tree.tree_options.max_depth:
            tree.fail(
                TreeLimitError(
                    f"deeper than {tree.tree_options.max_depth} folders; not followed "
                    "(--max-depth raises the bound)"
                ),
                relative,
            )
            return False
        if len(os.fsencode(relative)) > MAX_PATH:
            tree.fail(LocalFileError(f"path longer than {MAX_PATH} bytes; refused"), self.shown)
            return False
        return True

    def _folder(self, parts: Parts, entry: Entry) -> None:
        tree = self.tree
        if tree.local is not None:
            try:
                tree.local.make(parts)  # empty folders are kept too
            except LocalFileError as error:
                tree.fail(error, "/".join(parts))
                return
        with tree.lock:
            tree.listed.append((parts, entry.mtime_ns))
            tree.result.folders += 1
        if tree.tree_options.recursive:
            tree.queue.add(ListJob(tree, parts))

    def give_up(self, error: GetfileError, *, quiet: bool = False) -> None:
        self.tree.fail(error, self.shown, quiet=quiet)


def top_name(target: Target) -> str | None:
    """``OUT/<this>`` for ``getfile://HOST/DIR``; ``None`` for the served root (into OUT)."""
    last = target.path.rstrip(b"/").rsplit(b"/", 1)[-1]
    if last in (b"", b"."):
        return None
    try:
        return check_name(last)
    except UnsafeName as error:
        raise UsageError(str(error)) from None


def run_tree(tree: Tree, on_tick: Callable[[], None] | None = None) -> None:
    """Run the loop thread (and the big files' threads, when it finds some) to the end.

    ``on_tick`` is called in this thread every ``TICK`` seconds while they
    run; Ctrl-C (or any exception here) cancels them all.
    """
    tree.queue.add(ListJob(tree, ()))
    failures: list[BaseException] = []

    def loop() -> None:
        try:
            tree.loop.run()
        except BaseException as error:  # re-raised in the caller's thread below
            failures.append(error)
            tree.cancel()

    thread = threading.Thread(target=loop, daemon=True, name="getfile-loop")
    thread.start()
    try:
        _wait(thread, on_tick)
        # No big file can be found once the loop (every listing) has ended.
        for worker_thread in list(tree.threads):
            _wait(worker_thread, on_tick)
    except BaseException:
        tree.cancel()
        for other in [thread, *tree.threads]:
            other.join(5.0)
        raise
    if failures:
        raise failures[0]


def _wait(thread: threading.Thread, on_tick: Callable[[], None] | None) -> None:
    while thread.is_alive():
        thread.join(TICK)
        if on_tick is not None:
            on_tick()


def download_tree(
    target: Target,
    out: str,
    options: Options,
    tree_options: TreeOptions,
    on_line: Callable[[str, str], None],
    on_start: Callable[[Tree], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> TreeResult:
    """Mirror the remote folder into ``out``; blocking. ``on_line(subject, text)`` for each
    problem (a refused name, a kept local file, a failed file), from worker threads."""
    began = time.monotonic()
    top = None if tree_options.select is not None else top_name(target)
    local = LocalTree(out, top)
    tree = Tree(target, options, tree_options, local, on_line)
    if on_start is not None:
        on_start(tree)
    try:
        tree.disk = DiskWriter(local, tree_options.overwrite)
        try:
            run_tree(tree, on_tick)
        finally:
            tree.disk.close(cancel=tree.result.cancelled)
        for parts, mtime_ns in sorted(tree.listed, key=lambda p: -len(p[0])):
            local.set_mtime(parts, mtime_ns)
    finally:
        local.close()
    tree.result.seconds = time.monotonic() - began
    return tree.result


def walk_tree(
    target: Target,
    options: Options,
    tree_options: TreeOptions,
    on_line: Callable[[str, str], None],
) -> tuple[list[TreeEntry], TreeResult]:
    """Every entry under the remote folder (``ls -r``), sorted by path."""
    tree = Tree(target, options, tree_options, None, on_line)
    run_tree(tree)
    return sorted(tree.found, key=lambda e: os.fsencode(e.path)), tree.result


__all__ = [
    "Tree",
    "TreeEntry",
    "TreeLimitError",
    "TreeOptions",
    "TreeResult",
    "download_tree",
    "walk_tree",
]
