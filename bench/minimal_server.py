"""The yardstick server: a minimal asyncio sendfile server, about as fast as Python serves.

It speaks the legacy request (``path\\n``, then the bytes, then close), has no
limits, no log, no digest: whatever getfile's server costs on top of this is
the price of its features. Prints ``listening on PORT`` once bound.

    python -m bench.minimal_server ROOT [PORT]
"""

from __future__ import annotations

import asyncio
import os
import sys


async def serve(root: str, port: int) -> None:
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            name = (await reader.readline()).rstrip(b"\n")
            with open(os.path.join(root, os.path.basename(os.fsdecode(name))), "rb") as file:
                await loop.sendfile(writer.transport, file)
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("listening on", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
