"""The download form: Server, Port, File, Save to, and a Download button.

The terminal descendant of the book's getfile GUI form. Every field is
checked as it is typed; Enter anywhere in the form (or the Download button)
asks for a download, and only a form whose fields are all valid does so.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.validation import Function, Integer, ValidationResult, Validator
from textual.widgets import Button, Input, Label, Static
from textual.widgets.input import Selection

from getfile_core import Target, UnsafeName, UsageError, parse_url, safe_local_name
from tui.groups import Connections
from tui.screens.folder_picker import FolderPickerScreen
from tui.screens.remote_browser import RemoteBrowserScreen
from tui.screens.remote_browser import Selection as Picked
from tui.text import printable

HINT = "Enter downloads · Tab moves · ctrl+p commands"


def _is_host(value: str) -> bool:
    text = value.strip()
    return bool(text) and text.isprintable() and " " not in text and "/" not in text


def _is_file(value: str) -> bool:
    try:
        safe_local_name(value)
    except UnsafeName:
        return False
    return True


def expand_folder(value: str) -> str:
    return os.path.expanduser(value.strip())


def _is_writable_folder(value: str) -> bool:
    folder = expand_folder(value)
    return bool(folder) and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


FIELD_NAMES = {"host": "Server", "port": "Port", "file": "File", "dest": "Save to"}


@dataclass(frozen=True)
class DownloadRequest:
    target: Target
    folder: str
    connections: Connections | None = None


@dataclass(frozen=True)
class GroupRequest:
    """Entries of one remote folder (``server.path``), downloaded together into ``folder``."""

    server: Target
    names: tuple[bytes, ...]
    folder: str
    connections: Connections | None = None


class DownloadForm(Vertical):
    """Four fields and a button; posts ``DownloadForm.Submitted`` with a valid request."""

    BORDER_TITLE = "Download"

    class Submitted(Message):
        def __init__(self, request: DownloadRequest) -> None:
            super().__init__()
            self.request = request

    class Browse(Message):
        """The user wants to pick the file from the server's listing."""

    class GroupChosen(Message):
        """Several entries (or a folder) were selected in the listing: download them."""

        def __init__(self, request: GroupRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(
        self, host: str = "", port: str = "", file: str = "", dest: str = "", **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._initial = {"host": host, "port": port, "file": printable(file), "dest": dest}
        #: The File field shows printable text only (an ESC in a path must not reach the
        #: terminal; ``\\xff`` stands for a byte that is not UTF-8). While it shows exactly
        #: ``_raw_file[0]``, the request asks for the bytes ``_raw_file[1]``.
        self._raw_file: tuple[str, bytes] | None = None
        self.url_problem = ""
        #: Segments and mirrors for the downloads started from here (``None``: settings').
        self.connections: Connections | None = None
        if file and printable(file) != file:
            self._raw_file = (printable(file), os.fsencode(file))

    def compose(self) -> ComposeResult:
        validators: dict[str, list[Validator]] = {
            "host": [Function(_is_host, "Server: a host name or address, no spaces")],
            "port": [Integer(1, 65535, "Port: a number from 1 to 65535")],
            "file": [Function(_is_file, "File: the path of a file on the server")],
            "dest": [Function(_is_writable_folder, "Save to: an existing folder you can write to")],
        }
        placeholders = {
            "host": "host name or address, or paste a getfile:// URL",
            "port": "50001",
            "file": "path on the server",
            "dest": "folder",
        }
        with Horizontal(classes="form-row"):
            yield Label("Server", classes="field-label")
            yield self._input("host", placeholders, validators)
            yield Label("Port", classes="port-label")
            yield self._input("port", placeholders, validators, restrict=r"[0-9]*", max_length=5)
        with Horizontal(classes="form-row"):
            yield Label("File", classes="field-label")
            yield self._input("file", placeholders, validators)
            yield Button("List…", id="browse", compact=True)
            yield Static("", classes="button-gap")  # keeps List… above Folder…
        with Horizontal(classes="form-row"):
            yield Label("Save to", classes="field-label")
            yield self._input("dest", placeholders, validators)
            yield Button("Folder…", id="pick-folder", compact=True)
            yield Button("Download", id="download", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.border_subtitle = HINT

    def _input(
        self,
        key: str,
        placeholders: dict[str, str],
        validators: dict[str, list[Validator]],
        **extra: object,
    ) -> Input:
        return Input(
            self._initial[key],
            placeholder=placeholders[key],
            id=key,
            validators=validators[key],
            compact=True,
            **extra,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------ values

    def field(self, key: str) -> Input:
        return self.query_one(f"#{key}", Input)

    def set_values(self, **values: str) -> None:
        for key, value in values.items():
            self.field(key).value = value

    def focus_end(self, key: str) -> None:
        """Focus a field with the cursor after its text and nothing selected (focus alone
        selects everything, so the next key would replace the file just picked)."""
        field = self.field(key)
        field.focus()

        def to_end() -> None:
            field.action_end()
            field.selection = Selection.cursor(len(field.value))

        self.call_after_refresh(to_end)

    def focus_first_gap(self) -> None:
        """Jump into the form: its first wrong field, else File."""
        self.focus_end(next((key for key, _ in self.problems(mark=False)), "file"))

    def browse(self, tokens: dict[str, bytes]) -> None:
        """Pick the File from the server's listing (getfile servers only); ``tokens`` are
        the download controller's, so a token typed in the listing serves the downloads."""
        address = self.server_address()
        if address is None:
            return  # the form shows why
        folder = posixpath.dirname(self.file_path())
        self.app.push_screen(RemoteBrowserScreen(*address, folder, tokens), self.file_chosen)

    def pick_folder(self) -> None:
        """The Folder field from a folder picker (a dialog)."""
        picker = FolderPickerScreen(self.field("dest").value)
        self.app.push_screen(picker, self.folder_chosen)

    def folder_chosen(self, folder: str | None) -> None:
        if folder:
            self.set_values(dest=folder)
            self.focus_end("dest")

    def set_connections(self, connections: Connections | None) -> None:
        """Segments and mirrors for the next downloads; the box's title says them."""
        self.connections = connections
        words = connections.describe() if connections is not None else ""
        self.border_title = "Download" + (f" · {words}" if words else "")

    def file_chosen(self, path: bytes | Picked | None) -> None:
        """A file picked in the server's listing, or a selection (``None``: nothing picked)."""
        if isinstance(path, Picked):
            self.selection_chosen(path)
            return
        if path:
            self.set_file(path)
            self.focus_end("file")

    def selection_chosen(self, selection: Picked) -> None:
        address = self.server_address()
        dest = self.field("dest")
        result = dest.validate(dest.value)
        if address is None or not selection.names:
            return
        if result is not None and not result.is_valid:
            dest.focus()
            self._show_hint(result)
            return
        server = Target(host=address[0], port=address[1], path=selection.folder)
        folder = expand_folder(dest.value)
        request = GroupRequest(server, selection.names, folder, self.connections)
        self.post_message(self.GroupChosen(request))

    def set_file(self, path: bytes) -> None:
        """Show a remote path readably, and remember the exact bytes to request."""
        shown = printable(path)
        self._raw_file = (shown, path)
        self.field("file").value = shown

    def server_address(self) -> tuple[str, int] | None:
        """(host, port) if both are valid; else ``None``, the bad one focused, the reason shown."""
        for key in ("host", "port"):
            field = self.field(key)
            result = field.validate(field.value)
            if result is not None and not result.is_valid:
                field.focus()
                self._show_hint(result)
                return None
        return self.field("host").value.strip(), int(self.field("port").value)

    def file_path(self) -> bytes:
        """The path to request: the raw bytes behind the File field's text."""
        value = self.field("file").value.strip()
        if self._raw_file is not None and self._raw_file[0] == value:
            return self._raw_file[1]
        return os.fsencode(value)

    def fill_from_url(self, url: str) -> bool:
        """Spread a pasted ``getfile://HOST[:PORT]/PATH`` over the fields; ``False`` (and
        the reason kept in ``url_problem``) for a URL that is not one (port 0, no path)."""
        try:
            target = parse_url(url.strip())
        except UsageError as error:
            self.url_problem = error.message
            return False
        self.set_values(host=printable(target.host), port=str(target.port))
        self.set_file(target.path)
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not event.value.isprintable():
            # A paste with an ESC or a newline in it: keep the bytes, show them spelled out.
            if event.input.id == "file":
                self.set_file(os.fsencode(event.value))
            else:
                event.input.value = printable(event.value)
            return
        pasted_url = event.value.strip().startswith(("getfile://", "getfiles://"))
        if event.input.id in ("host", "file") and pasted_url:
            # A URL pasted into Server or File fills all three fields (a bad one says why).
            if self.fill_from_url(event.value):
                self.focus_end("file")
                return
            self._show_text(f"URL: {printable(self.url_problem)}", error=True)
            return
        self._show_hint(event.validation_result)

    def _show_hint(self, result: ValidationResult | None) -> None:
        """The reason a field is wrong, or the usual hint, in the box's lower edge.

        Errors are bold as well as red, so they stand out without colour too.
        """
        invalid = result is not None and not result.is_valid
        self._show_text(result.failure_descriptions[0] if invalid else HINT, error=invalid)  # type: ignore[union-attr]

    def _show_text(self, text: str, *, error: bool) -> None:
        self.border_subtitle = Content(text)
        self.set_class(error, "-error")

    def problems(self, *, mark: bool = True) -> list[tuple[str, str]]:
        """(field id, reason) for each field that is not valid, in form order.

        ``mark=False`` only asks: an empty form at start-up is not a form full of
        mistakes, so it is not painted red before anyone typed.
        """
        found = []
        for key in FIELD_NAMES:
            widget = self.field(key)
            if mark:
                result = widget.validate(widget.value)
            else:
                result = ValidationResult.merge(
                    [v.validate(widget.value) for v in widget.validators]
                )
            if result is not None and not result.is_valid:
                found.append((key, result.failure_descriptions[0]))
        return found

    # ------------------------------------------------------------ submit

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "download":
            self.submit()
        elif event.button.id == "pick-folder":
            self.pick_folder()
        elif event.button.id == "browse":
            self.post_message(self.Browse())

    def submit(self) -> bool:
        """Post a request if every field is valid; otherwise focus the first bad one."""
        problems = self.problems()
        if problems:
            key = problems[0][0]
            field = self.field(key)
            field.focus()
            self._show_hint(field.validate(field.value))
            return False
        self._show_hint(None)
        target = Target(
            host=self.field("host").value.strip(),
            port=int(self.field("port").value),
            path=self.file_path(),
        )
        folder = expand_folder(self.field("dest").value)
        self.post_message(self.Submitted(DownloadRequest(target, folder, self.connections)))
        return True
