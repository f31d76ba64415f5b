"""The yardstick client: 20 lines of blocking sockets, no checks, no digest.

Sends the legacy request and copies everything into OUT with ``recv_into`` a
reused 1 MiB buffer. ``getfile get`` is compared against this, whole process
against whole process.

    python bench/minimal_client.py HOST PORT PATH OUT
"""

import os
import socket
import sys

host, port, path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sock = socket.create_connection((host, port))
sock.sendall(path.encode() + b"\n")
buffer = bytearray(1024 * 1024)
view = memoryview(buffer)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
while count := sock.recv_into(buffer):
    os.write(fd, view[:count])
os.close(fd)
sock.close()
