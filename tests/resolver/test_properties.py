"""Property tests: solutions satisfy everything; "no solution" only when brute force agrees."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.version import Version

from kea.resolver import ResolutionError, Unavailable, resolve

from .universe import Universe

NAMES = ["p0", "p1", "p2", "p3", "p4"]
VERSIONS = ["1.0", "1.5", "2.0", "3.0"]
SPECS = ["", ">=2", "<2", "==1.0", "!=2.0", ">=1.5,<3", "==3.0", "<=2.0", ">1.0", "~=1.5"]

dep_st = st.tuples(st.sampled_from(NAMES), st.sampled_from(SPECS)).map(lambda t: t[0] + t[1])
release_st = st.one_of(
    st.lists(dep_st, max_size=3),
    st.just(Unavailable("has no wheels with a matching platform tag")),
)


@st.composite
def universes(draw: Any) -> tuple[dict, list[str], list[str]]:
    present = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    universe: dict = {}
    for name in present:
        versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=1, max_size=4, unique=True))
        universe[name] = {v: draw(release_st) for v in versions}
    roots = draw(st.lists(dep_st, min_size=1, max_size=3))
    constraints = draw(st.lists(dep_st, max_size=1))
    return universe, roots, constraints


def _edges(reqs: list[str]) -> list[tuple[str, Requirement]]:
    return [(Requirement(r).name, Requirement(r)) for r in reqs]


def _valid(universe: dict, roots: list[str], constraints: list[str], pick: dict) -> bool:
    def ok(req: Requirement) -> bool:
        v = pick.get(req.name)
        return v is not None and req.specifier.contains(Version(v), prereleases=True)

    if not all(ok(r) for _, r in _edges(roots)):
        return False
    for name, req in _edges(constraints):
        v = pick.get(name)
        if v is not None and not req.specifier.contains(Version(v), prereleases=True):
            return False
    for name, v in pick.items():
        deps = universe[name][v]
        if isinstance(deps, Unavailable):
            return False
        if not all(ok(r) for _, r in _edges(deps)):
            return False
    return True


def _brute_force(universe: dict, roots: list[str], constraints: list[str]) -> dict | None:
    names = sorted(universe)
    options = [[None, *universe[n]] for n in names]
    for combo in itertools.product(*options):
        pick = {n: v for n, v in zip(names, combo, strict=True) if v is not None}
        if _valid(universe, roots, constraints, pick):
            return pick
    return None


def _normal(universe: dict) -> dict:
    # Versions as the resolver reports them (str of Version).
    return {
        name: {str(Version(v)): deps for v, deps in vs.items()} for name, vs in universe.items()
    }


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(universes(), st.sampled_from(["highest", "lowest", "lowest-direct"]))
def test_solutions_are_valid_and_failures_are_real(
    case: tuple[dict, list[str], list[str]], resolution: str
) -> None:
    universe, roots, constraints = case
    universe = _normal(universe)
    try:
        result = resolve(roots, Universe(universe), constraints=constraints, resolution=resolution)
    except ResolutionError as e:
        assert e.explanation.strip()
        assert e.explanation.splitlines()[-1].endswith(
            "we can conclude that your requirements are unsatisfiable."
        ) or e.explanation.startswith("Because")
        assert _brute_force(universe, roots, constraints) is None, e.explanation
        return
    pick = {name: str(v) for name, v in result.items()}
    assert _valid(universe, roots, constraints, pick), pick


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(universes())
def test_highest_is_maximal_for_a_single_requirement(
    case: tuple[dict, list[str], list[str]],
) -> None:
    # With one root requirement on a package without dependencies, "highest" picks the best
    # usable version exactly (nothing to trade off).
    universe, roots, _ = case
    universe = _normal(universe)
    name = Requirement(roots[0]).name
    if name not in universe:
        return
    universe[name] = {
        v: (deps if isinstance(deps, Unavailable) else []) for v, deps in universe[name].items()
    }
    spec = Requirement(roots[0]).specifier
    usable = [
        Version(v)
        for v, deps in universe[name].items()
        if not isinstance(deps, Unavailable) and spec.contains(Version(v), prereleases=True)
    ]
    try:
        result = resolve([roots[0]], Universe(universe))
    except ResolutionError:
        assert usable == []
        return
    assert result[name] == max(usable)
