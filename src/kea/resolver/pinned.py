"""A request that pins every package it reaches: its solution checked, not searched for.

A locked requirements file (``uv pip compile``'s output) names every package of its solution,
each with ``==``. There is nothing to search for: each package may take one version only, and
PubGrub can only confirm that those versions fit together or find that they do not. Confirming
them through PubGrub's bookkeeping (terms, incompatibilities, propagation) took ~20 ms of a warm
jupyter ``--dry-run`` (97 packages) here, a sixth of the run.

``pinned_solution`` walks the graph from the root instead, with the solver's own candidates
(pre-release policy applied) and edges (markers, extras, overrides applied), and checks that
every package reached is pinned by a top-level requirement to exactly one candidate, inside
every range that points at it and inside its constraint. Then PubGrub would decide exactly those
packages at exactly those versions, without a conflict; the same ``Resolution`` is built. On
anything else (a package not pinned, a version outside a range, anything unavailable) it
answers None, and the solver searches as usual, which also explains failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kea.resolver.deps import split_key
from kea.resolver.protocol import Unavailable

if TYPE_CHECKING:
    from packaging.version import Version

    from kea.resolver.protocol import Resolution
    from kea.resolver.solver import Solver


def pinned_solution(solver: Solver) -> Resolution | None:
    """The solution of ``solver``'s request when every package it reaches is pinned, else None.

    Leaves ``solver`` as a search would find it only on success (its packages decided); on
    None, only the solver's caches of candidates and dependencies have been filled."""
    pins: dict[str, Version] = {}
    for dep, vset in solver.root_edges:
        name = split_key(dep)[0]
        cands = solver._candidates_of(name)
        if isinstance(cands, Unavailable) or vset.count_in(cands.points) != 1:
            return None
        index = vset.first_in(cands.points, highest=True)
        assert index is not None
        version = cands.versions[index]
        if pins.setdefault(name, version) != version:
            return None
    for name, version in pins.items():
        constraint = solver.constraints.get(name)
        if constraint is not None and version not in constraint:
            return None

    decided: dict[str, Version] = {}
    todo = [dep for dep, _ in solver.root_edges]
    while todo:
        package = todo.pop()
        if package in decided:
            continue
        pinned = pins.get(split_key(package)[0])
        if pinned is None:
            return None
        edges = solver._dependencies(package, pinned)
        if isinstance(edges, Unavailable):
            return None
        for dep, dep_set in edges:
            pin = pins.get(split_key(dep)[0])
            if dep == package or pin is None or pin not in dep_set:
                return None
            if dep not in decided:
                todo.append(dep)
        decided[package] = pinned
    for package, version in decided.items():
        solver._state(package).decided = version
    solver.stats["decisions"] = len(decided)
    return solver._result()
