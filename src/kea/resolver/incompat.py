"""Terms and incompatibilities, PubGrub's two facts.

A ``Term`` is a statement about one package: positive ("a is selected, at a version in S") or
negative ("a is not selected at a version in S" — it may be absent). An ``Incompatibility`` is a
set of terms that must not all hold at once; it remembers why (its ``kind`` and, when derived, the
two incompatibilities it was derived from), which is what failure explanations are built from.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from packaging.version import Version

from kea.resolver.ranges import VersionSet

ROOT = "<root>"  # the virtual package standing for "your requirements"; never a valid name
ROOT_VERSION = Version("0")

# kinds of incompatibility
K_ROOT = "root"  # {root: not 0}: the root must be selected
K_DEPENDENCY = "dependency"  # {a: S, b: not R}: a S depends on b R
K_NO_VERSIONS = "no-versions"  # {a: S}: no candidate version of a lies in S
K_UNAVAILABLE = "unavailable"  # {a: ==v}: a==v can't be used (reason)
K_PACKAGE_UNAVAILABLE = "package-unavailable"  # {a: *}: no version of a at all (reason)
K_CONSTRAINT = "constraint"  # {a: not C}: a constraint (-c) allows only C
K_DERIVED = "derived"

_ids = itertools.count()


class Term:
    """``positive``: the package is selected at a version in ``vset``; else it is not."""

    __slots__ = ("positive", "vset")

    def __init__(self, positive: bool, vset: VersionSet) -> None:
        self.positive = positive
        self.vset = vset

    def negate(self) -> Term:
        return Term(not self.positive, self.vset)

    def intersect(self, other: Term) -> Term:
        if self.positive:
            if other.positive:
                return Term(True, self.vset & other.vset)
            return Term(True, self.vset - other.vset)
        if other.positive:
            return Term(True, other.vset - self.vset)
        return Term(False, self.vset | other.vset)

    def union(self, other: Term) -> Term:
        return self.negate().intersect(other.negate()).negate()

    def is_any(self) -> bool:
        """Always true (``not ∅``): such a term says nothing."""
        return not self.positive and self.vset.is_empty()

    def subset_of(self, other: Term) -> bool:
        """Every state satisfying ``self`` satisfies ``other``."""
        if self.positive:
            if other.positive:
                return self.vset.is_subset(other.vset)
            return self.vset.is_disjoint(other.vset)
        if other.positive:
            return False
        return other.vset.is_subset(self.vset)

    def disjoint_from(self, other: Term) -> bool:
        """No state satisfies both."""
        if self.positive:
            if other.positive:
                return self.vset.is_disjoint(other.vset)
            return self.vset.is_subset(other.vset)
        if other.positive:
            return other.vset.is_subset(self.vset)
        return False

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Term) and self.positive == other.positive and self.vset == other.vset
        )

    def __hash__(self) -> int:
        return hash((self.positive, self.vset))

    def __repr__(self) -> str:
        return ("" if self.positive else "not ") + str(self.vset)


class Incompatibility:
    """Terms that cannot all be true, and why."""

    __slots__ = ("cause1", "cause2", "id", "kind", "reason", "terms")

    def __init__(
        self,
        terms: Mapping[str, Term],
        kind: str,
        *,
        causes: tuple[Incompatibility, Incompatibility] | None = None,
        reason: str | None = None,
    ) -> None:
        self.terms: dict[str, Term] = dict(terms)
        self.kind = kind
        self.cause1: Incompatibility | None = causes[0] if causes else None
        self.cause2: Incompatibility | None = causes[1] if causes else None
        self.reason = reason
        self.id = next(_ids)

    @property
    def derived(self) -> bool:
        return self.cause1 is not None

    def is_failure(self) -> bool:
        """Empty, or only "the root is selected": the requirements themselves are impossible."""
        if not self.terms:
            return True
        if len(self.terms) == 1:
            term = self.terms.get(ROOT)
            return term is not None and term.positive
        return False

    def __repr__(self) -> str:
        inner = ", ".join(f"{p} {t!r}" for p, t in self.terms.items())
        return f"<{self.kind} {{{inner}}}>"


def prior_cause(incompat: Incompatibility, cause: Incompatibility, package: str) -> Incompatibility:
    """Resolve two incompatibilities on ``package`` (PubGrub's resolution rule)."""
    terms: dict[str, Term] = {}
    for name, term in incompat.terms.items():
        if name != package:
            terms[name] = term
    for name, term in cause.terms.items():
        if name == package:
            continue
        have = terms.get(name)
        terms[name] = term if have is None else have.intersect(term)
    mine = incompat.terms[package].union(cause.terms[package])
    if not mine.is_any():
        terms[package] = mine
    return Incompatibility(terms, K_DERIVED, causes=(incompat, cause))
