"""Project names (PEP 503 normalisation, validation) and the patterns routes match them with."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kea.dist.names import canonicalize_name

MAX_NAME = 128
# PEP 508 names: letters/digits, with . _ - inside; MAX_NAME characters at most. Multi-line, so
# that one search finds every name of a list (``valid_names``).
_NAME_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0," + str(MAX_NAME - 2) + r"}[A-Za-z0-9])?$", re.MULTILINE
)
_PATTERN_RE = re.compile(r"[A-Za-z0-9._\-*?\[\]!]+\Z")


def normalize(name: str) -> str:
    return canonicalize_name(name)


def valid_name(name: str) -> bool:
    """A project name kea serve accepts in a URL (no traversal, no odd characters, bounded)."""
    return _NAME_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class Pattern:
    """An exact name, a glob (``acme-*``) or a prefix, compared on normalised names."""

    text: str
    kind: str  # "exact" | "glob" | "prefix"

    def matches(self, normalized: str) -> bool:
        if self.kind == "exact":
            return normalized == self.text
        if self.kind == "prefix":
            return normalized.startswith(self.text)
        return fnmatch.fnmatchcase(normalized, self.text)

    def regex(self) -> str:
        """A regular expression that matches what ``matches`` does (from a name's start)."""
        if self.kind == "exact":
            return re.escape(self.text) + r"\Z"
        if self.kind == "prefix":
            return re.escape(self.text)
        return fnmatch.translate(self.text)


def any_of(patterns: Iterable[Pattern]) -> Callable[[str], object]:
    """One test for "one of ``patterns`` matches" (false when there are none), for testing
    many names: a single compiled expression instead of a call per pattern."""
    parts = [p.regex() for p in patterns]
    if not parts:
        return lambda name: False
    return re.compile("|".join(f"(?:{p})" for p in parts)).match


def compile_pattern(raw: str, *, prefix: bool = False) -> Pattern:
    raw = raw.strip()
    if not raw:
        raise ValueError("empty")
    if not _PATTERN_RE.match(raw):
        raise ValueError("expected letters, digits, '.', '_', '-' and glob characters * ? [ ]")
    if raw.count("[") != raw.count("]"):
        raise ValueError("unbalanced [ ]")
    if prefix:
        if any(c in raw for c in "*?[]!"):
            raise ValueError("a prefix takes no glob characters")
        # keep a trailing separator: prefix "acme-" must not match "acmeco"
        return Pattern(canonicalize_name(raw), "prefix")
    if any(c in raw for c in "*?["):
        # normalise the literal parts only
        return Pattern(canonicalize_name(raw), "glob")
    if not valid_name(raw):
        raise ValueError("not a valid project name")
    return Pattern(normalize(raw), "exact")


def valid_names(raw: Iterable[str]) -> list[str]:
    """The normalised names among ``raw`` that ``valid_name`` accepts, each once, sorted: for a
    whole index's list (~700,000 names), in a few passes of compiled code over one string."""
    text = "\n".join(n for n in raw if "\n" not in n)
    kept = "\n".join(_NAME_RE.findall(text))
    # dict, not set: the order stays the list's, which is nearly sorted already (an index
    # lists by name), and sorting that is one quick pass
    return sorted(dict.fromkeys(canonicalize_name(kept).split("\n"))) if kept else []


__all__ = [
    "MAX_NAME",
    "Pattern",
    "any_of",
    "compile_pattern",
    "normalize",
    "valid_name",
    "valid_names",
]
