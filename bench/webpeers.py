"""Servers the folders and parallel sections compare against, each configured in a temp folder.

Every one serves a folder read-only on 127.0.0.1 and runs in the
foreground (so ``Peer`` can stop it and what it forked): an rsync daemon,
``python -m http.server``, nginx, and ``getfile serve``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from bench import peers
from bench.peers import PYTHON, Peer

RSYNC_MODULE = "data"


def rsync_daemon(port: int, root: Path, config: Path) -> Peer:
    """``rsync --daemon`` serving ``root`` as module ``data``, read-only; config in ``config``."""
    config.mkdir(parents=True, exist_ok=True)
    as_root = "uid = root\ngid = root\n" if os.geteuid() == 0 else ""
    conf = config / "rsyncd.conf"
    conf.write_text(
        f"pid file = {config / 'rsyncd.pid'}\n"
        "use chroot = no\n"
        "read only = yes\n"
        f"{as_root}"
        f"[{RSYNC_MODULE}]\n"
        f"    path = {root}\n"
    )
    argv = ["rsync", "--daemon", "--no-detach", f"--config={conf}"]
    argv += ["--address=127.0.0.1", f"--port={port}", f"--log-file={config / 'rsyncd.log'}"]
    return Peer("rsync-daemon", argv, port)


def http_server(port: int, root: Path) -> Peer:
    return Peer(
        "http-server",
        [PYTHON, "-m", "http.server", "-b", "127.0.0.1", "-d", str(root), str(port)],
        port,
    )


def nginx(port: int, root: Path, config: Path, name: str = "nginx") -> Peer:
    """nginx in the foreground, one worker, sendfile, every path of its own under ``config``.

    ``user root;`` when run as root (nginx would otherwise switch its worker to
    ``nobody``, which may not read the bench's files); ``-e`` sends its
    start-up errors to our log instead of /var/log/nginx.
    """
    config.mkdir(parents=True, exist_ok=True)
    temp = {kind: config / kind for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    paths = "\n".join(f"    {kind}_temp_path {path};" for kind, path in temp.items())
    paths = paths.replace("body_temp_path", "client_body_temp_path")
    conf = config / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "") + "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {config / 'nginx.pid'};\n"
        "error_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    access_log off;\n"
        f"{paths}\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port};\n"
        f"        root {root};\n"
        "        autoindex on;\n"
        "    }\n"
        "}\n"
    )
    argv = ["nginx", "-p", str(config), "-c", str(conf), "-e", "stderr"]
    return Peer(name, argv, port)


def getfile_server(port: int, root: Path, name: str = "getfile-server") -> Peer:
    """``getfile serve -q`` (the code on PYTHONPATH), its defaults otherwise."""
    argv = [*peers.getfile_module_command(), "serve", "-q", "--port", str(port), str(root)]
    return Peer(name, argv, port)


def start(stack: contextlib.ExitStack, peer: Peer) -> str:
    """Start ``peer`` for the rest of ``stack``; empty, or why it did not start (a row says it)."""
    try:
        stack.enter_context(peer)
    except (OSError, RuntimeError) as error:
        return f"{peer.name} did not start ({error.__class__.__name__}: {error})"
    return ""
