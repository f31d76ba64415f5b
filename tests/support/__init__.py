"""The one home of test support code; tests write ``from tests.support import wait_until``.

Modules by concern: ``files`` (random files, digests), ``waits`` (the one
bounded wait, sync and async), ``ports``, ``servers`` (our server in
process), ``processes`` (the CLI, server processes), ``peers`` (scripted
servers, the book's server, a staller), ``liars`` (threaded lying servers,
a tap), ``proxies`` (a cutting proxy), ``wire`` (raw sockets), ``pair`` (an
in-memory client/server pair), ``hostile`` (the hostile tree and path
corpus), ``counting`` (fds, tasks, rss, threads), ``certs`` (TLS
certificates), ``links`` (the link emulator, used by ``bench/`` too) and
``tui`` (imports Textual, so not re-exported).
"""

from tests.support.certs import CertSet, ServerCert, make_cert_set
from tests.support.counting import (
    LoopThread,
    fds_under,
    join_transfer_threads,
    open_fd_count,
    raise_fd_limit,
    recording_task_failures,
    rss_of,
    transfer_threads,
)
from tests.support.files import KIB, MIB, digest_bytes, digest_of, write_random
from tests.support.hostile import (
    UNPRIVILEGED_UID,
    HostileTree,
    build_hostile_tree,
    load_corpus,
)
from tests.support.liars import (
    LyingServer,
    Peer,
    Tap,
    answer,
    answer_each,
    head,
    listing,
    listing_head,
)
from tests.support.links import KiB, Link, LinkEmulator, LinkStats, MiB
from tests.support.pair import ConnectionPair, drain
from tests.support.peers import (
    LEGACY_PEER,
    STALL_FIRST_BLOCK,
    StallingLegacyPeer,
    ok_head,
    scripted_server,
)
from tests.support.ports import target_for, unused_port
from tests.support.processes import (
    GETFILE,
    PROJECT,
    ServeProcess,
    ServerProcess,
    assert_one_error_line,
    run_async,
    run_cli,
    run_cli_on_terminal,
    run_program,
    serve_process,
)
from tests.support.proxies import CuttingProxy, Plan
from tests.support.servers import running_server
from tests.support.waits import PATIENCE, wait_until, wait_until_sync
from tests.support.wire import (
    exchange,
    extended_get,
    raw_exchange,
    read_to_eof,
    reset_on_close,
    split_response,
)

__all__ = [
    "GETFILE",
    "KIB",
    "LEGACY_PEER",
    "MIB",
    "PATIENCE",
    "PROJECT",
    "STALL_FIRST_BLOCK",
    "UNPRIVILEGED_UID",
    "CertSet",
    "ConnectionPair",
    "CuttingProxy",
    "HostileTree",
    "KiB",
    "Link",
    "LinkEmulator",
    "LinkStats",
    "LoopThread",
    "LyingServer",
    "MiB",
    "Peer",
    "Plan",
    "ServeProcess",
    "ServerCert",
    "ServerProcess",
    "StallingLegacyPeer",
    "Tap",
    "answer",
    "answer_each",
    "assert_one_error_line",
    "build_hostile_tree",
    "digest_bytes",
    "digest_of",
    "drain",
    "exchange",
    "extended_get",
    "fds_under",
    "head",
    "join_transfer_threads",
    "listing",
    "listing_head",
    "load_corpus",
    "make_cert_set",
    "ok_head",
    "open_fd_count",
    "raise_fd_limit",
    "raw_exchange",
    "read_to_eof",
    "recording_task_failures",
    "reset_on_close",
    "rss_of",
    "run_async",
    "run_cli",
    "run_cli_on_terminal",
    "run_program",
    "running_server",
    "scripted_server",
    "serve_process",
    "split_response",
    "target_for",
    "transfer_threads",
    "unused_port",
    "wait_until",
    "wait_until_sync",
    "write_random",
]
