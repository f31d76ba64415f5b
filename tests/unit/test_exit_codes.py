"""Exit codes belong to the command line: one table, the README's, for every error class."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from getfile_core import errors
from getfile_core.cli.exit_codes import CODE_OF, MEANINGS, exit_code_for

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.GetfileError("x"), 1),
        (errors.UsageError("x"), 2),
        (errors.ConnectError("x"), 3),
        (errors.TimeoutError_("x"), 4),
        (errors.RemoteError("x"), 5),
        (errors.NotFoundError("x"), 5),
        (errors.ForbiddenError("x"), 6),
        (errors.UnauthorizedError("x"), 6),
        (errors.IntegrityError("x"), 7),
        (errors.LocalFileError("x"), 8),
        (errors.DiskFullError("x"), 9),
        (errors.BusyError("x"), 10),
        (errors.ProtocolError("x"), 11),
        (errors.InterruptedError_("x"), 12),
        (errors.LegacyServerError("x"), 13),
        (ValueError("a bug"), 1),
    ],
)
def test_each_error_has_the_documented_code(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_a_new_error_class_gets_its_parents_code() -> None:
    class SlowDiskFull(errors.DiskFullError):
        pass

    assert exit_code_for(SlowDiskFull("x")) == 9


def test_the_library_errors_carry_no_exit_code() -> None:
    assert not any(hasattr(cls, "exit_code") for cls in CODE_OF)


def test_the_readme_table_lists_the_same_codes() -> None:
    table = re.findall(r"^\| (\d+) \| ", README.read_text(), re.M)
    assert [int(code) for code in table] == list(MEANINGS)
    assert set(CODE_OF.values()) <= set(MEANINGS)
