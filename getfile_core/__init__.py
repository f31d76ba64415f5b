"""getfile: a safe, fast descendant of Programming Python's socket file server.

Kept import-light on purpose: ``getfile --version`` must start about as fast
as ``python -c "import asyncio"``, so nothing heavy is imported here.
"""

__version__ = "1.0.0"
DEFAULT_PORT = 50001
