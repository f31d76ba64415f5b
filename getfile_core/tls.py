"""TLS contexts from the standard library, built only when TLS is asked for."""

from __future__ import annotations

import ssl

from getfile_core.errors import UsageError


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot load TLS certificate/key: {error}") from None
    return context


def client_context(
    cafile: str | None = None, *, pin: str | None = None, insecure: bool = False
) -> ssl.SSLContext:
    """Verify against the system's CAs, a CA file, or a pinned certificate only.

    A pin replaces CA trust (the certificate is the identity, as with SSH host
    keys); ``insecure`` is the only way to skip verification altogether.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cafile:
        try:
            context.load_verify_locations(cafile)
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"cannot load CA file {cafile}: {error}") from None
    if pin or insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
