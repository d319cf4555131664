"""Candidate selection for the provider bridge: which files of a project can be installed.

``select_candidates`` turns the project pages of a package into its installable versions on the
target interpreter (best wheel per version: tags, ``Requires-Python``, yanked unless pinned
``==``, ``--only-binary``/``--no-binary``, ``--exclude-newer``, allowed ``--hash`` values) and
keeps why other files were left out, for failure hints. ``dependencies_of`` evaluates a
distribution's ``Requires-Dist`` for a set of extras on the target. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from packaging.version import Version

import kea.log
from kea.dist import parsed
from kea.dist.metadata import CoreMetadata
from kea.dist.names import canonicalize_name
from kea.dist.parsed import InvalidRequirement
from kea.dist.tags import TagRanker
from kea.dist.wheel_name import parse_dist_filename
from kea.index.models import DistFile, ProjectPage
from kea.resolver.ranges import VersionSet

if TYPE_CHECKING:
    from packaging.requirements import Requirement


log = kea.log.get("kea.resolver.provider")

ALL = ":all:"
NONE = ":none:"


# -- candidates ------------------------------------------------------------------------------


# Records are msgspec Structs, not dataclasses: made in C at import instead of generated code.


class Candidate(msgspec.Struct, frozen=True):
    """One installable version of a package: the best wheel of that version for the target."""

    name: str  # canonical
    version: Version
    file: DistFile
    index_url: str  # the page the file was listed on
    rank: int = 0  # tag rank of the wheel (lower is better)

    @property
    def yanked(self) -> bool:
        return self.file.is_yanked

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


class Selection(msgspec.Struct):
    """The candidates of one package (newest first) and why other files were left out."""

    name: str
    candidates: list[Candidate] = msgspec.field(default_factory=list)
    rejected: dict[str, list[str]] = msgspec.field(default_factory=dict)  # reason -> filenames
    pages: list[ProjectPage] = msgspec.field(default_factory=list)

    def by_version(self) -> dict[Version, Candidate]:
        return {c.version: c for c in self.candidates}

    def tiers(self) -> list[list[Version]]:
        """The candidates' versions grouped by the page that provides them, in page order."""
        order = {page.url: i for i, page in reversed(list(enumerate(self.pages)))}
        groups: dict[int, list[Version]] = {}
        for c in self.candidates:
            groups.setdefault(order.get(c.index_url, len(order)), []).append(c.version)
        return [groups[k] for k in sorted(groups)]

    def reason(self) -> str:
        """Why no version is usable, completing a sentence whose subject is the package."""
        if self._not_found():
            return "was not found in the package registry"
        first = self._first_rejection()
        if first is None:
            return "has no usable distribution files"
        reason, files = first
        if reason == "no-binary":
            return (
                "may not be installed from wheels (--no-binary), and building from source "
                "is not supported yet"
            )
        if reason == "sdist":
            return (
                "has only source distributions "
                f"(building from source is not supported yet: {files[-1]})"
            )
        if reason == "tags":
            return "has no wheels with a matching platform tag"
        if reason == "requires-python":
            return "has no version compatible with the target Python"
        if reason == "yanked":
            return "has only yanked versions (pin one with == to use it)"
        return "has no version published before --exclude-newer"

    def hint(self) -> str | None:
        """One sentence on why nothing (or little) is installable, for the failure explanation."""
        if self.candidates:
            return None
        if self._not_found():
            return f"{self.name} was not found in the package indexes"
        mixed = [r for r in _WHEEL_REASONS if self.rejected.get(r)]
        if len(mixed) > 1 and not self.rejected.get("sdist"):
            parts = [f"{len(self.rejected[r])} {_WHEEL_REASONS[r]}" for r in mixed]
            return f"no file of {self.name} is usable: " + ", ".join(parts)
        first = self._first_rejection()
        if first is None:
            return None
        reason, files = first
        if reason == "no-binary":
            return (
                f"--no-binary forbids the wheels of {self.name} and building from source is "
                f"not supported yet; drop {self.name} (or :all:) from --no-binary"
            )
        if reason == "sdist":
            return f"building from source is not supported yet: {files[-1]}"
        if reason == "tags":
            return f"no wheel of {self.name} is compatible with the target interpreter"
        if reason == "requires-python":
            return f"every version of {self.name} requires a different Python version"
        if reason == "yanked":
            return f"every version of {self.name} is yanked (pin one with == to use it)"
        return f"every version of {self.name} was published after --exclude-newer"

    def left_out(self) -> dict[Version, tuple[str, str]]:
        """Versions some page lists but none of whose files is usable, while other versions
        are: version -> (rejection reason, one of its files), for ``left_out_hints``."""
        if not self.candidates:
            return {}  # ``hint`` speaks for the whole package
        usable = {c.version for c in self.candidates}
        out: dict[Version, tuple[str, str]] = {}
        for reason in _LEFT_OUT_ORDER:
            for filename in self.rejected.get(reason, ()):
                parsed = parse_dist_filename(filename)
                if parsed is not None and parsed[1] not in usable:
                    out.setdefault(parsed[1], (reason, filename))
        return out

    def _not_found(self) -> bool:
        """No page lists any file of the package."""
        return not self.pages or not any(p.files for p in self.pages)

    def _first_rejection(self) -> tuple[str, list[str]] | None:
        """The rejection ``reason`` and ``hint`` explain: the first reason in ``_REASON_ORDER``
        that left any file out, with its files."""
        for reason in _REASON_ORDER:
            files = self.rejected.get(reason)
            if files:
                return reason, files
        return None


# Which rejection ``Selection.reason``/``hint`` explain when several left files out.
_REASON_ORDER = ("sdist", "no-binary", "tags", "requires-python", "yanked", "exclude-newer")

# Which reason ``left_out`` names when a version's files were left out for several: a wheel's
# own reason before "has only a source distribution".
_LEFT_OUT_ORDER = (
    "tags",
    "requires-python",
    "no-binary",
    "hash",
    "yanked",
    "exclude-newer",
    "sdist",
)

_WHEEL_REASONS = {
    "no-binary": "refused by --no-binary",
    "tags": "without a matching platform tag",
    "requires-python": "for another Python version",
    "yanked": "yanked (pin one with == to use it)",
    "exclude-newer": "published after --exclude-newer",
    "hash": "not matching the --hash values",
}


def _binary_rule(values: Iterable[str]) -> tuple[bool, frozenset[str]]:
    """``--only-binary``/``--no-binary`` values -> (applies to all, canonical names)."""
    everything = False
    names: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item == ALL:
                everything, names = True, set()
            elif item == NONE:
                everything, names = False, set()
            else:
                names.add(canonicalize_name(item))
    return everything, frozenset(names)


class CandidatePolicy(msgspec.Struct, dict=True):
    """What the target interpreter accepts and what the user allows."""

    tags: TagRanker
    python_version: Version  # full version of the target, for Requires-Python
    markers: Mapping[str, str] = msgspec.field(default_factory=dict)  # target environment
    only_binary: Sequence[str] = ()
    no_binary: Sequence[str] = ()
    exclude_newer: datetime | None = None
    pinned: Mapping[str, frozenset[Version]] = msgspec.field(default_factory=dict)  # == pins
    allowed_hashes: Mapping[str, frozenset[str]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._only_all, self._only = _binary_rule(self.only_binary)
        self._no_all, self._no = _binary_rule(self.no_binary)
        self._rp_cache: dict[str, bool] = {}

    def wheels_allowed(self, name: str) -> bool:
        if name in self._only:
            return True
        return not (self._no_all or name in self._no)

    def python_ok(self, requires_python: str | None) -> bool:
        if not requires_python:
            return True
        ok = self._rp_cache.get(requires_python)
        if ok is None:
            try:  # as packaging's SpecifierSet.contains(prereleases=True), from the memo
                pairs, _ = parsed.specifier_parts(requires_python)
                if any(op == "===" for op, _ in pairs):  # string equality: packaging's own
                    from packaging.specifiers import SpecifierSet

                    spec = SpecifierSet(requires_python)
                    ok = spec.contains(self.python_version, prereleases=True)
                else:
                    ok = self.python_version in VersionSet.from_specifiers(requires_python)
            except ValueError:  # InvalidSpecifier, InvalidVersion
                ok = True  # pip and uv ignore a malformed Requires-Python on an index page
            self._rp_cache[requires_python] = ok
        return ok

    def too_new(self, file: DistFile) -> bool:
        if self.exclude_newer is None or not file.upload_time:
            return False
        try:
            uploaded = datetime.fromisoformat(file.upload_time.replace("Z", "+00:00"))
        except ValueError:
            return False
        limit = self.exclude_newer
        if uploaded.tzinfo is None and limit.tzinfo is not None:
            limit = limit.replace(tzinfo=None)
        elif uploaded.tzinfo is not None and limit.tzinfo is None:
            uploaded = uploaded.replace(tzinfo=None)
        return uploaded > limit


def select_candidates(
    name: str, pages: Sequence[ProjectPage], policy: CandidatePolicy
) -> Selection:
    """The installable versions of ``name`` on ``pages`` (earlier pages win a version)."""
    name = canonicalize_name(name)
    sel = Selection(name=name, pages=list(pages))
    best: dict[Version, Candidate] = {}
    pinned = policy.pinned.get(name, frozenset())
    wheels_ok = policy.wheels_allowed(name)
    allowed = policy.allowed_hashes.get(name)

    def reject(reason: str, file: DistFile) -> None:
        sel.rejected.setdefault(reason, []).append(file.filename)

    for page in pages:
        seen_here: set[Version] = set()
        for file in page.files:
            if not file.is_wheel:
                if file.sdist_info is not None:
                    reject("sdist", file)
                continue
            info = file.wheel_info
            if info is None or canonicalize_name(info[0]) != name:
                continue
            version = info[1]
            if version in best and version not in seen_here:
                continue  # an earlier index already provides this version
            if not wheels_ok:
                reject("no-binary", file)
                continue
            rank = policy.tags.rank(info[2])
            if rank is None:
                reject("tags", file)
                continue
            if not policy.python_ok(file.requires_python):
                reject("requires-python", file)
                continue
            if file.is_yanked and version not in pinned:
                reject("yanked", file)
                continue
            if policy.too_new(file):
                reject("exclude-newer", file)
                continue
            if allowed is not None and not _hash_allowed(file, allowed):
                reject("hash", file)
                continue
            current = best.get(version)
            if current is None or rank < current.rank:
                best[version] = Candidate(name, version, file, page.url, rank)
                seen_here.add(version)
    sel.candidates = sorted(best.values(), key=lambda c: c.version, reverse=True)
    return sel


def _hash_allowed(file: DistFile, allowed: frozenset[str]) -> bool:
    """A file the index lists with hashes must match one allowed hash; unknown ones are checked
    after download."""
    known = [f"{algo}:{digest}" for algo, digest in file.hashes.items()]
    if not known:
        return True
    return any(h in allowed for h in known)


# -- dependencies ------------------------------------------------------------------------------


def dependencies_of(
    meta: CoreMetadata, extras: Iterable[str], markers: Mapping[str, str]
) -> list[Requirement]:
    """The requirements of ``meta`` that apply on the target for the given extras.

    The base requirements (no extra) are always included; with extras, the requirements whose
    marker holds for ``extra == X`` are added. Unparsable lines are skipped with a debug log.
    Lines that certainly need an extra not asked for (``needed_extra``) are never parsed.
    """
    extras = sorted({canonicalize_name(e) for e in extras})
    wanted = frozenset(extras)
    env = dict(markers)
    out: list[Requirement] = []
    for line in meta.requires_dist:
        need = needed_extra(line)
        if need is not None and need not in wanted:
            continue
        try:
            req = _parse_req(line)
        except InvalidRequirement:
            log.debug("%s %s: ignoring invalid Requires-Dist %r", meta.name, meta.version, line)
            continue
        if req.marker is None:
            out.append(req)
            continue
        for extra in ("", *extras):
            if _marker_holds(req.marker, env, extra):
                out.append(req)
                break
    return out


# ``extra == "name"`` alone, or as the first or last term of a marker (PEP 508 quoting).
_EXTRA_ONLY = re.compile(r"""^\s*extra\s*==\s*(['"])([^'"]+)\1\s*$""")
_EXTRA_LAST = re.compile(r"""\band\s+extra\s*==\s*(['"])([^'"]+)\1\s*$""")
_EXTRA_FIRST = re.compile(r"""^\s*extra\s*==\s*(['"])([^'"]+)\1\s+and\b""")
_OR = re.compile(r"\bor\b")


def needed_extra(line: str) -> str | None:
    """The extra (canonical) a ``Requires-Dist`` line certainly needs, or None.

    Parsing a requirement costs ~50 µs and most lines of real metadata belong to extras
    (``test``, ``docs``): jupyter's 97 packages have 721 lines, 530 of them such. A line names
    its extra only when its marker is a conjunction (no ``or`` anywhere after the ``;``) with a
    term ``extra == "X"`` first, last or alone: it can hold only when X is asked for. Anything
    else is None, left to the real parser and marker evaluation. Remembered in the memo of
    ``kea.dist.parsed``: the 721 lines of a warm jupyter resolve took ~1 ms of regular expressions.
    """
    return parsed.extra_of(line, _needed_extra)


def _needed_extra(line: str) -> str | None:  # a change here renames parsed.EXTRAS_TABLE
    _, sep, marker = line.partition(";")
    if sep and "extra" in marker and not _OR.search(marker):
        m = _EXTRA_ONLY.match(marker) or _EXTRA_LAST.search(marker) or _EXTRA_FIRST.match(marker)
        if m:
            return canonicalize_name(m.group(2))
    return None


def drop_other_extras(lines: Iterable[str], extras: Iterable[str]) -> tuple[str, ...]:
    """``lines`` without those that certainly need an extra not in ``extras`` (``needed_extra``):
    ``dependencies_of`` answers the same with or without them."""
    wanted = {canonicalize_name(e) for e in extras}
    return tuple(line for line in lines if (need := needed_extra(line)) is None or need in wanted)


_REQ_CACHE: dict[str, Requirement] = {}


def _parse_req(line: str) -> Requirement:
    req = _REQ_CACHE.get(line)
    if req is None:
        req = parsed.requirement(line)
        _REQ_CACHE[line] = req
    return req


# (id of the marker, extra, environment) -> (the marker, kept alive so its id is not reused;
# whether it holds). Jupyter's few hundred markers are mostly the same dozen conditions, each
# otherwise evaluated (with packaging's default environment rebuilt) every time it is met.
_HOLDS: dict[tuple[int, str, tuple[tuple[str, str], ...]], tuple[Any, bool]] = {}


def _marker_holds(marker: Any, env: dict[str, str], extra: str) -> bool:
    env["extra"] = extra
    key = (id(marker), extra, tuple(env.items()))
    hit = _HOLDS.get(key)
    if hit is not None and hit[0] is marker:
        return hit[1]
    try:
        holds = bool(marker.evaluate(env))
    except Exception:  # an undefined marker variable: treat as not applying
        holds = False
    _HOLDS[key] = (marker, holds)
    return holds
