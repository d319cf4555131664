"""A request that pins every package (kea.resolver.pinned): its solution is checked, not
searched for, and must be exactly what the search finds; anything else falls back to it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from kea.resolver import ResolutionError, Unavailable
from kea.resolver.pinned import pinned_solution
from kea.resolver.protocol import Options
from kea.resolver.solver import Solver

from .universe import Universe


def _solver(universe: dict, roots: list[str], **options: Any) -> Solver:
    return Solver(roots, Universe(universe), Options(**options))


def test_a_locked_request_is_checked_without_a_search() -> None:
    universe = {
        "app": {"1.0": ["lib>=2", "tool[fast]<4; python_version >= '3'"], "2.0": ["lib>=3"]},
        "lib": {"1.0": [], "2.0": ["helper"], "3.0": []},
        "helper": {"0.9": [], "1.0": []},
        "tool": {"3.0": ["speedups; extra == 'fast'"], "4.0": []},
        "speedups": {"1.0": []},
    }
    roots = ["app==1.0", "lib==2.0", "helper==0.9", "tool==3.0", "speedups==1.0"]
    solver = _solver(universe, roots)
    got = pinned_solution(solver)
    assert got is not None
    assert dict(got.packages) == {
        "app": Version("1.0"),
        "helper": Version("0.9"),
        "lib": Version("2.0"),
        "speedups": Version("1.0"),
        "tool": Version("3.0"),
    }
    assert got.extras == {"tool": frozenset({"fast"})}
    assert got.dependencies["app"] == frozenset({"lib", "tool"})
    assert got.dependencies["tool"] == frozenset({"speedups"})
    assert solver.stats["conflicts"] == 0
    searched = _solver(universe, roots).solve(pinned=False)
    assert (got.packages, got.extras, got.dependencies) == (
        searched.packages,
        searched.extras,
        searched.dependencies,
    )


def test_a_dependency_not_pinned_is_left_to_the_search() -> None:
    universe = {"app": {"1.0": ["lib"]}, "lib": {"1.0": [], "2.0": []}}
    assert pinned_solution(_solver(universe, ["app==1.0"])) is None
    result = _solver(universe, ["app==1.0"]).solve()
    assert result["lib"] == Version("2.0")


def test_a_pin_outside_a_range_is_left_to_the_search_which_explains_it() -> None:
    universe = {"app": {"1.0": ["lib>=2"]}, "lib": {"1.0": [], "2.0": []}}
    roots = ["app==1.0", "lib==1.0"]
    assert pinned_solution(_solver(universe, roots)) is None
    with pytest.raises(ResolutionError) as e:
        _solver(universe, roots).solve()
    assert "lib" in e.value.explanation


def test_what_the_check_leaves_to_the_search() -> None:
    base = {"app": {"1.0": ["lib==1.0"]}, "lib": {"1.0": [], "1.5": [], "2.0rc1": []}}
    # A range that leaves two candidates: not a pin. (2.0rc1 is not one: the pre-release
    # policy leaves it out; a range with one candidate left counts as a pin.)
    assert pinned_solution(_solver(base, ["app==1.0", "lib>=1"])) is None
    assert pinned_solution(_solver(base, ["app==1.0", "lib<1.2"])) is not None
    # Metadata that cannot be used.
    broken = {"app": {"1.0": Unavailable("has no usable wheel")}}
    assert pinned_solution(_solver(broken, ["app==1.0"])) is None
    # A pin outside a constraint.
    assert pinned_solution(_solver(base, ["app==1.0", "lib==1.0"], constraints=["lib>1"])) is None
    # A package unknown to the index.
    assert pinned_solution(_solver(base, ["ghost==1.0"])) is None
    # A pre-release the policy leaves out unless it is asked for by name.
    pre = {"app": {"1.0": ["lib>=2.0rc1"]}, "lib": {"2.0rc1": [], "1.0": []}}
    assert pinned_solution(_solver(pre, ["app==1.0", "lib==2.0rc1"])) is not None
    assert pinned_solution(_solver(pre, ["app==1.0", "lib==2.0rc1"], prerelease="disallow")) is None


NAMES = ["p0", "p1", "p2", "p3"]
VERSIONS = ["1.0", "1.5", "2.0"]
SPECS = ["", "", "", ">=1.5", "<2", "==1.0", "!=2.0", "~=1.5"]

dep_st = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(["", "[x]"]),
    st.sampled_from(SPECS),
    st.sampled_from(["", "; extra == 'x'", "; python_version < '3'"]),
).map(lambda t: t[0] + t[1] + t[2] + t[3])
release_st = st.one_of(
    *[st.lists(dep_st, max_size=3)] * 4,
    st.just(Unavailable("has no wheels with a matching platform tag")),
)


@st.composite
def locked_requests(draw: Any) -> tuple[dict, list[str], list[str]]:
    present = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    universe = {
        name: {
            v: draw(release_st)
            for v in draw(st.lists(st.sampled_from(VERSIONS), min_size=1, max_size=3, unique=True))
        }
        for name in present
    }
    # Mostly every package of the universe pinned (a lock file), sometimes one more or fewer.
    pinned = [n for n in present if draw(st.integers(0, 5))] or present[:1]
    pinned += draw(st.lists(st.sampled_from(NAMES), max_size=1))
    roots = [
        f"{n}{draw(st.sampled_from(['', '[x]']))}=="
        + draw(st.sampled_from(sorted(universe.get(n, VERSIONS))))
        for n in dict.fromkeys(pinned)
    ]
    every = [f"{n}{s}" for n in NAMES for s in SPECS]
    constraints = draw(st.lists(st.sampled_from(every), max_size=1))
    return universe, roots, constraints


def _outcome(run: Any) -> Any:
    try:
        r = run()
    except ResolutionError:
        return "unsatisfiable"
    return (dict(r.packages), r.extras, r.dependencies)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(locked_requests())
def test_the_check_agrees_with_the_search(case: tuple[dict, list[str], list[str]]) -> None:
    universe, roots, constraints = case
    checked = _outcome(lambda: _solver(universe, roots, constraints=constraints).solve())
    searched = _outcome(
        lambda: _solver(universe, roots, constraints=constraints).solve(pinned=False)
    )
    assert checked == searched
