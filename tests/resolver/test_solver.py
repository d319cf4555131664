"""The resolver on hand-built universes: every feature, with the answer it must give."""

from __future__ import annotations

import pytest
from packaging.version import Version

from kea.errors import KeaError
from kea.resolver import Options, ResolutionError, Unavailable, resolve
from kea.resolver.solver import Solver

from .universe import Universe


def pins(result: dict[str, Version]) -> dict[str, str]:
    return {name: str(v) for name, v in result.items()}


def solve(universe: dict, reqs: list[str], **policies: object) -> dict[str, str]:
    return pins(resolve(reqs, Universe(universe), **policies))


def test_simple_chain_takes_highest_versions() -> None:
    u = {
        "a": {"1.0": ["b>=1"], "2.0": ["b>=2"]},
        "b": {"1.0": [], "2.0": ["c"], "3.0": ["c<2"]},
        "c": {"1.0": [], "2.0": []},
    }
    assert solve(u, ["a"]) == {"a": "2.0", "b": "3.0", "c": "1.0"}


def test_names_are_canonicalized() -> None:
    u = {"foo-bar": {"1.0": ["Baz_Qux>=1"]}, "baz-qux": {"1.0": [], "1.5": []}}
    assert solve(u, ["Foo.Bar"]) == {"foo-bar": "1.0", "baz-qux": "1.5"}


def test_partial_satisfier_backtracking() -> None:
    # PubGrub's "conflict resolution with a partial satisfier" example.
    u = {
        "foo": {"1.0.0": [], "1.1.0": ["left>=1,<2", "right>=1,<2"]},
        "left": {"1.0.0": ["shared>=1"]},
        "right": {"1.0.0": ["shared<2"]},
        "shared": {"1.0.0": ["target>=1,<2"], "2.0.0": []},
        "target": {"1.0.0": [], "2.0.0": []},
    }
    assert solve(u, ["foo>=1,<2", "target>=2,<3"]) == {"foo": "1.0.0", "target": "2.0.0"}


def test_several_backjumps() -> None:
    # Every a==k (k > 1) pulls b==k, which pulls c==k, but x pins c to 1: only a==1 works, and
    # the solver has to learn that one version of a at a time, jumping back over b and c.
    u: dict = {
        "a": {f"{k}.0": [f"b=={k}.0"] for k in range(1, 7)},
        "b": {f"{k}.0": [f"c=={k}.0"] for k in range(1, 7)},
        "c": {f"{k}.0": [] for k in range(1, 7)},
        "x": {"1.0": ["c<2"]},
    }
    solver = Solver(["a", "x"], Universe(u), Options())
    result = pins(solver.solve())
    assert result == {"a": "1.0", "b": "1.0", "c": "1.0", "x": "1.0"}
    assert solver.stats["conflicts"] >= 3
    assert solver.stats["backjumps"] >= 3


def test_backjump_over_unrelated_decisions() -> None:
    # The conflict between a and d is only found after unrelated decisions (m, n); the fix
    # is to change a, so the solver must jump back over them, then finish.
    u = {
        "a": {"1.0": ["d"], "2.0": ["d", "e"]},
        "e": {"1.0": ["d<2"]},
        "m": {"1.0": [], "2.0": []},
        "n": {"1.0": [], "2.0": []},
        "d": {"1.0": [], "2.0": []},
        "root-pin": {"1.0": ["d>=2"]},
    }
    assert solve(u, ["a", "m", "n", "root-pin"]) == {
        "a": "1.0",
        "d": "2.0",
        "m": "2.0",
        "n": "2.0",
        "root-pin": "1.0",
    }


def test_extras_are_virtual_packages() -> None:
    u = {
        "app": {"1.0": ["lib[socks,fast]>=1"]},
        "lib": {
            "1.0": ["pysocks; extra == 'socks'"],
            "2.0": [
                "pysocks>=2; extra == 'socks'",
                "speedups; extra == 'fast'",
                "never-needed; extra == 'other'",
            ],
        },
        "pysocks": {"1.0": [], "2.0": []},
        "speedups": {"1.0": []},
    }
    universe = Universe(u)
    result = resolve(["app"], universe)
    assert pins(result) == {"app": "1.0", "lib": "2.0", "pysocks": "2.0", "speedups": "1.0"}
    assert result.extras == {"lib": frozenset({"socks", "fast"})}
    assert result.dependencies["lib"] == frozenset({"pysocks", "speedups"})
    assert "never-needed" not in universe.version_calls


def test_extra_and_base_agree_on_one_version() -> None:
    # lib[x] only exists usefully on 1.0 (2.0's extra needs a missing package): base follows.
    u = {
        "lib": {"1.0": ["helper; extra == 'x'"], "2.0": ["ghost; extra == 'x'"]},
        "helper": {"1.0": []},
    }
    assert solve(u, ["lib", "lib[x]"]) == {"lib": "1.0", "helper": "1.0"}


def test_markers_against_the_target_environment() -> None:
    u = {
        "app": {
            "1.0": [
                "winonly; sys_platform == 'win32'",
                "linuxonly; sys_platform == 'linux'",
                "old; python_version < '3.9'",
            ]
        },
        "winonly": {"1.0": []},
        "linuxonly": {"1.0": []},
        "old": {"1.0": []},
    }
    env = {"sys_platform": "win32", "python_version": "3.12", "python_full_version": "3.12.1"}
    assert solve(u, ["app"], environment=env) == {"app": "1.0", "winonly": "1.0"}
    env = {"sys_platform": "linux", "python_version": "3.8", "python_full_version": "3.8.10"}
    assert solve(u, ["app"], environment=env) == {"app": "1.0", "linuxonly": "1.0", "old": "1.0"}
    # markers on direct requirements too
    assert solve(u, ["app; sys_platform == 'darwin'"], environment=env) == {}


def test_requires_python_filtered_by_the_provider() -> None:
    # The provider drops versions whose Requires-Python excludes the target: the solver
    # falls back to the newest one left.
    u = {"tool": {"1.0": [], "1.5": []}}
    assert solve(u, ["tool"]) == {"tool": "1.5"}


def test_requires_python_as_unavailable_reason() -> None:
    u = {
        "tool": {"1.0": [], "2.0": Unavailable("requires Python>=3.14")},
    }
    assert solve(u, ["tool"]) == {"tool": "1.0"}
    with pytest.raises(ResolutionError) as err:
        solve(u, ["tool>=2"])
    assert err.value.explanation == (
        "Because only tool<=2.0 is available and tool==2.0 requires Python>=3.14, "
        "we can conclude that tool==2.0 cannot be used.\n"
        "And because you require tool>=2, we can conclude that your requirements are unsatisfiable."
    )


def test_tag_availability_skips_versions_without_wheels() -> None:
    u = {
        "np": {
            "1.0": [],
            "1.1": [],
            "1.2": Unavailable("has no wheels with a matching platform tag"),
        },
        "app": {"1.0": ["np>=1.1"]},
    }
    assert solve(u, ["app"]) == {"app": "1.0", "np": "1.1"}


def test_yanked_versions_are_the_providers_business() -> None:
    # A provider hides yanked 2.0 unless it is pinned with ==: model both views.
    hidden = {"lib": {"1.0": []}}
    pinned = {"lib": {"1.0": [], "2.0": []}}
    assert solve(hidden, ["lib"]) == {"lib": "1.0"}
    assert solve(pinned, ["lib==2.0"]) == {"lib": "2.0"}


def test_local_versions() -> None:
    u = {"torch": {"2.0": [], "2.0+cpu": [], "2.0+cu121": [], "1.9": []}}
    # ==2.0 accepts local variants; the highest local sorts first (cu121 > cpu as strings)
    assert solve(u, ["torch==2.0"]) == {"torch": "2.0+cu121"}
    assert solve(u, ["torch==2.0+cpu"]) == {"torch": "2.0+cpu"}
    with pytest.raises(ResolutionError):
        solve(u, ["torch>2.0"])  # nothing above 2.0 and its local variants
    assert solve(u, ["torch<=2.0"]) == {"torch": "2.0+cu121"}


def test_post_releases() -> None:
    u = {"lib": {"1.0": [], "1.0.post1": [], "1.0.post2": [], "1.1": []}}
    assert solve(u, ["lib==1.0"]) == {"lib": "1.0"}
    with pytest.raises(ResolutionError):
        solve(u, ["lib>1.0,<1.1"])  # >1.0 excludes 1.0's post releases
    assert solve(u, ["lib>1.0.post1,<1.1"]) == {"lib": "1.0.post2"}
    assert solve(u, ["lib>=1.0,<1.1"]) == {"lib": "1.0.post2"}
    assert solve(u, ["lib~=1.0.0"]) == {"lib": "1.0.post2"}


PRE_UNIVERSE = {
    "app": {"1.0": ["lib>=1"]},
    "lib": {"1.0": [], "2.0b1": []},
    "betaonly": {"0.1a1": [], "0.2a1": []},
}


@pytest.mark.parametrize(
    ("mode", "reqs", "expected"),
    [
        ("disallow", ["app"], {"app": "1.0", "lib": "1.0"}),
        ("allow", ["app"], {"app": "1.0", "lib": "2.0b1"}),
        ("if-necessary", ["app"], {"app": "1.0", "lib": "1.0"}),
        ("if-necessary", ["betaonly"], {"betaonly": "0.2a1"}),
        ("explicit", ["lib>=2.0b1"], {"lib": "2.0b1"}),
        ("explicit", ["app"], {"app": "1.0", "lib": "1.0"}),
        ("if-necessary-or-explicit", ["app"], {"app": "1.0", "lib": "1.0"}),
        ("if-necessary-or-explicit", ["lib>=2.0b1"], {"lib": "2.0b1"}),
        ("if-necessary-or-explicit", ["betaonly"], {"betaonly": "0.2a1"}),
    ],
)
def test_prerelease_policies(mode: str, reqs: list[str], expected: dict[str, str]) -> None:
    assert solve(PRE_UNIVERSE, reqs, prerelease=mode) == expected


@pytest.mark.parametrize("mode", ["disallow", "explicit"])
def test_prerelease_only_package_fails_without_permission(mode: str) -> None:
    with pytest.raises(ResolutionError) as err:
        solve(PRE_UNIVERSE, ["betaonly"], prerelease=mode)
    assert err.value.explanation == (
        "Because there are no versions of betaonly and you require betaonly, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert err.value.hint == (
        "only pre-releases of betaonly match (betaonly==0.2a1); pass --prerelease allow to use them"
    )


def test_prerelease_hint_for_a_transitive_requirement() -> None:
    u = {"app": {"1.0": ["lib>=2.0b1"]}, "lib": {"1.0": [], "2.0b1": []}}
    with pytest.raises(ResolutionError) as err:
        solve(u, ["app"])
    assert err.value.explanation == (
        "Because only app==1.0 is available and app==1.0 depends on lib>=2.0b1, "
        "we can conclude that app depends on lib>=2.0b1.\n"
        "And because only lib==1.0 is available and you require app, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert err.value.hints == [
        "only pre-releases of lib match (lib==2.0b1); pass --prerelease allow to use them"
    ]
    assert solve(u, ["app"], prerelease="allow") == {"app": "1.0", "lib": "2.0b1"}


def test_constraints_narrow_but_do_not_add() -> None:
    u = {"a": {"1.0": ["b"], "2.0": ["b"]}, "b": {"1.0": [], "2.0": []}, "c": {"1.0": []}}
    assert solve(u, ["a"], constraints=["b<2", "c==1.0", "a<2"]) == {"a": "1.0", "b": "1.0"}
    # a constraint whose marker does not hold is ignored
    assert solve(u, ["a"], constraints=["b<2; sys_platform == 'nonexistent'"]) == {
        "a": "2.0",
        "b": "2.0",
    }


def test_overrides_replace_requirements_everywhere() -> None:
    u = {
        "app": {"1.0": ["lib<2", "other"]},
        "other": {"1.0": ["lib==1.0"]},
        "lib": {"1.0": [], "2.0": [], "3.0": []},
    }
    with pytest.raises(ResolutionError):
        solve(u, ["app", "lib>=2"])
    assert solve(u, ["app", "lib>=2"], overrides=["lib>=2"]) == {
        "app": "1.0",
        "other": "1.0",
        "lib": "3.0",
    }
    assert solve(u, ["app"], overrides=["lib==2.0"]) == {"app": "1.0", "other": "1.0", "lib": "2.0"}


def test_preferences_keep_installed_versions() -> None:
    u = {"a": {"1.0": ["b"], "2.0": ["b"]}, "b": {"1.0": [], "1.5": [], "2.0": []}}
    assert solve(u, ["a"], preferences={"b": "1.5", "a": "1.0"}) == {"a": "1.0", "b": "1.5"}
    # a preference outside the allowed range is ignored
    assert solve(u, ["a", "b>=2"], preferences={"b": "1.5"}) == {"a": "2.0", "b": "2.0"}
    # an installed pre-release stays even when the policy would exclude pre-releases
    u2 = {"lib": {"1.0": [], "1.1rc1": []}}
    assert solve(u2, ["lib"], preferences={"lib": "1.1rc1"}) == {"lib": "1.1rc1"}


def test_lowest_and_lowest_direct() -> None:
    u = {"a": {"1.0": ["b>=1"], "2.0": ["b>=1"]}, "b": {"1.0": [], "2.0": []}}
    assert solve(u, ["a"], resolution="highest") == {"a": "2.0", "b": "2.0"}
    assert solve(u, ["a"], resolution="lowest") == {"a": "1.0", "b": "1.0"}
    assert solve(u, ["a"], resolution="lowest-direct") == {"a": "1.0", "b": "2.0"}


def test_package_not_found_explanation() -> None:
    u = {"a": {"1.0": ["nope>=1"]}}
    with pytest.raises(ResolutionError) as err:
        solve(u, ["a"])
    assert err.value.explanation == (
        "Because only a==1.0 is available and a==1.0 depends on nope>=1, "
        "we can conclude that a depends on nope>=1.\n"
        "And because nope was not found in the package registry and you require a, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert err.value.packages == frozenset({"a", "nope"})


def test_provider_hints_are_called() -> None:
    u = {"a": {"1.0": ["b", "c"]}, "b": {"1.0": ["c"]}, "c": {"1.0": []}}
    universe = Universe(u)
    resolve(["a"], universe)
    assert universe.prefetched == ["a", "b", "c"]  # each name once, as soon as it is known
    assert sorted(universe.decisions) == [(n, Version("1.0")) for n in ("a", "b", "c")]
    assert len(universe.dependency_calls) == 3  # metadata asked once per version


def test_bad_input_is_a_kea_error() -> None:
    with pytest.raises(KeaError, match="invalid requirement"):
        solve({}, ["foo>=>1"])
    with pytest.raises(KeaError, match="pre-release mode"):
        solve({}, ["foo"], prerelease="sometimes")
    with pytest.raises(KeaError, match="direct URL"):
        solve({}, ["foo @ https://example.invalid/foo-1.0-py3-none-any.whl"])


def test_nothing_to_do() -> None:
    assert solve({}, []) == {}


class _Tiered(Universe):
    """Versions ranked in groups, as ``unsafe-first-match`` ranks them by index."""

    def __init__(self, packages: dict, tiers: dict[str, list[list[str]]]) -> None:
        super().__init__(packages)
        self.tiers = tiers

    def version_tiers(self, name: str) -> list[list[Version]] | None:
        groups = self.tiers.get(name)
        return None if groups is None else [[Version(v) for v in g] for g in groups]


def test_version_tiers_exhaust_the_first_group_before_the_next() -> None:
    u = {
        "app": {"1.0": ["lib"]},
        "lib": {"0.5": [], "1.0": [], "2.0": ["dep<1"], "3.0": []},
        "dep": {"1.0": []},
    }
    tiers = {"lib": [["1.0", "2.0"], ["0.5", "3.0"]]}  # first index: 1.0, 2.0
    # lib 2.0 (first group) cannot be used: 1.0 of the same group comes before 3.0
    assert pins(resolve(["app"], _Tiered(u, tiers))) == {"app": "1.0", "lib": "1.0"}
    assert pins(resolve(["app", "lib>=3"], _Tiered(u, tiers))) == {"app": "1.0", "lib": "3.0"}
    lowest = resolve(["lib"], _Tiered(u, tiers), resolution="lowest")
    assert pins(lowest) == {"lib": "1.0"}
    # without tiers: simply the highest
    assert pins(resolve(["app"], Universe(u))) == {"app": "1.0", "lib": "3.0"}


class _Told(Universe):
    """Records the decisions the solver reports as standing (``decided``), in order."""

    def __init__(self, packages: dict) -> None:
        super().__init__(packages)
        self.told: list[tuple[str, str]] = []

    def decided(self, name: str, version: Version) -> None:
        self.told.append((name, str(version)))


def test_standing_decisions_are_reported_in_order_while_nothing_conflicts() -> None:
    # These reports start wheel downloads before the resolution ends.
    u = {
        "app": {"1.0": ["lib>=1", "util[fast]"]},
        "lib": {"1.0": ["leaf"], "2.0": ["leaf"]},
        "util": {"1.0": ["leaf; extra == 'fast'"]},
        "leaf": {"1.0": []},
    }
    told = _Told(u)
    result = pins(resolve(["app"], told))
    assert result == {"app": "1.0", "lib": "2.0", "util": "1.0", "leaf": "1.0"}
    # Every decision, once its dependencies were added: the package named without its
    # extras (util[fast] is util's wheel too), the root never.
    assert sorted(told.told) == sorted(
        [("app", "1.0"), ("lib", "2.0"), ("util", "1.0"), ("util", "1.0"), ("leaf", "1.0")]
    )
    assert told.told[0] == ("app", "1.0")


def test_no_decision_is_reported_once_the_search_has_met_a_conflict() -> None:
    # pin is decided first (one candidate), then top 2.0, reported, whose mid needs a pin
    # it cannot have: the search backtracks to top 1.0, which no report names. A report is
    # a guess the caller acts on (a download), so after a conflict the solver makes none.
    u = {
        "top": {"1.0": [], "2.0": ["mid"]},
        "mid": {"1.0": ["pin>=2"]},
        "pin": {"1.0": [], "2.0": []},
    }
    told = _Told(u)
    assert pins(resolve(["top", "pin<2"], told)) == {"top": "1.0", "pin": "1.0"}
    assert told.told == [("pin", "1.0"), ("top", "2.0")]
    assert ("top", Version("1.0")) in told.decisions  # decided, after the conflict, untold
