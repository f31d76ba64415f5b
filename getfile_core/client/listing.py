"""LIST: every entry of a remote folder, page after page, each page on its own connection."""

from __future__ import annotations

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client.session import Session, raise_for_status
from getfile_core.client.state import Options, Phase, TransferState
from getfile_core.errors import LegacyServerError, ProtocolError
from getfile_core.protocol import LATEST, Request, Verb


def list_folder(
    target: Target, options: Options, state: TransferState, max_entries: int = 10_000
) -> tuple[list[protocol.Entry], bool]:
    """Every entry of a remote folder, page after page, up to ``max_entries``.

    Returns the entries and whether the listing was cut at ``max_entries``.
    """
    entries: list[protocol.Entry] = []
    after: bytes | None = None
    state.phase = Phase.CONNECTING
    while True:
        session = Session(target, options, state)
        try:
            try:
                request = Request(Verb.LIST, target.path or b".", after=after, version=LATEST)
                response = session.open(request)
            except protocol.LegacySilence:
                raise LegacyServerError(
                    "listing needs a getfile server; this one closed without answering "
                    "(a legacy server, or a TLS one: try getfiles://)"
                ) from None
            assert response is not None
            raise_for_status(response)
            assert response.entries is not None
            if response.next_after is not None and not response.entries:
                # Every page must make progress, or a server could page us forever.
                raise ProtocolError("listing page with a next cursor but no entries")
            body = session.read_body(response.body_length)
            entries.extend(protocol.decode_listing(body, response.entries))
        finally:
            session.close()
        if response.next_after is None:
            state.phase = Phase.DONE
            return entries, False
        if len(entries) >= max_entries:
            state.phase = Phase.DONE
            return entries[:max_entries], True
        if after is not None and response.next_after <= after:
            raise ProtocolError("listing cursor went backwards")
        after = response.next_after
