"""Failure explanations: a derivation tree written as plain English, in uv's style.

"Because a==1.0 depends on b>=2 and you require b<2, we can conclude that a==1.0 cannot be
used. And because you require a, we can conclude that your requirements are unsatisfiable."

The tree is walked the way Dart's pub does it: derived incompatibilities used more than once get a
line number so later lines can refer back to them; a chain of one-derived-one-external causes is
told as a sequence of "And because ..." lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from packaging.version import Version

from kea.resolver.deps import split_key
from kea.resolver.incompat import (
    K_CONSTRAINT,
    K_DEPENDENCY,
    K_DERIVED,
    K_NO_VERSIONS,
    K_PACKAGE_UNAVAILABLE,
    K_UNAVAILABLE,
    ROOT,
    Incompatibility,
    Term,
)
from kea.resolver.ranges import VersionSet

VersionsOf = Callable[[str], "list[Version] | None"]

__all__ = ["explain", "left_out_hints", "packages_in", "prerelease_hints"]


def _walk(root: Incompatibility) -> Iterator[Incompatibility]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        inc = stack.pop()
        if inc.id in seen:
            continue
        seen.add(inc.id)
        yield inc
        if inc.cause1 is not None and inc.cause2 is not None:
            stack += [inc.cause2, inc.cause1]


def packages_in(root: Incompatibility) -> frozenset[str]:
    """The package names (without extras) the derivation mentions."""
    return frozenset(split_key(p)[0] for inc in _walk(root) for p in inc.terms if p != ROOT)


def prerelease_hints(root: Incompatibility, excluded: Callable[[str], list[Version]]) -> list[str]:
    """Hints for packages where pre-releases, left out by policy, would have matched."""
    hints = []
    for inc in _walk(root):
        if inc.kind != K_NO_VERSIONS:
            continue
        for package, term in inc.terms.items():
            name = split_key(package)[0]
            matching = [v for v in excluded(name) if v in term.vset]
            if matching:
                hints.append(
                    f"only pre-releases of {name} match ({name}=={max(matching)}); "
                    "pass --prerelease allow to use them"
                )
    return hints


# Completes "<name>==<version> ..." for a version whose every file was left out, by reason.
_LEFT_OUT = {
    "tags": "has no wheel with a matching platform tag",
    "requires-python": "requires a different Python version",
    "no-binary": "has only wheels, and --no-binary forbids them",
    "hash": "has no file matching the --hash values",
    "yanked": "is yanked (pin it with == to use it)",
    "exclude-newer": "was published after --exclude-newer",
    "sdist": "has only a source distribution (building from source is not supported yet)",
}


def left_out_hints(
    root: Incompatibility, left_out: Callable[[str], dict[Version, tuple[str, str]]]
) -> list[str]:
    """Hints for versions a failed requirement asked for that exist on an index but whose
    files were all left out (``left_out(name)``: version -> (reason, a file name)), where the
    explanation can only say there are no such versions. One per package: its highest."""
    hints = []
    done: set[str] = set()
    for inc in _walk(root):
        if inc.kind != K_NO_VERSIONS:
            continue
        for package, term in inc.terms.items():
            name = split_key(package)[0]
            if name in done:
                continue
            found = left_out(name)
            matching = [v for v in found if v in term.vset]
            if matching:
                done.add(name)
                version = max(matching)
                reason, filename = found[version]
                hints.append(f"{name}=={version} {_LEFT_OUT[reason]} ({filename})")
    return hints


class _Writer:
    def __init__(self, versions_of: VersionsOf) -> None:
        self.versions_of = versions_of
        self.lines: list[tuple[str, int | None]] = []
        self.numbers: dict[int, int] = {}
        self.referenced: set[int] = set()
        self.refcount: dict[int, int] = {}

    # -- terms ------------------------------------------------------------------------------------
    def _covers_all(self, package: str, vset: VersionSet) -> bool:
        if vset.is_full():
            return True
        versions = self.versions_of(split_key(package)[0])
        return bool(versions) and all(v in vset for v in versions or ())

    def positive(self, package: str, vset: VersionSet) -> str:
        """A set of versions of a package the solver enumerated: simplified by what exists."""
        if vset.is_full():
            return package
        versions = self.versions_of(split_key(package)[0])
        if versions:
            inside = [v for v in versions if v in vset]
            if len(inside) == 1:
                return f"{package}=={inside[0]}"
            if len(inside) == len(versions):
                return package
            if inside:
                vset = _fill_gaps(vset, versions)
        return f"{package}{vset}"

    @staticmethod
    def raw(package: str, vset: VersionSet) -> str:
        return package if vset.is_full() else f"{package}{vset}"

    def _covers_several(self, package: str, vset: VersionSet) -> bool:
        versions = self.versions_of(split_key(package)[0]) or []
        return len(versions) != 1 and self._covers_all(package, vset)

    def dependency(self, package: str, vset: VersionSet, dep: str) -> str:
        if self._covers_several(package, vset):
            return f"all versions of {package} depend on {dep}"
        return f"{self.positive(package, vset)} depends on {dep}"

    # -- incompatibilities ------------------------------------------------------------------------
    def describe(self, inc: Incompatibility) -> str:
        terms = [(p, t) for p, t in inc.terms.items() if p != ROOT]
        kind = inc.kind
        if kind == K_DEPENDENCY:
            (package, own), (dep, dep_term) = list(inc.terms.items())
            dep_text = self.raw(dep, dep_term.vset)
            if package == ROOT:
                return f"you require {dep_text}"
            return self.dependency(package, own.vset, dep_text)
        if kind == K_NO_VERSIONS:
            package, term = terms[0]
            return self._no_versions(package, term.vset)
        if kind == K_UNAVAILABLE:
            if not terms:
                return f"you require {inc.reason}"
            package, term = terms[0]
            if inc.reason and inc.reason.endswith("with an empty version range"):
                return f"{self.raw(package, term.vset)} depends on {inc.reason}"
            return f"{self.raw(package, term.vset)} {inc.reason}"
        if kind == K_PACKAGE_UNAVAILABLE:
            return f"{terms[0][0]} {inc.reason}"
        if kind == K_CONSTRAINT:
            package, term = terms[0]
            return f"your constraints allow only {self.raw(package, term.vset.complement())}"
        if kind != K_DERIVED:
            return "your requirements must be satisfiable"
        return self._conclusion(inc, terms)

    def _no_versions(self, package: str, vset: VersionSet) -> str:
        versions = self.versions_of(split_key(package)[0])
        if not versions:
            return f"there are no versions of {package}"
        available = vset.complement()
        if len(available.intervals()) == 1:
            if len(versions) == 1:
                return f"only {package}=={versions[0]} is available"
            return f"only {self.raw(package, available)} is available"
        if len(vset.intervals()) == 1 or len(versions) > 4:
            return f"there are no versions of {self.raw(package, vset)}"
        listed = [f"{package}=={v}" for v in versions]
        return f"only {', '.join(listed[:-1])} and {listed[-1]} are available"

    def _conclusion(self, inc: Incompatibility, terms: list[tuple[str, Term]]) -> str:
        if not terms:
            return "your requirements are unsatisfiable"
        pos = [(p, t) for p, t in terms if t.positive]
        neg = [(p, t) for p, t in terms if not t.positive]
        if len(terms) == 1:
            package, term = terms[0]
            if term.positive:
                if self._covers_several(package, term.vset):
                    return f"all versions of {package} cannot be used"
                return f"{self.positive(package, term.vset)} cannot be used"
            text = self.raw(package, term.vset)
            return f"you require {text}" if ROOT in inc.terms else f"{text} is required"
        neg_text = " or ".join(self.raw(p, t.vset) for p, t in neg)
        if len(pos) == 1 and neg:
            return self.dependency(pos[0][0], pos[0][1].vset, neg_text)
        if not neg:
            return " and ".join(self.positive(p, t.vset) for p, t in pos) + " are incompatible"
        if not pos:
            return f"you require {neg_text}" if ROOT in inc.terms else f"{neg_text} is required"
        both = " and ".join(self.positive(p, t.vset) for p, t in pos)
        return f"{both} depend on {neg_text}"

    # -- the walk ---------------------------------------------------------------------------------
    def count(self, root: Incompatibility) -> None:
        for inc in _walk(root):
            for cause in (inc.cause1, inc.cause2):
                if cause is not None and cause.derived:
                    self.refcount[cause.id] = self.refcount.get(cause.id, 0) + 1

    def ref(self, inc: Incompatibility) -> str:
        number = self.numbers[inc.id]
        self.referenced.add(number)
        return f"{self.describe(inc)} ({number})"

    def write(self, inc: Incompatibility, text: str, numbered: bool) -> None:
        if numbered:
            number = len(self.numbers) + 1
            self.numbers[inc.id] = number
            self.lines.append((text, number))
        else:
            self.lines.append((text, None))

    def _collapsible(self, inc: Incompatibility) -> bool:
        if self.refcount.get(inc.id, 0) > 1:
            return False
        c1, c2 = inc.cause1, inc.cause2
        assert c1 is not None and c2 is not None
        if c1.derived == c2.derived:
            return False
        complex_cause = c1 if c1.derived else c2
        return complex_cause.id not in self.numbers

    def visit(self, inc: Incompatibility, conclusion: bool = False) -> None:
        numbered = conclusion or self.refcount.get(inc.id, 0) > 1
        c1, c2 = inc.cause1, inc.cause2
        assert c1 is not None and c2 is not None
        then = f"we can conclude that {self.describe(inc)}"
        if c1.derived and c2.derived:
            n1, n2 = self.numbers.get(c1.id), self.numbers.get(c2.id)
            if n1 is not None and n2 is not None:
                self.write(inc, f"Because {self.ref(c1)} and {self.ref(c2)}, {then}.", numbered)
            elif n1 is not None or n2 is not None:
                known, other = (c1, c2) if n1 is not None else (c2, c1)
                self.visit(other)
                self.write(inc, f"And because {self.ref(known)}, {then}.", numbered)
            else:
                single1 = _single_line(c1)
                single2 = _single_line(c2)
                if single1 or single2:
                    first, second = (c1, c2) if single2 else (c2, c1)
                    self.visit(first)
                    self.visit(second)
                    self.write(inc, f"Thus, {then}.", numbered)
                else:
                    self.visit(c1, conclusion=True)
                    self.lines.append(("", None))
                    self.visit(c2)
                    self.write(inc, f"And because {self.ref(c1)}, {then}.", numbered)
        elif c1.derived or c2.derived:
            derived, external = (c1, c2) if c1.derived else (c2, c1)
            if derived.id in self.numbers:
                self.write(
                    inc,
                    f"Because {self.describe(external)} and {self.ref(derived)}, {then}.",
                    numbered,
                )
            elif self._collapsible(derived):
                d1, d2 = derived.cause1, derived.cause2
                assert d1 is not None and d2 is not None
                inner, outer = (d1, d2) if d1.derived else (d2, d1)
                self.visit(inner)
                both = _and(self.describe(outer), self.describe(external))
                self.write(inc, f"And because {both}, {then}.", numbered)
            else:
                self.visit(derived)
                self.write(inc, f"And because {self.describe(external)}, {then}.", numbered)
        else:
            both = _and(self.describe(c1), self.describe(c2))
            self.write(inc, f"Because {both}, {then}.", numbered)

    def text(self) -> str:
        out = []
        for line, number in self.lines:
            if number is not None and number in self.referenced:
                line = f"{line} ({number})"
            out.append(line)
        return "\n".join(out)


def _single_line(inc: Incompatibility) -> bool:
    """Derived straight from two external facts."""
    return not any(c is not None and c.derived for c in (inc.cause1, inc.cause2))


def _and(first: str, second: str) -> str:
    """Join two facts; "you require a" and "you require b" read as "you require a and b"."""
    lead = "you require "
    if first.startswith(lead) and second.startswith(lead):
        return f"{first} and {second[len(lead) :]}"
    return f"{first} and {second}"


def _fill_gaps(vset: VersionSet, versions: list[Version]) -> VersionSet:
    """``vset`` plus every gap between its intervals that holds none of ``versions``."""
    result = vset
    for lo, hi in vset.complement().intervals():
        gap = VersionSet((lo, hi))
        if not any(v in gap for v in versions):
            result = result | gap
    return result


def explain(incompat: Incompatibility, versions_of: VersionsOf) -> str:
    """The derivation of ``incompat`` (a failure) in plain English, one sentence a line."""
    writer = _Writer(versions_of)
    if not incompat.derived:
        return f"Because {writer.describe(incompat)}, your requirements are unsatisfiable."
    writer.count(incompat)
    writer.visit(incompat, conclusion=True)
    return writer.text()
