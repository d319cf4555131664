"""Requirements parsed, and markers evaluated, by earlier runs: kept in the cache.

Parsing PEP 508 is packaging's job, and kea leaves it there. But importing
``packaging.requirements`` compiles its tokenizer's patterns and brings ``packaging.markers``,
``packaging.utils`` and ``packaging.tags`` with it, and then each line costs ~50 µs to parse.
A run answered from the cache meets the same few hundred ``Requires-Dist`` lines and the same
dozen markers every time. So the first run parses them with packaging and stores the parts
(``memo-v1.msgpack`` in the cache); later runs build each requirement from its stored parts
and answer each marker from its stored result, and import none of that. Jupyter's
``kea pip install --dry-run`` on a warm cache went from 101.3 to 90.1 ms (hyperfine, 40 runs).

A stored requirement comes back as a ``Parsed``, which has what kea reads of packaging's
``Requirement``: ``name``, ``extras``, ``specifier`` (a real ``SpecifierSet``, built on first
use), ``marker`` (a ``Remembered`` marker, or None), ``url`` and ``str()``. Specifier sets
are remembered too, split into their (operator, version) pairs (``specifier_parts``; the
resolver reads a requirement's through ``specifier_text``): importing ``packaging.specifiers``
compiles its ~1.7 ms pattern, ~4 ms in all, and the resolver's version sets need only the
pairs. A marker result is stored per target environment (every marker variable's value) and
extra; a marker that cannot be evaluated is never stored, so its error is raised again by
packaging. A requirement with a URL (``name @ https://...``) is parsed every time and never
written: a URL may carry credentials, and the cache holds none. Nothing in the file is
trusted further than its shape: an entry of the wrong shape, or a file that does not decode, is
ignored and parsed again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

MEMO_NAME = "memo-v1.msgpack"
MAX_LINES = 20_000  # past this, a save keeps only the lines its own run used (~2 MB)
MAX_ENVIRONMENTS = 8  # target environments kept, most recently used first
# The table of ``extra_of``'s answers; named anew whenever the rule it remembers changes
# (``kea.resolver.provider_select._needed_extra``), so that older answers are not read.
EXTRAS_TABLE = "extras-1"

# PEP 508's environment markers: every one must be given for a result to be remembered.
VARIABLES = frozenset(
    (
        "implementation_name",
        "implementation_version",
        "os_name",
        "platform_machine",
        "platform_python_implementation",
        "platform_release",
        "platform_system",
        "platform_version",
        "python_full_version",
        "python_version",
        "sys_platform",
    )
)
# What canonicalize_name gives for a name of letters, digits and separators (an extra).
_CANONICAL = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A bare project name is its own parse (no extras, specifier, marker or URL).
_BARE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# A PEP 440 version in its plain spelling (release, then a/b/rc, .post, .dev, +local, all in
# lower case): packaging keeps it as written in an ``==`` specifier. Groups: the pre-release
# letters, the .dev part (either makes the specifier name a pre-release).
_PLAIN_VERSION = (
    r"[0-9]+(?:\.[0-9]+)*(?:(a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(\.dev[0-9]+)?"
    r"(?:\+[a-z0-9]+(?:\.[a-z0-9]+)*)?"
)
# ``==`` and such a version, alone: a locked file's lines (``uv pip compile``'s output) are
# ``name==version``, and a first run (nothing in the memo) would import packaging's parsers
# for them before its first request.
_PIN = re.compile(rf"==({_PLAIN_VERSION})")
_PINNED = re.compile(rf"({_BARE.pattern})(=={_PLAIN_VERSION})")


class InvalidRequirement(ValueError):
    """packaging's ``InvalidRequirement``, re-raised with its message."""


class InvalidSpecifier(ValueError):
    """packaging's ``InvalidSpecifier``, re-raised with its message."""


# line -> (name, extras, specifier, marker, url, str()); "" for no marker or URL.
_lines: dict[str, tuple[str, tuple[str, ...], str, str, str, str]] = {}
# environment key -> {marker text + "\0" + extra: holds}; insertion order = least recent first.
_marks: dict[str, dict[str, bool]] = {}
# specifier set text -> its (operator, version) pairs and whether one names a pre-release.
_specs: dict[str, tuple[tuple[tuple[str, str], ...], bool]] = {}
# Requires-Dist line -> the extra it certainly needs ("": none), see ``extra_of``.
_extras: dict[str, str] = {}
_used: set[str] = set()  # environments asked about in this run
_asked: set[str] = set()  # lines and specifier sets asked for in this run
_path: Path | None = None
_dirty = False


class Remembered:
    """A marker whose results are looked up before packaging is asked."""

    __slots__ = ("_real", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._real: Marker | None = None

    def evaluate(self, environment: Mapping[str, str] | None = None) -> bool:
        global _dirty
        env = dict(environment or {})
        # packaging fills a missing variable from the interpreter kea runs on: such a result
        # is not the target's alone, and is not remembered.
        table = _table(env) if VARIABLES <= env.keys() else None
        key = f"{self.text}\0{env.get('extra', '')}"
        if table is not None:
            hit = table.get(key)
            if hit is not None:
                return hit
        if self._real is None:
            from packaging.markers import Marker

            self._real = Marker(self.text)
        holds = bool(self._real.evaluate(env))  # errors are raised, and not remembered
        if table is not None:
            table[key] = holds
            _dirty = True
        return holds

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Marker('{self.text}')>"


class Parsed:
    """A requirement rebuilt from its stored parts; see the module's docstring."""

    __slots__ = ("_spec", "_specifier", "_text", "extras", "marker", "name", "url")

    def __init__(
        self, name: str, extras: tuple[str, ...], spec: str, marker: str, url: str, text: str
    ) -> None:
        self.name = name
        self.extras = set(extras)
        self._spec = spec
        self._specifier: SpecifierSet | None = None
        self.marker = Remembered(marker) if marker else None
        self.url = url or None
        self._text = text

    @property
    def specifier(self) -> SpecifierSet:
        if self._specifier is None:
            from packaging.specifiers import SpecifierSet

            self._specifier = SpecifierSet(self._spec)
        return self._specifier

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"<Requirement('{self._text}')>"

    def __eq__(self, other: object) -> bool:
        if not (isinstance(other, Parsed) or type(other).__name__ == "Requirement"):
            return NotImplemented
        return _identity(self) == _identity(other)

    def __hash__(self) -> int:
        return hash(_identity(self))


def _identity(req: Any) -> tuple[object, ...]:
    """What makes two requirements equal, as packaging compares them."""
    from kea.dist.names import canonicalize_name

    marker = "" if req.marker is None else str(req.marker)
    return (canonicalize_name(req.name), frozenset(req.extras), str(req.specifier), req.url, marker)


# Python's int() takes at most 4,300 digits (CVE-2020-10735); packaging's version pattern
# has no bound, so such a version would parse here and fail wherever it becomes a Version.
_INT_DIGITS = 4300
_LONG_NUMBER = re.compile(rf"\d{{{_INT_DIGITS + 1}}}")


def _refuse_long_numbers(text: str, error: type[ValueError]) -> None:
    if len(text) > _INT_DIGITS and _LONG_NUMBER.search(text):
        raise error(f"a number of more than {_INT_DIGITS:,} digits ({len(text):,} characters)")


def requirement(line: str) -> Requirement:
    """``line`` parsed, from the memo when it has it; else by packaging (and remembered).

    Raises ``InvalidRequirement``. The result is typed as packaging's class: ``Parsed`` has
    every attribute of it that kea reads (module docstring)."""
    global _dirty
    parts = _lines.get(line)
    _asked.add(line)
    if parts is None:
        _refuse_long_numbers(line, InvalidRequirement)
        if _BARE.fullmatch(line):
            return Parsed(line, (), "", "", "", line)  # type: ignore[return-value]
        pinned = _PINNED.fullmatch(line)
        if pinned:
            return Parsed(pinned[1], (), pinned[2], "", "", line)  # type: ignore[return-value]
        from packaging.requirements import InvalidRequirement as Invalid
        from packaging.requirements import Requirement

        try:
            req = Requirement(line)
        except Invalid as e:
            raise InvalidRequirement(str(e)) from None
        parts = (
            req.name,
            tuple(sorted(req.extras)),
            str(req.specifier),
            "" if req.marker is None else str(req.marker),
            req.url or "",
            str(req),
        )
        if not req.url:  # a URL may carry credentials: never written to the cache
            _lines[line] = parts
            _dirty = True
    return Parsed(*parts)  # type: ignore[return-value]


def specifier_text(req: Any) -> str:
    """The specifier set of ``req`` (packaging's ``Requirement`` or a ``Parsed``) as
    ``str(req.specifier)`` writes it, without building a ``SpecifierSet`` for a ``Parsed``."""
    return req._spec if isinstance(req, Parsed) else str(req.specifier)


def specifier_parts(text: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The specifier set ``text`` as packaging splits it: its (operator, version) pairs, and
    whether any of them names a pre-release (packaging's ``Specifier.prereleases``). From the
    memo when it has it; else by packaging (and remembered). Raises ``InvalidSpecifier``."""
    global _dirty
    if not text:
        return (), False
    hit = _specs.get(text)
    _asked.add(text)
    if hit is None:
        _refuse_long_numbers(text, InvalidSpecifier)
        pin = _PIN.fullmatch(text)
        if pin:
            return (("==", pin[1]),), bool(pin[2] or pin[3])
        from packaging.specifiers import InvalidSpecifier as Invalid
        from packaging.specifiers import SpecifierSet

        try:
            spec_set = SpecifierSet(text)
        except Invalid as e:
            raise InvalidSpecifier(str(e)) from None
        pairs = tuple((s.operator, s.version) for s in spec_set)
        hit = _specs[text] = (pairs, any(s.prereleases for s in spec_set))
        _dirty = True
    return hit


def extra_of(line: str, work: Callable[[str], str | None]) -> str | None:
    """``work(line)``: the extra a ``Requires-Dist`` line certainly needs, or None (the
    resolver's ``needed_extra``, a few regular expressions per line), remembered."""
    global _dirty
    hit = _extras.get(line)
    _asked.add(line)
    if hit is None:
        hit = _extras[line] = work(line) or ""
        _dirty = True
    return hit or None


def _table(env: dict[str, str]) -> dict[str, bool]:
    key = "\0".join(f"{k}={v}" for k, v in sorted(env.items()) if k != "extra")
    table = _marks.get(key)
    if key not in _used:  # first use in this run: now the most recently used
        _used.add(key)
        _marks.pop(key, None)
        _marks[key] = table = {} if table is None else table
    assert table is not None
    return table


# -- the file ------------------------------------------------------------------------------------


def load(cache_root: Path) -> None:
    """Read the memo of the cache at ``cache_root`` (nothing if absent), and save to it from
    now on. What is already in memory stays: a parse does not depend on the cache."""
    global _path
    path = cache_root / MEMO_NAME
    if _path == path:
        return
    _path = path
    try:
        with open(_path, "rb") as f:
            data = f.read()
    except OSError:
        return
    import msgspec

    try:
        doc = msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, ValueError):  # a damaged file: invalid UTF-8 is a ValueError
        return
    if not isinstance(doc, dict):
        return
    lines, marks, specs = doc.get("lines"), doc.get("marks"), doc.get("specs")
    extras = doc.get(EXTRAS_TABLE)
    if isinstance(extras, dict):
        canonical = _CANONICAL.fullmatch
        for line, extra in extras.items():
            if isinstance(line, str) and isinstance(extra, str):
                if not extra or canonical(extra):
                    _extras.setdefault(line, extra)
    if isinstance(lines, dict):
        for line, parts in lines.items():
            if _shaped(line, parts):
                _lines.setdefault(line, (*parts[:1], tuple(parts[1]), *parts[2:]))
    if isinstance(specs, dict):
        for text, entry in specs.items():
            spec = _spec_entry(text, entry)
            if spec is not None:
                _specs.setdefault(text, spec)
    if isinstance(marks, dict):
        for env, table in marks.items():
            if isinstance(env, str) and isinstance(table, dict):
                _marks[env] = {
                    k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, bool)
                }


def _shaped(line: Any, parts: Any) -> bool:
    if not (isinstance(line, str) and isinstance(parts, list) and len(parts) == 6):
        return False
    name, extras, spec, marker, url, text = parts
    return (
        isinstance(name, str)
        and bool(name)
        and isinstance(spec, str)
        and isinstance(marker, str)
        and url == ""  # never stored (``requirement``); an older memo's are dropped
        and isinstance(text, str)
        and isinstance(extras, list)
        and (not extras or all(isinstance(x, str) for x in extras))
    )


_OPERATORS = frozenset(("==", "!=", "<=", ">=", "<", ">", "~=", "==="))


def _spec_entry(text: Any, entry: Any) -> tuple[tuple[tuple[str, str], ...], bool] | None:
    """A stored specifier set's entry as ``specifier_parts`` answers it; None if misshapen."""
    if not (isinstance(text, str) and text and isinstance(entry, list) and len(entry) == 2):
        return None
    raw, pre = entry
    if not (isinstance(pre, bool) and isinstance(raw, list) and raw):
        return None
    pairs = []
    for pair in raw:
        if not (isinstance(pair, list) and len(pair) == 2 and pair[0] in _OPERATORS):
            return None
        op, version = pair
        if not (isinstance(version, str) and version):
            return None
        pairs.append((op, version))
    return tuple(pairs), pre


def save() -> None:
    """Write the memo back when this run added to it (atomically; a failure costs nothing)."""
    global _dirty
    if _path is None or not _dirty:
        return
    import msgspec

    marks = dict(list(_marks.items())[-MAX_ENVIRONMENTS:])
    doc = {"lines": _kept(_lines), "marks": marks, "specs": _kept(_specs)}
    doc[EXTRAS_TABLE] = _kept(_extras)
    data = msgspec.msgpack.encode(doc)
    from kea.atomic import atomic_write

    try:
        atomic_write(_path, data)
        _dirty = False
    except OSError:
        pass


def _kept(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` as saved: past ``MAX_LINES`` entries, only those this run asked for."""
    if len(table) <= MAX_LINES:
        return table
    return {k: v for k, v in table.items() if k in _asked}


def reset() -> None:
    """Forget everything and detach from any file (for tests)."""
    global _path, _dirty
    _lines.clear()
    _marks.clear()
    _specs.clear()
    _extras.clear()
    _used.clear()
    _asked.clear()
    _path = None
    _dirty = False
