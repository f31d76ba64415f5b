"""The app's rules without a screen: names, plans, texts and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from getfile_core import AccessRecord, part_name
from tui import format as fmt
from tui.launch import parse_args
from tui.transfers import (
    Choice,
    Conflict,
    Plan,
    find_conflict,
    free_name,
    plan_for,
    plan_for_retry,
)
from tui.widgets.server_pane import access_line


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.00 KiB"),
        (300_000, "293 KiB"),
        (1024**3, "1.00 GiB"),
        (5 * 1024**4, "5.00 TiB"),
    ],
)
def test_sizes_are_short(count: int, text: str) -> None:
    assert fmt.size(count) == text
    assert len(fmt.size(count)) <= 8


def test_durations_and_bars() -> None:
    assert fmt.duration(5) == "0:05"
    assert fmt.duration(3723) == "1:02:03"
    assert fmt.duration(None) == "" and fmt.duration(10**9) == ""
    assert fmt.bar(0.5, 6) == "███░░░"
    assert fmt.bar(1.0, 6) == "██████"
    moving = {fmt.bar(None, 6, tick) for tick in range(10)}
    assert len(moving) > 1 and all(len(b) == 6 and b.count("█") == 3 for b in moving)
    assert fmt.percent(None) == "" and fmt.percent(0.5) == " 50%"


def test_conflicts_and_free_names(tmp_path: Path) -> None:
    assert find_conflict(str(tmp_path), "a.txt") is None
    (tmp_path / "a.txt").write_bytes(b"x")
    (tmp_path / part_name("a (1).txt")).write_bytes(b"xy")
    conflict = find_conflict(str(tmp_path), "a.txt")
    assert conflict == Conflict(str(tmp_path), "a.txt", True, None)
    assert find_conflict(str(tmp_path), "a (1).txt") == Conflict(
        str(tmp_path), "a (1).txt", False, 2
    )
    assert free_name(str(tmp_path), "a.txt") == "a (2).txt"  # (1) has a .part
    assert free_name(str(tmp_path), ".bashrc") == ".bashrc (1)"
    assert free_name(str(tmp_path), "README") == "README (1)"


def test_plans_for_each_choice(tmp_path: Path) -> None:
    both = Conflict(str(tmp_path), "a.txt", True, 10)
    assert plan_for(Choice.OVERWRITE, both) == Plan(overwrite=True)
    assert plan_for(Choice.RESUME, both) == Plan(resume=True, overwrite=True)
    assert plan_for(Choice.RENAME, both) == Plan(name="a (1).txt")
    assert plan_for(Choice.SKIP, both) is None


def test_plans_for_a_retry(tmp_path: Path) -> None:
    part_only = Conflict(str(tmp_path), "a.txt", False, 10)
    assert plan_for_retry(None, legacy=False) == Plan()
    assert plan_for_retry(part_only, legacy=False) == Plan(resume=True)
    assert plan_for_retry(part_only, legacy=True) == Plan(overwrite=True)
    assert plan_for_retry(Conflict(str(tmp_path), "a.txt", True, None), legacy=False) is None


def test_url_fills_the_form(tmp_path: Path) -> None:
    launch = parse_args(["getfile://files.example.org/docs/a.txt", "--dest", str(tmp_path)])
    assert (launch.host, launch.port, launch.file) == ("files.example.org", "50001", "docs/a.txt")
    assert launch.dest == str(tmp_path)
    assert parse_args(["--host", "h", "--port", "7"]).port == "7"
    assert parse_args([]).host == ""


def test_bad_command_lines_say_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, reason in [
        (["http://x/y"], "not a getfile URL"),
        (["--serve", str(tmp_path / "none")], "--serve: not a folder"),
        (["--port", "70000"], "port must be 0-65535"),
    ]:
        with pytest.raises(SystemExit) as exited:
            parse_args(argv)
        assert exited.value.code == 2
        assert reason in capsys.readouterr().err


def test_python_dash_m_tui_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "getfile-tui" in done.stdout and "--serve" in done.stdout


def test_access_lines_say_the_outcome_and_hold_no_escapes() -> None:
    record = AccessRecord(0.0, "127.0.0.1:5", "GET", "a\x1b[2J.bin", "ok", 2048, 2.0, "", "stalled")
    line = access_line(record)
    assert line.endswith("'a\\x1b[2J.bin' ok 2.00 KiB 2.00 s stalled")
    assert "\x1b" not in line
    done = AccessRecord(0.0, "127.0.0.1:5", "GET", "b.bin", "ok", 1, 0.5, "", "complete")
    assert access_line(done).endswith("'b.bin' ok 1 B 0.50 s")
