"""The lazy parser ``main`` uses reads every command line as the whole parser does.

``build_parser(lazy=True)`` adds a subcommand's flags only once argparse
picks that subcommand (a ``get`` never builds ``serve``'s flags): the
result, the errors and the help must be the same as the whole parser's.
"""

from __future__ import annotations

import argparse

import pytest

from getfile_core.cli.parser import HelpFormatter, build_parser

COMMAND_LINES = [
    ["get", "-q", "-o", "/tmp", "--segments", "4", "getfile://h/a", "getfile://h/b"],
    ["get", "-r", "--include", "*.txt", "--exclude", "tmp/", "getfile://h/d"],
    ["serve", "--port", "0", "--max-transfers", "3", "/srv"],
    ["ls", "-l", "-h", "--max", "5", "getfile://h/"],
    ["--completion", "bash"],
    [],
]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_a_lazy_parser_reads_a_command_line_as_the_whole_one(argv: list[str]) -> None:
    assert build_parser(lazy=True).parse_args(argv) == build_parser().parse_args(argv)


def test_only_the_chosen_subcommand_gets_its_flags() -> None:
    parser = build_parser(lazy=True)
    assert all(flags(sub) <= {"-h", "--help"} for sub in subparsers(parser).values())
    parser.parse_args(["get", "getfile://h/a"])
    built = subparsers(parser)
    assert "--segments" in flags(built["get"])
    assert "--max-transfers" not in flags(built["serve"]) and "--max" not in flags(built["ls"])


@pytest.mark.parametrize("command", ["get", "serve", "ls"])
def test_each_subcommand_help_is_the_whole_parser_s(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    helps = []
    for parser in (build_parser(lazy=True), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1] and "exit codes:" in helps[0]


def test_bad_values_are_refused_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    errors = []
    for parser in (build_parser(lazy=True), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args(["get", "--segments", "40", "getfile://h/a"])
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1] and "at most 32 segments" in errors[0]


@pytest.mark.parametrize("columns", ["100", "0", "wide", None])
def test_the_help_width_is_the_one_argparse_would_ask_shutil_for(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil  # what argparse itself would call (and cli.parser avoids importing)

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert HelpFormatter("getfile")._width == shutil.get_terminal_size().columns - 2


def test_urls_may_stand_between_flags() -> None:
    """``get URL -o DIR URL2`` (found by hand): "unrecognized arguments: URL2", exit 2."""
    from getfile_core.cli.parser import build_parser

    for lazy in (True, False):
        args = build_parser(lazy=lazy).parse_args(
            [
                "get",
                "getfile://a/1",
                "-o",
                "out",
                "getfile://b/2",
                "--segments",
                "4",
                "getfile://c/3",
            ]
        )
        assert args.urls == ["getfile://a/1", "getfile://b/2", "getfile://c/3"]
        assert (args.output, args.segments) == ("out", 4)
