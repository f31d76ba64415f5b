"""Every bound the server enforces, and fitting them to the process's descriptor limit."""

from __future__ import annotations

import contextlib
import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerLimits:
    """Every bound the server enforces; all but ``backlog`` have a ``getfile serve`` flag."""

    #: Files being sent at once. Extended clients beyond it get ``busy``;
    #: legacy clients (who cannot be told) wait for a slot up to ``legacy_wait``.
    max_transfers: int = 64
    #: Open connections at once, idle ones included; beyond it new ones are closed.
    max_connections: int = 2048
    #: Seconds a client has to send its whole request line (slow-loris bound);
    #: with TLS, also the bound on the handshake.
    request_timeout: float = 10.0
    #: Seconds a client may go without accepting a single byte before it is cut.
    #: Any progress, however small, restarts the clock: a reader at 1 KiB/s is
    #: served to the end.
    stall_timeout: float = 30.0
    #: Listen backlog: large enough to absorb a burst of 1000 connects.
    backlog: int = 1024
    #: Seconds running transfers get to finish after a stop is asked for.
    grace: float = 10.0
    #: Bytes per second per connection (``None``: as fast as the client reads).
    rate: float | None = None
    #: Listings being built at once; more wait their turn (within ``request_timeout``).
    max_listings: int = 4
    #: Seconds a legacy client may wait for a transfer slot. The book's
    #: protocol cannot say "busy" (the client would save an empty file and
    #: print success), so waiting longer than an extended client is the
    #: kinder answer; still bounded, and logged when it runs out.
    legacy_wait: float = 300.0
    #: Requests one persistent (``keep``) connection may carry; then it is
    #: closed and the client opens another. Bounds what one connection can
    #: make the server do, and lets a rolling restart drain kept clients.
    max_requests: int = 1000

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ValueError("a rate limit must be positive (None for unlimited)")
        if self.max_requests < 1:
            raise ValueError("a connection carries at least one request")


#: Descriptors kept for the process itself (listeners, log, event loop, imports).
FD_RESERVE = 64


def descriptors_needed(limits: ServerLimits) -> int:
    """Enough that ``fit_to_fd_limit`` shrinks neither the connection cap nor the backlog."""
    return 2 * limits.max_connections + 8 * limits.backlog + limits.max_transfers + FD_RESERVE


def raise_fd_limit(limits: ServerLimits) -> None:
    """Lift the soft RLIMIT_NOFILE to what ``limits`` need, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = descriptors_needed(limits)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def fit_to_fd_limit(limits: ServerLimits) -> tuple[int, int]:
    """``(max_connections, backlog)``, lowered to what the descriptor limit can carry.

    A connection may hold a socket, a file and (while sending) a duplicate of
    its socket. asyncio accepts up to ``backlog`` sockets per wake-up, before
    any handler can turn the surplus away, and the surplus closes a loop turn
    or two later: three batches can be in flight. Admitting more than fits
    makes accept() fail with EMFILE, and the event loop then stops accepting
    anyone for a while; turning the surplus away at once keeps the door open
    for the next client.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections, limits.backlog
    spare = max(0, soft - FD_RESERVE - 2 * limits.max_transfers)
    backlog = max(16, min(limits.backlog, spare // 8))
    connections = max(1, min(limits.max_connections, (spare - 3 * backlog) // 2))
    return connections, backlog
