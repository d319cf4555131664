"""Unsatisfiable universes and the exact words kea uses to explain them."""

from __future__ import annotations

import pytest

from kea.errors import KeaError
from kea.resolver import ResolutionError, Unavailable, resolve

from .universe import Universe


def explain(universe: dict, reqs: list[str], **policies: object) -> ResolutionError:
    with pytest.raises(ResolutionError) as err:
        resolve(reqs, Universe(universe), **policies)
    return err.value


def test_dependency_against_a_direct_requirement() -> None:
    err = explain({"a": {"1.0": ["b>=2"]}, "b": {"1.0": [], "2.0": []}}, ["a", "b<2"])
    assert err.explanation == (
        "Because only a==1.0 is available and a==1.0 depends on b>=2, "
        "we can conclude that a depends on b>=2.\n"
        "And because you require a and b<2, "
        "we can conclude that your requirements are unsatisfiable."
    )
    # the KeaError face: one headline, the derivation indented under it, no hint by default
    assert isinstance(err, KeaError)
    assert err.message.splitlines()[0] == "No solution found when resolving dependencies:"
    assert err.message.splitlines()[1].startswith("  Because only a==1.0")
    assert err.hint is None
    assert err.packages == frozenset({"a", "b"})


def test_every_version_of_a_package_fails() -> None:
    u = {"a": {"1.0": ["b>=2"], "2.0": ["b>=3"]}, "b": {"1.0": [], "2.0": [], "3.0": []}}
    assert explain(u, ["a", "b<2"]).explanation == (
        "Because only a==1.0 and a==2.0 are available and a==1.0 depends on b>=2, "
        "we can conclude that a==1.0 depends on b>=2.\n"
        "And because a==2.0 depends on b>=3, "
        "we can conclude that all versions of a depend on b>=2.\n"
        "And because you require a and b<2, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_transitive_conflict_between_two_requirements() -> None:
    u = {
        "foo": {"1.0.0": ["a>=1.0"]},
        "a": {"1.0.0": ["b>=2"]},
        "b": {"1.0": [], "2.0": []},
        "bar": {"1.0": ["b<2"]},
    }
    assert explain(u, ["foo", "bar"]).explanation == (
        "Because only foo==1.0.0 is available and foo==1.0.0 depends on a>=1.0, "
        "we can conclude that foo depends on a>=1.0.\n"
        "And because only a==1.0.0 is available and a==1.0.0 depends on b>=2, "
        "we can conclude that foo depends on b>=2.\n"
        "And because bar==1.0 depends on b<2 and only bar==1.0 is available, "
        "we can conclude that foo and bar are incompatible.\n"
        "And because you require foo and bar, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_two_derivations_joined() -> None:
    # PubGrub's "linear error reporting" example: two single-line derivations, then "Thus".
    u = {
        "foo": {"1.0.0": ["bar>=2,<3"]},
        "bar": {"2.0.0": ["baz>=3"]},
        "baz": {"1.0.0": [], "3.0.0": []},
    }
    assert explain(u, ["foo>=1,<2", "baz>=1,<2"]).explanation == (
        "Because there are no versions of foo>1.0.0,<2 and foo==1.0.0 depends on bar>=2,<3, "
        "we can conclude that foo==1.0.0 depends on bar>=2,<3.\n"
        "Because bar==2.0.0 depends on baz>=3 and there are no versions of bar>2.0.0,<3, "
        "we can conclude that bar==2.0.0 depends on baz>=3.\n"
        "Thus, we can conclude that foo==1.0.0 depends on baz>=3.\n"
        "And because you require foo>=1,<2 and baz>=1,<2, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_branching_failure_refers_back_to_a_numbered_line() -> None:
    # PubGrub's "branching error reporting" example: each version of foo fails its own way.
    u = {
        "foo": {"1.0.0": ["a>=1,<2", "b>=1,<2"], "1.1.0": ["x>=1,<2", "y>=1,<2"]},
        "a": {"1.0.0": ["b>=2"]},
        "b": {"1.0.0": [], "2.0.0": []},
        "x": {"1.0.0": ["y>=2"]},
        "y": {"1.0.0": [], "2.0.0": []},
    }
    assert explain(u, ["foo>=1,<2"]).explanation == (
        "Because there are no versions of a>1.0.0,<2 and a==1.0.0 depends on b>=2, "
        "we can conclude that a==1.0.0 depends on b>=2.\n"
        "And because foo==1.0.0 depends on a>=1,<2, "
        "we can conclude that foo==1.0.0 depends on b>=2.\n"
        "And because foo==1.0.0 depends on b>=1,<2 and only foo==1.0.0 and foo==1.1.0 are "
        "available, we can conclude that foo==1.0.0 cannot be used. (1)\n"
        "\n"
        "Because there are no versions of x>1.0.0,<2 and x==1.0.0 depends on y>=2, "
        "we can conclude that x==1.0.0 depends on y>=2.\n"
        "And because foo==1.1.0 depends on x>=1,<2 and foo==1.1.0 depends on y>=1,<2, "
        "we can conclude that foo==1.1.0 cannot be used.\n"
        "And because foo==1.0.0 cannot be used (1), "
        "we can conclude that all versions of foo cannot be used.\n"
        "And because you require foo>=1,<2, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_unavailable_versions_give_their_reasons() -> None:
    u = {
        "a": {
            "1.0": Unavailable("has no wheels with a matching platform tag"),
            "0.9": Unavailable("requires Python>=3.14"),
        }
    }
    assert explain(u, ["a"]).explanation == (
        "Because only a==0.9 and a==1.0 are available and a==0.9 requires Python>=3.14, "
        "we can conclude that a==0.9 cannot be used.\n"
        "And because a==1.0 has no wheels with a matching platform tag and you require a, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_constraint_in_the_way() -> None:
    u = {"a": {"1.0": ["b>=2"]}, "b": {"1.0": [], "2.0": []}}
    assert explain(u, ["a"], constraints=["b<2"]).explanation == (
        "Because only a==1.0 is available and a==1.0 depends on b>=2, "
        "we can conclude that a depends on b>=2.\n"
        "And because your constraints allow only b<2 and you require a, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_conflicting_direct_requirements() -> None:
    assert explain({"p": {"1.0": []}}, ["p>=2", "p<2"]).explanation == (
        "Because you require p>=2 and p<2, "
        "we can conclude that your requirements are unsatisfiable."
    )


def test_package_unavailable_with_the_providers_reason() -> None:
    u = {"private": Unavailable("was refused by the index (401 Unauthorized)")}
    err = explain(u, ["private"])
    assert err.explanation == (
        "Because private was refused by the index (401 Unauthorized) and you require private, "
        "we can conclude that your requirements are unsatisfiable."
    )
    # the caller adds its own hints; each is kept once and printed as its own hint line
    err.add_hint("private was only ever answered 401/403: check your credentials")
    err.add_hint("private was only ever answered 401/403: check your credentials")
    err.add_hint("private exists on index 'corp'")
    assert err.hints == [
        "private was only ever answered 401/403: check your credentials",
        "private exists on index 'corp'",
    ]
    assert err.hint == (
        "private was only ever answered 401/403: check your credentials\n"
        "hint: private exists on index 'corp'"
    )


def test_self_dependency_excluding_itself() -> None:
    u = {"odd": {"1.0": ["odd>=2"], "0.5": []}}
    assert resolve(["odd"], Universe(u))["odd"].public == "0.5"
    assert explain(u, ["odd>=1"]).explanation == (
        "Because only odd<=1.0 is available and odd==1.0 depends on odd>=2, "
        "we can conclude that odd==1.0 cannot be used.\n"
        "And because you require odd>=1, "
        "we can conclude that your requirements are unsatisfiable."
    )
