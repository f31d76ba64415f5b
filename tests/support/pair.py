"""An in-memory client/server pair over the pure protocol, as h11's ``ConnectionPair``.

Both ends are the real state machines (``ClientConnection`` and
``ServerConnection``); only the wire is a function call. A conversation
reads as what each side does, and every byte one side emits is what the
other side parses, so the framing rules are tested together without a
socket, a thread or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from getfile_core.protocol import (
    NEED_DATA,
    AuthProof,
    ClientConnection,
    EndOfMessage,
    LegacyRequest,
    Request,
    Response,
    ServerConnection,
)

#: More events than any one message can produce: a client that never ends fails here.
MAX_EVENTS = 100


def drain(client: ClientConnection) -> list[object]:
    """Every event the client has ready, up to and including the end of the message."""
    events: list[object] = []
    for _ in range(MAX_EVENTS):
        event = client.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, EndOfMessage):
            return events
    raise AssertionError("client produced events without end")


@dataclass
class ConnectionPair:
    """One client and one server connection wired together in memory."""

    client: ClientConnection
    server: ServerConnection = field(default_factory=ServerConnection)

    @classmethod
    def asking(cls, request: Request | LegacyRequest) -> ConnectionPair:
        return cls(ClientConnection(request))

    def send_request(self) -> Request | LegacyRequest | AuthProof:
        """The client's request crosses; the event the server parsed from it."""
        return self.to_server(self.client.request_bytes())

    def to_server(self, data: bytes) -> Request | LegacyRequest | AuthProof:
        """Bytes from the client reach the server; the server must make an event of them."""
        self.server.receive_data(data)
        event = self.server.next_event()
        assert event is not NEED_DATA, f"server needs more than {data!r}"
        return event  # type: ignore[return-value]

    def respond(self, response: Response, body: bytes = b"") -> list[object]:
        """The server answers (head, then ``body``); every event the client then has."""
        self.client.receive_data(self.server.send(response) + body)
        return drain(self.client)

    def to_client(self, data: bytes) -> list[object]:
        """Raw bytes reach the client (more body, a trailer); the events it then has."""
        self.client.receive_data(data)
        return drain(self.client)

    def close_server_side(self) -> list[object]:
        """The server closes its end: what the client makes of the end of the stream."""
        self.client.receive_data(b"")
        return drain(self.client)
