"""From flags to the library's options: the token, TLS, and the client's ``Options``.

Shared by ``get``, ``ls`` and ``serve``, so a token is found, and refused,
the same way by every command.
"""

from __future__ import annotations

import argparse
import os

from getfile_core import auth
from getfile_core.client import Options
from getfile_core.errors import UsageError
from getfile_core.safe_text import printable


def load_token(path: str | None) -> bytes | None:
    """The shared secret from ``--token-file`` or ``$GETFILE_TOKEN``; ``None`` for no auth.

    ``GETFILE_TOKEN=`` (set but empty) is refused rather than read as "no
    token": it is what a script produces when the variable it meant to copy
    was unset, and a server started that way would serve everyone.
    """
    if path is None and os.environ.get(auth.TOKEN_ENV) == "":
        raise UsageError(
            f"${auth.TOKEN_ENV} is set but empty: unset it for no token, or give the token"
        )
    try:
        return auth.load_token(path)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read token: {error}") from None


def check_output(folder: str) -> None:
    """``-o DIR`` must be an existing folder: one line and exit 2 before anything is fetched."""
    if not os.path.isdir(folder):
        raise UsageError(f"destination folder does not exist: {printable(folder)}")


def client_options(
    args: argparse.Namespace,
    *,
    legacy: bool | None = None,
    retries: int | None = None,
    rate: float | None = None,
) -> Options:
    """The ``Options`` for ``get`` and ``ls`` from their flags.

    ``rate`` becomes one ``RateLimit`` in these options, so every download
    given them shares it: ``get --limit-rate 2M a b c`` moves 2 MiB/s in
    all, as curl's flag does for one command.
    """
    token = load_token(args.token_file)
    ssl_context = None
    if args.cafile or args.pin or args.insecure:
        from getfile_core.tls import client_context

        ssl_context = client_context(args.cafile, pin=args.pin, insecure=args.insecure)
    more: dict[str, object] = {}
    if retries is not None:
        more["retries"] = retries
    if rate is not None:
        from getfile_core.ratelimit import RateLimit

        more["rate_limit"] = RateLimit(rate)
    return Options(
        timeout=args.timeout,
        legacy=legacy,
        token=token,
        ssl_context=ssl_context,
        pin_sha256=args.pin,
        **more,  # type: ignore[arg-type]
    )
