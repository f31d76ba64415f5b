"""Process exit codes: the command line's own business, kept out of the library.

The library raises exceptions that say what went wrong; only a process has an
exit status. One table maps each exception class to its code (the README's
table says the same), and ``exit_code_for`` walks an error's class hierarchy,
so an error class added to the library later gets its parent's code instead
of falling through to "unexpected".
"""

from __future__ import annotations

from getfile_core import errors

SUCCESS = 0
UNEXPECTED = 1
USAGE = 2
INTERRUPTED = 12
CTRL_C = 130
#: The reader of stdout went away (``getfile ls … | head``): what a shell shows for a
#: process that SIGPIPE ended (128 + 13), as ``ls | head`` does under ``pipefail``.
BROKEN_PIPE = 141

#: Most specific classes need no ordering: the first class in the error's MRO wins.
CODE_OF: dict[type[errors.GetfileError], int] = {
    errors.GetfileError: UNEXPECTED,
    errors.UsageError: USAGE,
    errors.ConnectError: 3,
    errors.TimeoutError_: 4,
    errors.RemoteError: 5,
    errors.NotFoundError: 5,
    errors.ForbiddenError: 6,
    errors.UnauthorizedError: 6,
    errors.IntegrityError: 7,
    errors.LocalFileError: 8,
    errors.DiskFullError: 9,
    errors.BusyError: 10,
    errors.ProtocolError: 11,
    errors.InterruptedError_: INTERRUPTED,
    errors.LegacyServerError: 13,
}

#: What each code means, for ``--help`` (and kept equal to the README's table).
MEANINGS: dict[int, str] = {
    SUCCESS: "success",
    UNEXPECTED: "unexpected error",
    USAGE: "bad command line",
    3: "cannot connect (refused, unreachable, host not found)",
    4: "timed out",
    5: "not found (or other refusal by the server)",
    6: "forbidden or unauthorized",
    7: "integrity check failed (size or digest mismatch)",
    8: "local file problem (exists, locked, not writable)",
    9: "disk full",
    10: "server busy",
    11: "protocol error (broken or lying peer)",
    INTERRUPTED: "interrupted (connection lost or cancelled; partial file kept for --resume)",
    13: "needs a getfile server (the peer is a legacy server)",
    CTRL_C: "stopped with Ctrl-C",
    BROKEN_PIPE: "stdout closed early (a pipe to head, say)",
}


def exit_code_for(error: BaseException) -> int:
    """The process exit code for ``error``: its class's, or its nearest parent's."""
    for cls in type(error).__mro__:
        code = CODE_OF.get(cls)  # type: ignore[call-overload]
        if code is not None:
            return code
    return UNEXPECTED


def epilog() -> str:
    """The exit-code table as ``--help`` prints it."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in MEANINGS.items())
