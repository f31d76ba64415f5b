"""``--include`` / ``--exclude``: rsync-style globs (``getfile_core.client.globs``)."""

from __future__ import annotations

import pytest

from getfile_core.client.globs import MAX_PATTERN, Filter, make_rule


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "matches"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/down/a.log", False, True),  # no slash: the name at any depth
        ("*.log", "a.log/x", False, False),
        ("build/*.o", "build/a.o", False, True),
        ("build/*.o", "src/build/a.o", False, False),  # a slash anchors at the top
        ("/build", "build", True, True),
        ("build/*", "build/sub/a.o", False, False),  # * stops at /
        ("build/**", "build/sub/a.o", False, True),
        ("**/*.csv", "a.csv", False, True),
        ("**/*.csv", "x/y/a.csv", False, True),
        ("f?.txt", "f1.txt", False, True),
        ("f?.txt", "f12.txt", False, False),
        ("f[0-4]*", "f3x", False, True),
        ("f[!0-4]*", "f3x", False, False),
        ("tmp/", "tmp", True, True),
        ("tmp/", "tmp", False, False),  # a trailing slash: folders only
        ("a+b(c).txt", "a+b(c).txt", False, True),  # regex characters are literal
    ],
)
def test_one_rule(pattern: str, path: str, is_dir: bool, matches: bool) -> None:
    assert make_rule(pattern, include=True).matches(path, is_dir) is matches


def test_the_first_matching_rule_wins() -> None:
    rules = Filter.from_args([(True, "keep.log"), (False, "*.log")])
    assert rules.wants("keep.log", False) and not rules.wants("other.log", False)
    assert rules.wants("notes.txt", False)  # no rule: included


def test_only_includes_mean_only_those_files() -> None:
    rules = Filter.from_args([(True, "*.pdf")])
    assert rules.wants("a/b.pdf", False) and not rules.wants("a/b.txt", False)
    assert rules.wants("a", True)  # folders are still walked


@pytest.mark.parametrize("pattern", ["", "x" * (MAX_PATTERN + 1)])
def test_unusable_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="characters"):
        make_rule(pattern, include=False)
