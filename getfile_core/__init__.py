"""getfile: a safe, fast descendant of Programming Python's socket file server.

The public API is the names in ``__all__``; everything else is internal and
may change. Kept import-light on purpose: ``getfile --version`` must start
about as fast as ``python -c "import asyncio"``, so names are imported on
first use (``getfile_core._lazy``).
"""

from __future__ import annotations

from getfile_core._lazy import lazy_exports

__version__ = "1.0.0"
DEFAULT_PORT = 50001

_EXPORTS = {
    # The address of a file on a server, and its parser.
    "Target": ".address",
    "parse_url": ".address",
    "format_address": ".address",
    # Downloading and listing.
    "fetch": ".client",
    "list_folder": ".client",
    "download": ".client",
    "Options": ".client",
    "Progress": ".client",
    "FetchResult": ".client",
    "TransferState": ".client",
    "Destination": ".client",
    "PART_SUFFIX": ".client",
    "Phase": ".client",
    "RetryNotice": ".client",
    "part_name": ".client",
    "UnsafeName": ".client",
    "safe_local_name": ".client",
    # Serving.
    "FileServer": ".server",
    "ServerLimits": ".server",
    "AccessRecord": ".server",
    # Sizes and rates for people, and the shared rate limit.
    "human_size": ".units",
    "human_rate": ".units",
    "parse_rate": ".units",
    "RateLimit": ".ratelimit",
    # Checksums people publish (SHA256SUMS, b3sum, BSD tags).
    "ChecksumError": ".checksums",
    "ChecksumMismatchError": ".errors",
    "ExpectedDigest": ".checksums",
    "expected_digest": ".checksums",
    "parse_checksum": ".checksums",
    "load_checksum_file": ".checksums",
    "find_expected": ".checksums",
    # Errors.
    "GetfileError": ".errors",
    "UsageError": ".errors",
    "ConnectError": ".errors",
    "UnauthorizedError": ".errors",
    "LegacyServerError": ".errors",
    # Text from outside made safe to show: escapes instead of terminal controls.
    "printable": ".safe_text",
}
__all__ = ["DEFAULT_PORT", "__version__", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~1.7 ms)
if TYPE_CHECKING:
    from getfile_core.address import Target, format_address, parse_url
    from getfile_core.checksums import (
        ChecksumError,
        ExpectedDigest,
        expected_digest,
        find_expected,
        load_checksum_file,
        parse_checksum,
    )
    from getfile_core.client import (
        PART_SUFFIX,
        Destination,
        FetchResult,
        Options,
        Phase,
        Progress,
        RetryNotice,
        TransferState,
        UnsafeName,
        download,
        fetch,
        list_folder,
        part_name,
        safe_local_name,
    )
    from getfile_core.errors import (
        ChecksumMismatchError,
        ConnectError,
        GetfileError,
        LegacyServerError,
        UnauthorizedError,
        UsageError,
    )
    from getfile_core.ratelimit import RateLimit
    from getfile_core.safe_text import printable
    from getfile_core.server import AccessRecord, FileServer, ServerLimits
    from getfile_core.units import human_rate, human_size, parse_rate
