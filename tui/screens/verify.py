"""Verify a finished download against a checksum people publish, in one dialog.

Type ``sha256:HEX``, a bare HEX (its length says the algorithm, as GNU's
tools do), or the path of a checksum file (``SHA256SUMS``, ``B3SUMS``, BSD
``SHA256 (x) = …`` lines): the dialog finds the line for this file
(``getfile_core.checksums``), hashes the file in a thread worker (hashlib
releases the GIL over 2 KiB updates, so the UI stays live: ~1 GiB/s for
sha256 here), shows a bar meanwhile, then the verdict and the full digest,
which c copies to the clipboard (OSC 52: it works over SSH in terminals
that allow it).
"""

from __future__ import annotations

import os

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, ProgressBar
from textual.worker import get_current_worker

from getfile_core import (
    ChecksumError,
    ExpectedDigest,
    find_expected,
    load_checksum_file,
    parse_checksum,
)
from tui.messages import LogLine
from tui.text import plain, printable

CHUNK = 1024 * 1024


def expected_for(text: str, name: str) -> ExpectedDigest:
    """What the user typed, as a digest for ``name``: a checksum file's path, or ALGO:HEX."""
    text = text.strip()
    path = os.path.expanduser(text)
    if text and os.path.isfile(path):
        return find_expected(load_checksum_file(path), name)
    return parse_checksum(text)


class VerifyScreen(ModalScreen[None]):
    """Ask, hash with a bar, show the verdict and the full digest (c copies it)."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("c", "copy", "Copy digest", show=False),
    ]

    def __init__(self, name: str, path: str) -> None:
        super().__init__()
        self.file_name = name  # from a server: shown as plain text only
        self.path = path
        self.digest = ""
        self.verdict: bool | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Content(f"Verify {printable(self.file_name)}"), classes="dialog-title")
            yield Label(
                "Paste sha256:HEX (or a bare HEX), or type the path of a checksum file "
                "(SHA256SUMS, B3SUMS, BSD lines). Enter checks; Esc closes.",
                classes="dialog-text",
            )
            yield Input(placeholder="sha256:… or ~/Downloads/SHA256SUMS", id="checksum",
                        compact=True, max_length=4096)  # fmt: skip
            yield ProgressBar(total=100, show_eta=False, id="hashing")
            yield Label("", id="verdict", classes="dialog-note", markup=False)
            yield Label("", id="digest", classes="dialog-note", markup=False)

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False
        field.focus()
        self.query_one(ProgressBar).display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            expected = expected_for(event.value, self.file_name)
        except (ChecksumError, OSError) as error:
            message = getattr(error, "message", None) or getattr(error, "strerror", None)
            self._say(f"✗ {message or error}")
            return
        self.query_one(ProgressBar).display = True
        self._say(f"hashing with {expected.algorithm}…")
        self._hash(expected)

    def _say(self, text: str) -> None:
        self.query_one("#verdict", Label).update(plain(text))

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def _hash(self, expected: ExpectedDigest) -> None:
        worker = get_current_worker()
        hasher = expected.hasher()
        try:
            size = os.path.getsize(self.path) or 1
            done = 0
            with open(self.path, "rb") as stream:
                while chunk := stream.read(CHUNK):
                    if worker.is_cancelled:
                        return
                    hasher.update(chunk)
                    done += len(chunk)
                    self.app.call_from_thread(self._progress, 100 * done / size)
        except OSError as error:
            self.app.call_from_thread(self._say, f"✗ cannot read {self.path}: {error.strerror}")
            return
        self.app.call_from_thread(self._finished, expected, hasher.hexdigest())

    def _progress(self, percent: float) -> None:
        self.query_one(ProgressBar).update(progress=percent)

    def _finished(self, expected: ExpectedDigest, digest: str) -> None:
        self.digest = f"{expected.algorithm}:{digest}"
        self.verdict = digest == expected.hex
        if self.verdict:
            self._say(f"✓ matches ({expected.source}). c copies the digest.")
        else:
            self._say(f"✗ MISMATCH: expected {expected.hex} ({expected.source}). c copies ours.")
        self.query_one("#digest", Label).update(Content(self.digest))
        # The log keeps the verdict and the whole digest after the dialog closes.
        verdict = "matches" if self.verdict else f"MISMATCH (expected {expected.hex})"
        self.post_message(
            LogLine(f"{self.file_name}: {self.digest} {verdict} ({expected.source})",
                    "ok" if self.verdict else "error")
        )  # fmt: skip
        self.set_focus(None)  # so c copies rather than types (Tab goes back to the field)

    def action_copy(self) -> None:
        if self.digest:
            self.app.copy_to_clipboard(self.digest)
            self.app.notify("Digest copied (OSC 52).", timeout=2)

    def action_close(self) -> None:
        self.workers.cancel_group(self, "verify")
        self.dismiss(None)
