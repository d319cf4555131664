"""A synthetic ~300-package universe: resolves completely and consistently (and quickly).

No timing assertion (tests run in parallel on busy machines); measured by hand at well under a
second. What is asserted: every package is resolved and every requirement is met.
"""

from __future__ import annotations

import random

from packaging.requirements import Requirement
from packaging.version import Version

from kea.resolver import Options
from kea.resolver.solver import Solver

from .universe import Universe

N = 300


def synthetic_universe(seed: int = 7) -> dict[str, dict[str, list[str]]]:
    rnd = random.Random(seed)
    universe: dict[str, dict[str, list[str]]] = {}
    for i in range(N):
        versions: dict[str, list[str]] = {}
        for major in range(1, 5):
            for minor in range(3):
                deps = []
                if i + 1 < N:
                    deps.append(f"pkg{i + 1}>={rnd.randint(1, 2)}.0")
                for j in rnd.sample(range(i + 2, N), k=min(3, max(0, N - i - 2))):
                    deps.append(f"pkg{j}>={rnd.randint(1, 3)}.0")
                if i % 5 == 0 and major >= 3:
                    # newest releases of every fifth package want a core the root forbids
                    deps.append("core>=3")
                versions[f"{major}.{minor}"] = deps
        universe[f"pkg{i}"] = versions
    universe["core"] = {f"{m}.0": [] for m in range(1, 6)}
    return universe


def test_three_hundred_packages() -> None:
    universe = synthetic_universe()
    solver = Solver(["pkg0", "pkg150", "core<3"], Universe(universe), Options())
    result = solver.solve()
    assert len(result) == N + 1
    for name, version in result.items():
        deps = universe[name][str(version)] if name != "core" else []
        for dep in deps:
            req = Requirement(dep)
            assert result[req.name] in req.specifier, (name, version, dep)
    assert result["core"] < Version("3")
    # every fifth package had to step down below its core>=3 releases
    assert all(result[f"pkg{i}"] < Version("3") for i in range(0, N, 5))
    assert result["pkg1"] == Version("4.2")
