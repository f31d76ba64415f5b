"""The legacy getfile, rewritten from ``shared/notes/legacy-getfile.md``.

A test and benchmark peer only: it behaves as the book's program does (thread
per client, ``listen(5)``, 1 KiB blocks, any readable path, silent close on
error, the client overwriting the basename in its current folder). The one
addition: the server prints the port it bound, so tests can use port 0.

    python legacy_getfile.py -mode server [-port N] [-host H]
    python legacy_getfile.py [-mode client] -file F [-port N] [-host H]
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

BLOCK = 1024
DEFAULT_PORT = 50001


def now() -> str:
    return time.ctime(time.time())


def serve_one(conn: socket.socket) -> None:
    reader = conn.makefile("r")
    name = reader.readline()[:-1]
    try:
        with open(name, "rb") as handle:
            while True:
                block = handle.read(BLOCK)
                if not block:
                    break
                conn.sendall(block)
    except Exception:
        print("Error downloading file on server:", name, flush=True)
    reader.close()
    conn.close()


def server(host: str, port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(5)
    print("Server listening on port", listener.getsockname()[1], flush=True)
    while True:
        conn, addr = listener.accept()
        print("Server connected by", addr, "at", now(), flush=True)
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def client(host: str, port: int, name: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect((host, port))
    sock.send((name + "\n").encode())
    with open(os.path.basename(name), "wb") as out:
        while True:
            block = sock.recv(BLOCK)
            if not block:
                break
            out.write(block)
    sock.close()
    print("Client got", name, "at", now(), flush=True)


def main(argv: list[str]) -> None:
    args = dict(zip(argv[::2], argv[1::2], strict=False))
    mode = args.get("-mode", "client")
    host = args.get("-host", "localhost")
    port = int(args.get("-port", DEFAULT_PORT))
    if mode == "server":
        server("" if host == "localhost" else host, port)
    else:
        client(host, port, args["-file"])


if __name__ == "__main__":
    main(sys.argv[1:])
