"""Shared-secret challenge-response: the token proves itself without crossing the wire.

The server sends a fresh random challenge per connection; the client answers
with HMAC-SHA256(token, label || challenge || request line). Binding the
request line means a captured proof cannot be replayed for another file, and
the fresh challenge means it cannot be replayed at all.
"""

from __future__ import annotations

import os

TOKEN_ENV = "GETFILE_TOKEN"
_LABEL = b"getfile-auth/1\x00"


def compute_mac(token: bytes, challenge: bytes, request_line: bytes) -> bytes:
    # Imported here, not at the top: hashlib loads OpenSSL (~2.5 ms), which a
    # download without a token never needs (``getfile get`` start-up, issue 15).
    import hashlib
    import hmac

    return hmac.new(token, _LABEL + challenge + b"\x00" + request_line, hashlib.sha256).digest()


def verify(token: bytes, challenge: bytes, request_line: bytes, mac: bytes) -> bool:
    import hmac

    return hmac.compare_digest(compute_mac(token, challenge, request_line), mac)


def load_token(path: str | None) -> bytes | None:
    """The token from a file (first line, stripped) or ``$GETFILE_TOKEN``; never argv."""
    if path:
        with open(path, "rb") as handle:
            lines = handle.read(4096).splitlines()
        token = lines[0].strip() if lines else b""
        if not token:
            raise ValueError(f"token file {path} is empty")
        return token
    env = os.environ.get(TOKEN_ENV)
    return env.encode() if env else None
