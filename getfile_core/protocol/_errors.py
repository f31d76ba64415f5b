"""The protocol's own errors, all ``ProtocolError``s, each with a one-line message."""

from __future__ import annotations

from getfile_core.errors import ProtocolError
from getfile_core.protocol._events import SUPPORTED


class UnsupportedVersion(ProtocolError):
    """A client speaks a newer protocol; the server answers 505 and closes."""

    def __init__(self, version: int) -> None:
        spoken = " and ".join(str(v) for v in SUPPORTED)
        super().__init__(
            f"protocol version {version} is not supported (this server speaks {spoken})"
        )
        self.version = version


class LegacySilence(ProtocolError):
    """The server closed without a byte: the book's server failing on our request."""

    def __init__(self) -> None:
        super().__init__("server closed without answering (a legacy getfile server?)")


class ShortBody(ProtocolError):
    """The connection ended before all announced bytes arrived."""

    def __init__(self, missing: int) -> None:
        super().__init__(f"connection closed with {missing} bytes still to come")
        self.missing = missing


class MissingTrailer(ShortBody):
    """The body arrived whole but the connection ended before its digest trailer.

    An interruption like any other: resuming at the file's size costs no
    body bytes and brings the digest.
    """

    def __init__(self) -> None:
        ProtocolError.__init__(self, "connection closed before the digest trailer")
        self.missing = 0
