"""``--include`` / ``--exclude``: rsync-style globs matched against a path relative to the tree.

Rules, as rsync's filter rules in their common use:

* ``*`` matches any run of characters except ``/``; ``?`` one character but
  ``/``; ``**`` any run including ``/``; ``[...]`` a character class.
* A pattern without ``/`` (``*.log``) matches the last component at any
  depth; one with a ``/`` is anchored at the tree's top (a leading ``/`` is
  dropped: ``/build`` is the same as ``build`` with a slash in it).
* A pattern ending in ``/`` matches folders only.
* The first rule that matches wins; a path no rule matches is included,
  except when every rule is an ``--include``: then a file must match one
  (``--include '*.pdf'`` alone means "only PDFs"; folders are still walked).
  A folder that is excluded is not listed at all (nothing under it is
  fetched), so ``--exclude node_modules/`` saves the listings too.

Patterns are compiled once to one regular expression each; names are
matched as text (``os.fsdecode``, so any byte survives the round trip).
"""

from __future__ import annotations

import re

from getfile_core._values import FrozenValue, init_field

#: A pattern longer than this is refused: one line, exit 2 (not a regex bomb).
MAX_PATTERN = 1024


class Rule(FrozenValue):
    """One compiled ``--include`` or ``--exclude`` (a value class: ``dataclasses`` costs 6 ms)."""

    _fields = ("include", "pattern", "regex", "folders_only", "anchored")
    __slots__ = _fields
    include: bool
    pattern: str
    regex: re.Pattern[str]
    folders_only: bool
    anchored: bool

    def __init__(
        self,
        include: bool,
        pattern: str,
        regex: re.Pattern[str],
        folders_only: bool,
        anchored: bool,
    ) -> None:
        init_field(self, "include", include)
        init_field(self, "pattern", pattern)
        init_field(self, "regex", regex)
        init_field(self, "folders_only", folders_only)
        init_field(self, "anchored", anchored)

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.folders_only and not is_dir:
            return False
        subject = path if self.anchored else path.rsplit("/", 1)[-1]
        return self.regex.fullmatch(subject) is not None


def compile_glob(pattern: str) -> str:
    """The regular expression (to ``fullmatch``) for one glob."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # zero or more whole folders
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith(("!", "^"))
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def make_rule(pattern: str, *, include: bool) -> Rule:
    """One ``--include`` or ``--exclude``; ``ValueError`` with a line for a person if unusable."""
    if not pattern or len(pattern) > MAX_PATTERN:
        raise ValueError(f"a pattern has 1 to {MAX_PATTERN} characters")
    folders_only = pattern.endswith("/")
    body = pattern.rstrip("/") or "/"
    anchored = "/" in body
    body = body.lstrip("/")
    try:
        regex = re.compile(compile_glob(body), re.DOTALL)
    except re.error as error:
        raise ValueError(f"bad pattern {pattern!r}: {error}") from None
    return Rule(include, pattern, regex, folders_only, anchored)


class Filter:
    """The ordered rules of one command line; ``wants(path, is_dir)`` decides each entry."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self.rules = rules or []

    @classmethod
    def from_args(cls, ordered: list[tuple[bool, str]]) -> Filter:
        """From ``(include, pattern)`` pairs in command-line order."""
        return cls([make_rule(pattern, include=include) for include, pattern in ordered])

    def wants(self, path: str, is_dir: bool) -> bool:
        for rule in self.rules:
            if rule.matches(path, is_dir):
                return rule.include
        return is_dir or not self.rules or any(not rule.include for rule in self.rules)
