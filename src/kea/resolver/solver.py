"""PubGrub: unit propagation, decisions, conflict resolution with backjumping.

The algorithm is the one described for Dart's pub (and pubgrub-rs, and uv); this is our own code.
The partial solution is a list of assignments (decisions and derivations), each at a decision
level; every package keeps the running intersection of its assignments. Incompatibilities are
indexed by package. A conflict is resolved by deriving new incompatibilities until one would
have let us avoid the conflict earlier, then jumping back there.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

import kea.log
from kea.dist import parsed
from kea.dist.names import canonicalize_name
from kea.errors import KeaError
from kea.resolver.candidates import Candidates, allowed_versions
from kea.resolver.deps import (
    Edge,
    EdgeBuilder,
    Environment,
    has_explicit_prerelease,
    package_key,
    parse_requirement,
    split_key,
)
from kea.resolver.incompat import (
    K_CONSTRAINT,
    K_DEPENDENCY,
    K_NO_VERSIONS,
    K_PACKAGE_UNAVAILABLE,
    K_ROOT,
    K_UNAVAILABLE,
    ROOT,
    ROOT_VERSION,
    Incompatibility,
    Term,
    prior_cause,
)
from kea.resolver.protocol import (
    PRERELEASE_MODES,
    RESOLUTION_MODES,
    Options,
    Provider,
    Resolution,
    ResolutionError,
    Unavailable,
)
from kea.resolver.ranges import VersionSet

if TYPE_CHECKING:
    from packaging.requirements import Requirement

log = kea.log.get("kea.resolver")

_SATISFIED, _ALMOST, _CONTRADICTED, _INCONCLUSIVE = range(4)


class _Assignment:
    __slots__ = ("acc", "cause", "index", "level", "package", "term")

    def __init__(
        self,
        package: str,
        term: Term,
        level: int,
        index: int,
        cause: Incompatibility | None,
        acc: Term,
    ) -> None:
        self.package = package
        self.term = term
        self.level = level
        self.index = index
        self.cause = cause  # None for a decision
        self.acc = acc  # intersection of this package's assignments up to this one


class _State:
    __slots__ = ("acc", "assignments", "decided")

    def __init__(self) -> None:
        self.assignments: list[_Assignment] = []
        self.acc: Term | None = None
        self.decided: Version | None = None


class Solver:
    """One resolution. Use ``resolve()`` rather than this class directly."""

    def __init__(
        self,
        requirements: Sequence[Requirement | str],
        provider: Provider,
        options: Options,
    ) -> None:
        if options.prerelease not in PRERELEASE_MODES:
            raise KeaError(f"unknown pre-release mode {options.prerelease!r}")
        if options.resolution not in RESOLUTION_MODES:
            raise KeaError(f"unknown resolution mode {options.resolution!r}")
        self.provider = provider
        self.options = options
        self.env = Environment(options.environment)
        reqs = [parse_requirement(r) for r in requirements]
        constraints = [parse_requirement(r) for r in options.constraints]
        overrides = [parse_requirement(r) for r in options.overrides]
        self.edges = EdgeBuilder(self.env, overrides)
        self.root_edges = self.edges.root_edges(reqs)
        self.direct = {split_key(dep)[0] for dep, _ in self.root_edges}
        self.explicit_pre = {
            canonicalize_name(r.name)
            for r in (*reqs, *constraints, *overrides)
            if has_explicit_prerelease(r)
        }
        self.preferences: dict[str, Version] = {}
        for name, pref in options.preferences.items():
            try:
                self.preferences[canonicalize_name(name)] = (
                    pref if isinstance(pref, Version) else Version(pref)
                )
            except InvalidVersion:
                continue
        self.constraints: dict[str, VersionSet] = {}
        for req in constraints:
            if self.env.holds(req.marker):
                name = canonicalize_name(req.name)
                vset = VersionSet.from_specifiers(parsed.specifier_text(req))
                have = self.constraints.get(name)
                self.constraints[name] = vset if have is None else have & vset

        self._assignments: list[_Assignment] = []
        self._states: dict[str, _State] = {}
        self._level = 0
        self._incompats: dict[str, list[Incompatibility]] = {}
        self._order: dict[str, int] = {}
        self._conflicts: dict[str, int] = {}
        self._candidates: dict[str, Candidates | Unavailable] = {}
        self._raw_deps: dict[tuple[str, Version], Sequence[Requirement] | Unavailable] = {}
        self._dep_index: dict[tuple[str, str, VersionSet], Incompatibility] = {}
        self._chosen_edges: dict[tuple[str, Version], list[Edge]] = {}
        self._prefetched: set[str] = set()
        self._counts: dict[str, tuple[VersionSet, int]] = {}
        # The undecided packages with a positive term, as a heap of (key, seq, package, vset)
        # with lazy deletion: a package whose term, decision or conflict count changed is
        # "touched" (every assignment and every undone one); the next _pick_package works out
        # the keys of the touched packages only, and drops an entry its package has outgrown.
        self._touched: set[str] = set()
        self._heap: list[tuple[tuple[int, int, int, int], int, str, VersionSet]] = []
        self._pushed = 0
        self.stats = {"decisions": 0, "conflicts": 0, "backjumps": 0}
        # The last decision, reported to the provider's optional ``decided(name, version)``
        # once its dependencies have been propagated, while the search has met no conflict.
        self._unreported: tuple[str, Version] | None = None
        self._decided_hook = getattr(provider, "decided", None)

    # -- public -----------------------------------------------------------------------------------
    def solve(self, *, pinned: bool = True) -> Resolution:
        """The solution, or ``ResolutionError``. ``pinned``: try ``kea.resolver.pinned`` first
        (False: search at once; the tests compare the two)."""
        self._add(Incompatibility({ROOT: Term(False, VersionSet.exact(ROOT_VERSION))}, K_ROOT))
        for name, vset in self.constraints.items():
            self._add(
                Incompatibility({name: Term(True, vset.complement())}, K_CONSTRAINT),
            )
        self._prefetch([split_key(dep)[0] for dep, _ in self.root_edges])
        if pinned:
            from kea.resolver.pinned import pinned_solution

            checked = pinned_solution(self)
            if checked is not None:
                log.debug("every package pinned: %(decisions)d checked, no search", self.stats)
                return checked
        nxt: str | None = ROOT
        while nxt is not None:
            self._propagate(nxt)
            nxt = self._decide()
        log.debug(
            "resolved in %(decisions)d decisions, %(conflicts)d conflicts, %(backjumps)d backjumps",
            self.stats,
        )
        return self._result()

    # -- partial solution -------------------------------------------------------------------------
    def _state(self, package: str) -> _State:
        st = self._states.get(package)
        if st is None:
            st = self._states[package] = _State()
        return st

    def _assign(self, package: str, term: Term, cause: Incompatibility | None) -> None:
        st = self._state(package)
        acc = term if st.acc is None else st.acc.intersect(term)
        a = _Assignment(package, term, self._level, len(self._assignments), cause, acc)
        self._assignments.append(a)
        st.assignments.append(a)
        st.acc = acc
        self._touched.add(package)

    def _backtrack(self, level: int) -> None:
        assignments = self._assignments
        while assignments and assignments[-1].level > level:
            a = assignments.pop()
            st = self._states[a.package]
            st.assignments.pop()
            if a.cause is None:
                st.decided = None
            st.acc = st.assignments[-1].acc if st.assignments else None
            self._touched.add(a.package)
        self._level = level

    def _add(self, incompat: Incompatibility) -> None:
        for package in incompat.terms:
            self._incompats.setdefault(package, []).append(incompat)
            if package not in self._order:
                self._order[package] = len(self._order)

    def _relation(
        self, incompat: Incompatibility, first: str | None = None
    ) -> tuple[int, str | None]:
        terms = incompat.terms
        if first is not None and len(terms) > 1:
            # The package that just changed decides most relations alone: look at it first.
            st = self._states.get(first)
            if st is not None and st.acc is not None and st.acc.disjoint_from(terms[first]):
                return _CONTRADICTED, None
        unsatisfied: str | None = None
        for package, term in terms.items():
            st = self._states.get(package)
            acc = st.acc if st is not None else None
            if acc is None:
                if unsatisfied is not None:
                    return _INCONCLUSIVE, None
                unsatisfied = package
                continue
            if acc.subset_of(term):
                continue
            if acc.disjoint_from(term):
                return _CONTRADICTED, None
            if unsatisfied is not None:
                return _INCONCLUSIVE, None
            unsatisfied = package
        if unsatisfied is None:
            return _SATISFIED, None
        return _ALMOST, unsatisfied

    # -- unit propagation -------------------------------------------------------------------------
    def _propagate(self, package: str) -> None:
        changed = [package]
        queued = {package}
        while changed:
            pkg = changed.pop()
            queued.discard(pkg)
            for incompat in reversed(self._incompats.get(pkg, ())):
                rel, unsatisfied = self._relation(incompat, pkg)
                if rel == _SATISFIED:
                    root_cause = self._resolve_conflict(incompat)
                    rel, unsatisfied = self._relation(root_cause)
                    assert rel == _ALMOST and unsatisfied is not None
                    self._assign(unsatisfied, root_cause.terms[unsatisfied].negate(), root_cause)
                    changed = [unsatisfied]
                    queued = {unsatisfied}
                    break
                if rel == _ALMOST:
                    assert unsatisfied is not None
                    self._assign(unsatisfied, incompat.terms[unsatisfied].negate(), incompat)
                    if unsatisfied not in queued:
                        changed.append(unsatisfied)
                        queued.add(unsatisfied)

    def _resolve_conflict(self, incompat: Incompatibility) -> Incompatibility:
        self.stats["conflicts"] += 1
        created = False
        while not incompat.is_failure():
            sat, previous = self._satisfier(incompat)
            previous_level = max(1, previous.level if previous is not None else 1)
            self._conflicts[sat.package] = self._conflicts.get(sat.package, 0) + 1
            self._touched.add(sat.package)
            if sat.cause is None or previous_level != sat.level:
                if created:
                    self._add(incompat)
                if previous_level < self._level:
                    self.stats["backjumps"] += 1
                self._backtrack(previous_level)
                return incompat
            incompat = prior_cause(incompat, sat.cause, sat.package)
            created = True
        raise self._failure(incompat)

    def _satisfier(self, incompat: Incompatibility) -> tuple[_Assignment, _Assignment | None]:
        """The assignment that completed ``incompat``, and the latest one it needed before."""
        found: dict[str, _Assignment] = {}
        for package, term in incompat.terms.items():
            for a in self._states[package].assignments:
                if a.acc.subset_of(term):
                    found[package] = a
                    break
            else:  # pragma: no cover - the incompatibility is satisfied by construction
                raise AssertionError(f"{incompat!r} is not satisfied")
        sat = max(found.values(), key=lambda a: a.index)
        previous: _Assignment | None = None
        for package, a in found.items():
            if package != sat.package and (previous is None or a.index > previous.index):
                previous = a
        term = incompat.terms[sat.package]
        if not sat.term.subset_of(term):
            for a in self._states[sat.package].assignments:
                if a.index >= sat.index:
                    break
                if a.acc.intersect(sat.term).subset_of(term):
                    if previous is None or a.index > previous.index:
                        previous = a
                    break
        return sat, previous

    # -- decisions --------------------------------------------------------------------------------
    def _candidates_of(self, name: str) -> Candidates | Unavailable:
        hit = self._candidates.get(name)
        if hit is not None:
            return hit
        if name == ROOT:
            result: Candidates | Unavailable = Candidates([ROOT_VERSION], [])
        else:
            got = self.provider.versions(name)
            result = (
                got
                if isinstance(got, Unavailable)
                else allowed_versions(
                    got,
                    self.options.prerelease,
                    explicit=name in self.explicit_pre,
                    preferred=self.preferences.get(name),
                )
            )
            ranked = getattr(self.provider, "version_tiers", None)
            tiers = ranked(name) if ranked is not None and isinstance(result, Candidates) else None
            if tiers and isinstance(result, Candidates):
                result.set_tiers(tiers)
        self._candidates[name] = result
        return result

    def _pick_package(self) -> tuple[str, VersionSet] | None:
        """The undecided package with a positive term and the least key: one candidate or none
        first, then a package often in conflicts, then the fewest candidates, then the order
        packages appeared in. Ties cannot happen (the order is unique)."""
        states = self._states
        heap = self._heap
        for package in self._touched:
            st = states[package]
            acc = st.acc
            if acc is None or not acc.positive or st.decided is not None:
                continue
            heapq.heappush(heap, (self._key(package, acc.vset), self._pushed, package, acc.vset))
            self._pushed += 1
        self._touched.clear()
        while heap:
            key, _, package, vset = heap[0]
            st = states[package]
            acc = st.acc
            if (
                acc is not None
                and acc.vset is vset
                and acc.positive
                and st.decided is None
                and key[1] == self._conflict_rank(package)
            ):
                return package, vset  # stays in the heap: picked again if nothing changes
            heapq.heappop(heap)
        return None

    def _key(self, package: str, vset: VersionSet) -> tuple[int, int, int, int]:
        cached = self._counts.get(package)
        if cached is not None and cached[0] is vset:
            count = cached[1]
        else:
            cands = self._candidates_of(split_key(package)[0])
            count = 0 if isinstance(cands, Unavailable) else vset.count_in(cands.points)
            self._counts[package] = (vset, count)
        return (
            0 if count <= 1 else 1,
            self._conflict_rank(package),
            count,
            self._order.get(package, 1 << 30),
        )

    def _conflict_rank(self, package: str) -> int:
        conflicts = self._conflicts.get(package, 0)
        return -conflicts if conflicts >= 3 else 0

    def _choose_version(self, package: str, vset: VersionSet, cands: Candidates) -> Version | None:
        name, extra = split_key(package)
        if extra is not None:
            base = self._states.get(name)
            if base is not None and base.decided is not None and base.decided in vset:
                return base.decided
        pref = self.preferences.get(name)
        if pref is not None and pref in cands.members and pref in vset:
            return pref
        mode = self.options.resolution
        lowest = mode == "lowest" or (mode == "lowest-direct" and name in self.direct)
        if cands.tiers is not None:
            for versions, points in cands.tiers:
                index = vset.first_in(points, highest=not lowest)
                if index is not None:
                    return versions[index]
            return None
        index = vset.first_in(cands.points, highest=not lowest)
        return None if index is None else cands.versions[index]

    def _decide(self) -> str | None:
        if self._unreported is not None:
            self._report(*self._unreported)
        picked = self._pick_package()
        if picked is None:
            return None
        package, vset = picked
        name, _ = split_key(package)
        cands = self._candidates_of(name)
        if isinstance(cands, Unavailable):
            self._add(
                Incompatibility(
                    {package: Term(True, VersionSet.full())},
                    K_PACKAGE_UNAVAILABLE,
                    reason=cands.reason,
                )
            )
            return package
        version = self._choose_version(package, vset, cands)
        if version is None:
            self._add(Incompatibility({package: Term(True, vset)}, K_NO_VERSIONS))
            return package
        edges = self._dependencies(package, version)
        if isinstance(edges, Unavailable):
            self._add(
                Incompatibility(
                    {package: Term(True, VersionSet.exact(version))},
                    K_UNAVAILABLE,
                    reason=edges.reason,
                )
            )
            return package
        conflict = False
        for dep, dep_set in edges:
            incompat = self._dependency_incompat(package, version, dep, dep_set, cands)
            self._add(incompat)
            if not conflict and self._blocks(incompat, package):
                conflict = True
        if not conflict:
            self._level += 1
            self.stats["decisions"] += 1
            self._assign(package, Term(True, VersionSet.exact(version)), None)
            self._states[package].decided = version
            if self._decided_hook is not None and package != ROOT:
                self._unreported = (package, version)
        return package

    def _report(self, package: str, version: Version) -> None:
        """Tell the provider that the last decision stood its propagation: its dependencies
        met no conflict. Only while the search has met none at all (nothing was ever undone):
        a search that backtracks may still undo it, and the provider acts on it (the wheel's
        download starts, ``kea.resolver.provider_fetch``)."""
        self._unreported = None
        if self.stats["conflicts"] == 0 and self._decided_hook is not None:
            self._decided_hook(split_key(package)[0], version)

    def _blocks(self, incompat: Incompatibility, package: str) -> bool:
        """Whether deciding ``package`` would immediately satisfy ``incompat``."""
        for other, term in incompat.terms.items():
            if other == package:
                continue
            st = self._states.get(other)
            if st is None or st.acc is None or not st.acc.subset_of(term):
                return False
        return True

    def _dependencies(self, package: str, version: Version) -> list[Edge] | Unavailable:
        if package == ROOT:
            return self.root_edges
        name, _ = split_key(package)
        raw = self._raw_deps.get((name, version))
        if raw is None:
            self.provider.on_decision(name, version)
            raw = self._raw_deps[(name, version)] = self.provider.dependencies(name, version)
        if isinstance(raw, Unavailable):
            return raw
        edges = self.edges.edges(package, version, raw)
        self._chosen_edges[(package, version)] = edges
        self._prefetch([split_key(dep)[0] for dep, _ in edges])
        return edges

    def _prefetch(self, names: list[str]) -> None:
        fresh = [n for n in dict.fromkeys(names) if n not in self._prefetched]
        if fresh:
            self._prefetched.update(fresh)
            self.provider.prefetch(fresh)

    def _dependency_incompat(
        self, package: str, version: Version, dep: str, dep_set: VersionSet, cands: Candidates
    ) -> Incompatibility:
        own = VersionSet.exact(version)
        if dep == package:  # depends on itself, at other versions only
            return Incompatibility(
                {package: Term(True, own)}, K_UNAVAILABLE, reason=f"depends on {dep}{dep_set}"
            )
        if dep_set.is_empty():
            return Incompatibility(
                {package: Term(True, own)},
                K_UNAVAILABLE,
                reason=f"{dep} with an empty version range",
            )
        key = (package, dep, dep_set)
        existing = self._dep_index.get(key)
        if existing is not None and package != ROOT:
            # Same dependency as a neighbouring version: widen its range to cover this one.
            have = existing.terms[package].vset
            index = cands.versions.index(version) if version in cands.members else -1
            if index >= 0:
                for j in (index - 1, index + 1):
                    if 0 <= j < len(cands.versions) and cands.versions[j] in have:
                        nb = cands.versions[j]
                        lo, hi = (nb, version) if j < index else (version, nb)
                        own = have | VersionSet.between(lo, hi)
                        break
        incompat = Incompatibility(
            {package: Term(True, own), dep: Term(False, dep_set)}, K_DEPENDENCY
        )
        self._dep_index[key] = incompat
        return incompat

    # -- answers ----------------------------------------------------------------------------------
    def _result(self) -> Resolution:
        packages: dict[str, Version] = {}
        extras: dict[str, set[str]] = {}
        chosen: dict[str, Version] = {}
        for package, st in self._states.items():
            if package == ROOT or st.decided is None:
                continue
            chosen[package] = st.decided
            name, extra = split_key(package)
            packages[name] = st.decided
            if extra is not None:
                extras.setdefault(name, set()).add(extra)
        graph: dict[str, set[str]] = {name: set() for name in packages}
        for package, version in chosen.items():
            name, _ = split_key(package)
            for dep, _vset in self._chosen_edges.get((package, version), ()):
                dep_name = split_key(dep)[0]
                if dep_name != name and dep_name in packages:
                    graph[name].add(dep_name)
        return Resolution(
            packages=dict(sorted(packages.items())),
            extras={k: frozenset(v) for k, v in sorted(extras.items())},
            dependencies={k: frozenset(v) for k, v in sorted(graph.items())},
        )

    def _failure(self, incompat: Incompatibility) -> ResolutionError:
        from kea.resolver.report import explain, packages_in, prerelease_hints

        def versions_of(name: str) -> list[Version] | None:
            cands = self._candidates.get(name)
            return cands.versions if isinstance(cands, Candidates) else None

        def excluded_of(name: str) -> list[Version]:
            cands = self._candidates.get(name)
            return cands.excluded_pre if isinstance(cands, Candidates) else []

        error = ResolutionError(explain(incompat, versions_of))
        error.incompatibility = incompat
        error.packages = packages_in(incompat)
        for hint in prerelease_hints(incompat, excluded_of):
            error.add_hint(hint)
        return error


def resolve(
    requirements: Sequence[Requirement | str],
    provider: Provider,
    options: Options | None = None,
    **policies: object,
) -> Resolution:
    """Resolve ``requirements`` against ``provider``; raise ``ResolutionError`` when impossible.

    ``policies`` are ``Options`` fields given as keywords (``prerelease="allow"``...), for
    convenience; pass either ``options`` or keywords.
    """
    if options is None:
        options = Options(**policies)  # type: ignore[arg-type]
    elif policies:
        raise TypeError("pass either options or keyword policies, not both")
    return Solver(requirements, provider, options).solve()


def package_name(name: str, extra: str | None = None) -> str:
    """The resolver's key for a package (``name`` or ``name[extra]``), canonical."""
    return package_key(name, extra)


__all__ = ["Solver", "package_name", "resolve"]
