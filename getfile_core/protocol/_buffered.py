"""Input buffering shared by both state machines, with a hard cap."""

from __future__ import annotations

from getfile_core.errors import ProtocolError


class _Buffered:
    """Shared input buffering with a hard cap, so a peer cannot make us hoard bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False

    def receive_data(self, data: bytes) -> None:
        """Feed bytes that arrived; ``b""`` means the peer closed its side."""
        if self._eof and data:
            raise ProtocolError("data after end of stream")
        if data:
            self._buffer += data
        else:
            self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet turned into events (0 between two whole requests)."""
        return len(self._buffer)

    def _take_line(self, limit: int) -> bytes | None:
        index = self._buffer.find(b"\n", 0, limit)
        if index < 0:
            if len(self._buffer) >= limit:
                raise ProtocolError("line is longer than the protocol allows")
            return None
        line = bytes(self._buffer[:index])
        del self._buffer[: index + 1]
        return line
