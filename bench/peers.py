"""The processes a benchmark talks to: started, awaited until they listen, stopped.

Every peer runs in its own session so that stopping it also stops what it
forked (socat's per-connection children), and only what it forked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable
LEGACY_GETFILE = REPO / "tests" / "peers" / "legacy_getfile.py"
MINIMAL_SERVER = REPO / "bench" / "minimal_server.py"
MINIMAL_CLIENT = REPO / "bench" / "minimal_client.py"


def getfile_command() -> list[str]:
    """The installed ``getfile`` script next to this Python, as a user would run it."""
    script = Path(PYTHON).with_name("getfile")
    return [str(script)] if script.exists() else [PYTHON, "-m", "getfile_core"]


def getfile_module_command() -> list[str]:
    """``python -m getfile_core``: the code on PYTHONPATH, whatever the installed script is.

    The links rows use it (as issue 9's brief says): they test behaviour, not
    start-up, and must run a branch's code even when the venv's entry point
    was generated for another layout.
    """
    return [PYTHON, "-m", "getfile_core"]


def child_environment() -> dict[str, str]:
    """The environment peers run in: a user's, so Python caches its bytecode as usual."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_listening(port: int) -> bool:
    """True once something listens on 127.0.0.1:port; reads /proc so no connection is made."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in lines:
                fields = line.split()
                if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":
                    return True
    return False


class Peer:
    """One server process on a known port, for the length of a ``with`` block."""

    def __init__(self, name: str, argv: Sequence[str], port: int, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.cwd = cwd
        self.log = RESULTS / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Peer:
        RESULTS.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while not is_listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start; see {self.log}")
            time.sleep(0.02)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory of a running process (VmHWM), in MiB."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


#: Debian packages of the commands whose package has another name.
PACKAGES = {"aria2c": "aria2"}


def ensure_tools(names: Sequence[str], packages: Mapping[str, str] = PACKAGES) -> list[str]:
    """Install missing command-line peers with apt-get when we may; return what is still missing.

    ``names`` are commands; ``packages`` maps a command to its Debian package
    when the names differ (``aria2c`` is in ``aria2``).
    """
    missing = [name for name in names if shutil.which(name) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        wanted = sorted({packages.get(name, name) for name in missing})
        print(f"bench: installing {' '.join(wanted)} with apt-get...", file=sys.stderr)
        for argv in (
            ["apt-get", "install", "-y", "-q", *wanted],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", *wanted],
        ):
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            missing = [name for name in missing if shutil.which(name) is None]
            if not missing:
                break
    for name in missing:
        print(
            f"bench: {name} is missing (install it: apt-get install {packages.get(name, name)}); "
            "its rows are left out or say so",
            file=sys.stderr,
        )
    return missing


@contextlib.contextmanager
def peers(*running: Peer) -> Iterator[tuple[Peer, ...]]:
    """Start several peers; stop all of them, whatever happens."""
    with contextlib.ExitStack() as stack:
        yield tuple(stack.enter_context(peer) for peer in running)
