"""``getfile --completion SHELL``: scripts generated from the parser (issue 12)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import run_cli, run_program

SUBCOMMANDS = ("serve", "get", "ls")
FLAGS = ("--resume", "--overwrite", "--jobs", "--retries", "--limit-rate", "--max-transfers")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_naming_the_commands_and_flags(shell: str) -> None:
    done = run_cli("--completion", shell)
    assert done.returncode == 0 and done.stderr == ""
    for word in (*SUBCOMMANDS, *FLAGS):
        assert word.lstrip("-") in done.stdout, word


def complete_in_bash(script: str, words: list[str]) -> list[str]:
    """What bash offers for the last of ``words``, by calling the generated function."""
    line = " ".join(words)
    program = (
        f"source /dev/stdin <<'EOF'\n{script}\nEOF\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        f"COMP_LINE={line!r}; COMP_POINT={len(line)}; "
        f"_shtab_getfile getfile {words[-1]!r} {words[-2]!r}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    done = run_program(["bash", "-c", program])
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_really_completes_commands_and_flags() -> None:
    script = run_cli("--completion", "bash").stdout
    assert run_program(["bash", "-n", "-c", script]).returncode == 0
    assert complete_in_bash(script, ["getfile", "g"]) == ["get"]
    assert complete_in_bash(script, ["getfile", "get", "--res"]) == ["--resume"]
    assert "--max-transfers" in complete_in_bash(script, ["getfile", "serve", "--max-"])


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = run_cli("--completion", "cmd.exe")
    assert done.returncode == 2 and done.stdout == ""
    assert "invalid choice" in done.stderr


def test_an_ordinary_start_does_not_import_shtab() -> None:
    probe = (
        "import sys; from getfile_core.cli.main import build_parser; build_parser(); "
        "print('shtab' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "False", done.stderr


def test_the_script_installs_under_the_name_getfile() -> None:
    script = run_cli("--completion", "bash").stdout
    assert "complete -o bashdefault -F _shtab_getfile getfile" in script
