"""One file of a tree: decided against what is on disk, fetched, verified, saved.

A small file (``SMALL_BODY`` or less) rides the loop (``multiplex``): its
answer comes whole into memory, is checked against the server's digest,
and goes to the disk thread (``tree_disk``), which writes it in one go; a
cut answer (a reset, a Ctrl-C) is written as ``NAME.getfile-part`` and the
next attempt, or run, asks only for the rest. A big file goes to a
``pipeline.Worker`` thread, streams into ``NAME.getfile-part`` as it
arrives (so a cut leaves a part the next attempt resumes), and is
verified whole.
"""

from __future__ import annotations

import os
import stat

from getfile_core import protocol
from getfile_core.client.destination import Destination
from getfile_core.client.pipeline import BIG_FILE, SMALL_BODY, KeptConnection, Lane
from getfile_core.client.session import printable, raise_for_status
from getfile_core.client.tree_local import Parts, local_file
from getfile_core.digest import format_digest, hash_descriptor, new_hasher
from getfile_core.errors import (
    GetfileError,
    IntegrityError,
    LocalFileError,
    ProtocolError,
    RemoteError,
    local_error,
)
from getfile_core.protocol import LATEST, Entry, Request, Response, Status, Trailer, Verb

TYPE_CHECKING = False  # typing is not imported at run time (~2 ms of start-up)
if TYPE_CHECKING:
    from getfile_core.client.tree import Tree


class FileJob:
    """One file: planned when its request is built, saved when its answer is whole."""

    body_limit = SMALL_BODY

    def __init__(self, tree: Tree, parts: Parts, entry: Entry) -> None:
        self.tree = tree
        self.parts = parts
        self.entry = entry
        #: Body bytes its answer should carry, as listed (the multiplexer spreads by it).
        self.expected = entry.size
        self.lane = Lane.SMALL if entry.size <= SMALL_BODY else Lane.BIG
        self.alone = entry.size >= BIG_FILE
        self.interrupted = 0
        self.destination: Destination | None = None
        self.offset = 0
        self.counted_resume = False
        #: A small file's bytes already here (a part from an earlier attempt or run).
        self.prefix = b""
        #: The server refused the part's length (the file shrank): never resume it again.
        self.from_start = False
        #: This run wrote a ``NAME.getfile-part`` (a cut answer): the save removes it.
        self.left_part = False

    @property
    def shown(self) -> str:
        return "/".join(self.parts)

    def request(self) -> Request | None:
        if self.lane is Lane.SMALL:
            return self._small_request()
        return self._big_request()

    def _request(self) -> Request:
        self.tree.file_event(self.shown, "started")
        path = self.tree.path_of(self.parts)
        return Request(Verb.GET, path, offset=self.offset, version=LATEST, keep=True)

    def _skip_or_keep(self, there: os.stat_result) -> None:
        """A local file is at the name (and no ``overwrite``): skipped if the same, else kept."""
        tree, entry = self.tree, self.entry
        same = (there.st_size, there.st_mtime_ns) == (entry.size, entry.mtime_ns)
        if stat.S_ISREG(there.st_mode) and same:
            with tree.lock:
                tree.result.skipped += 1
                tree.bytes_resumed += entry.size
            tree.file_event(self.shown, "skipped")
            return
        with tree.lock:
            tree.result.kept += 1
            tree.result.errors.append(LocalFileError("a local file differs"))
            tree.bytes_total -= entry.size
        tree.on_line(self.shown, "differs from the server's; kept (--overwrite replaces it)")
        tree.file_event(self.shown, "kept")

    # ------------------------------------------------------------ small: the loop

    def _small_request(self) -> Request | None:
        tree = self.tree
        local = tree.local
        assert local is not None
        folder = self.parts[:-1]
        # A folder this run made holds nothing it did not put there: no look needed.
        if not self.prefix and not local.is_fresh(folder):
            if not tree.tree_options.overwrite:
                there = local.look(folder, self.parts[-1])
                if there is not None:
                    self._skip_or_keep(there)
                    return None
            kept = None
            if not self.from_start:
                kept = local.read_part(folder, self.parts[-1], self.entry.size - 1)
            if kept and not self.counted_resume:
                self.counted_resume = True
                with tree.lock:
                    tree.bytes_resumed += len(kept)
            self.prefix = kept or b""
        self.offset = len(self.prefix)
        return self._request()

    def cut(self, body: bytes) -> None:
        """The answer stopped after ``body`` (a lost connection, a cancel): keep what came.

        Written as ``NAME.getfile-part`` (so a Ctrl-C keeps it for the next
        run) and kept here: the next attempt asks only for the rest.
        """
        if not body:
            return
        data = self.prefix + body
        local = self.tree.local
        assert local is not None
        self.left_part = True  # even half-written
        try:
            local.keep_part(self.parts[:-1], self.parts[-1], data)
        except (GetfileError, OSError):
            return  # only a head start is lost: the file is asked for whole again
        self.prefix = data

    def complete(self, head: Response, body: bytes, trailer: Trailer | None) -> None:
        """The whole answer is in memory: verify it, then hand it to the disk thread."""
        if head.status is not Status.OK:
            self._refused(head)
            return
        if head.trailer:
            if trailer is None or trailer.digest is None:
                reason = printable(trailer.error if trailer else "") or "no reason given"
                raise IntegrityError(f"the server could not vouch for what it sent: {reason}")
            announced = trailer.digest
        elif head.digest is not None:
            announced = head.digest
        else:
            raise ProtocolError("the server announced no digest: refusing an unverifiable file")
        data = self.prefix + body if self.prefix else body
        hasher = new_hasher()
        hasher.update(data)
        if format_digest(hasher) != announced:
            if self.prefix:
                assert self.tree.local is not None
                self.tree.local.drop_part(self.parts[:-1], self.parts[-1])
                self.prefix = b""
            raise IntegrityError("digest mismatch (partial file removed)")
        tree = self.tree
        assert tree.disk is not None
        tree.disk.save(self, data, head.mtime_ns)

    def too_big(self) -> None:
        """The file grew past ``SMALL_BODY`` since it was listed: a thread streams it."""
        self.lane = Lane.BIG
        self.tree.queue.add(self, again=True)

    def saved(self, size: int) -> None:
        """Written under its name: ``size`` is the whole file's (``TreeResult.bytes``)."""
        tree = self.tree
        with tree.lock:
            tree.result.files += 1
            tree.result.bytes += size
        tree.file_event(self.shown, "done")

    # ------------------------------------------------------------ big: a thread

    def _big_request(self) -> Request | None:
        local = self.tree.local
        assert local is not None
        if self.destination is not None:  # sent before, never answered: start afresh
            self.destination.close()
            self.destination = None
        folder = local.folder(self.parts[:-1])
        try:
            return self._plan_big(folder, self.parts[-1])
        finally:
            os.close(folder)

    def _plan_big(self, folder: int, name: str) -> Request | None:
        tree, entry = self.tree, self.entry
        assert tree.local is not None
        overwrite = tree.tree_options.overwrite
        if not overwrite:
            there = local_file(folder, name)
            if there is not None:
                self._skip_or_keep(there)
                return None
        destination = Destination.in_folder_fd(
            folder, tree.local.display(self.parts[:-1]), name, overwrite=overwrite, resume=True
        )
        try:
            offset = destination.check()
        except BaseException:
            destination.close()
            raise
        if offset > entry.size:  # a leftover from another version of the file: start again
            offset = 0
        if offset and not self.counted_resume:
            self.counted_resume = True
            with tree.lock:
                tree.bytes_resumed += offset
        self.destination, self.offset = destination, offset
        return self._request()

    def answer(self, link: KeptConnection, head: Response) -> None:
        """A thread reads the answer: the body streams into the ``.part``, verified whole."""
        destination = self.destination
        assert destination is not None
        self.destination = None
        if head.status is not Status.OK:
            destination.close()
            self._refused(head)
            return
        if head.offset != self.offset:
            raise ProtocolError("server resumed from a different offset than asked")
        if head.digest is None and not head.trailer:
            raise ProtocolError("the server announced no digest: refusing an unverifiable file")
        try:
            fd = destination.open_part(self.offset)
            hasher = new_hasher()
            if self.offset:
                hash_descriptor(fd, self.offset, hasher)
            link.receive_file(fd, hasher, head.body_length)
            name = printable(self.parts[-1])
            announced = link.trailer(name, head.size) if head.trailer else head.digest
        except (IntegrityError, ProtocolError) as error:
            lied = not isinstance(error, protocol.ShortBody)
            destination.abandon(keep_part=not lied)
            raise
        except BaseException:
            destination.abandon(keep_part=True)
            raise
        if format_digest(hasher) != announced:
            destination.abandon(keep_part=False)
            self.give_up(IntegrityError("digest mismatch (partial file removed)"))
            return
        # The whole file (a resumed head included), not this attempt's bytes: through a
        # link that resets, the last attempt is a big file's tail ("3.53 MiB" of 20.5).
        size = destination.written()
        try:
            destination.commit(head.mtime_ns)
        except (LocalFileError, OSError) as error:
            destination.close()
            if not isinstance(error, GetfileError):
                error = local_error(error, f"cannot name {destination.final_path}")
            self.give_up(error)
            return
        self.saved(size)

    # ------------------------------------------------------------ either

    def _refused(self, head: Response) -> None:
        if head.status is Status.BAD_OFFSET and self.offset:
            self.offset = 0  # the part is longer than the file now: start it again
            self.prefix, self.from_start = b"", True
            self.tree.queue.add(self)  # counted again: the answer's ``done`` follows
            return
        special = "listed as a file but is a folder now; refused"
        self.give_up(refusal(head, Status.IS_A_DIRECTORY, special))

    def give_up(self, error: GetfileError, *, quiet: bool = False) -> None:
        if self.destination is not None:
            self.destination.abandon(keep_part=True)
            self.destination = None
        self.tree.fail(error, self.shown, quiet=quiet)
        self.tree.file_event(self.shown, "failed")


def refusal(head: Response, status: Status, special: str) -> GetfileError:
    """The error a refusal head means, with words of our own for one status."""
    if head.status is status:
        return RemoteError(special, head.status)
    try:
        raise_for_status(head)
    except RemoteError as error:
        return error
    return ProtocolError("an ok answer where a refusal was expected")
