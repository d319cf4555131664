"""Version sets against packaging's own specifier matching, and their set algebra."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from kea.resolver.ranges import VersionSet, point_keys, version_key

RELEASES = ["0", "1", "1.0", "1.0.0", "1.0.1", "1.1", "2", "2.0.0.1", "1!1.0"]
SUFFIXES = ["", "a1", "b2", "rc1", ".post0", ".post1", ".dev0", ".dev3", "a1.dev1", ".post1.dev2"]
LOCALS = ["", "+cpu", "+1.a", "+cu121"]
VERSIONS = [Version(r + s + loc) for r in RELEASES for s in SUFFIXES for loc in LOCALS]

SPEC_VERSIONS = ["1.0", "1", "1.0.1", "1.0a1", "1.0.post1", "1.0.dev0", "1.0a1.dev1", "2", "1!1.0"]
OPERATORS = [">=", "<=", ">", "<", "==", "!=", "~="]


def _all_specs() -> list[str]:
    out = []
    for op, v in itertools.product(OPERATORS, SPEC_VERSIONS):
        out.append(op + v)
        if op in ("==", "!="):
            out.append(op + v + "+cpu")
    out += ["==1.*", "==1.0.*", "!=1.0.*", "==1!1.*", "==0.*", "!=2.*", "===1.0", "===1.0+cpu"]
    valid = []
    for text in out:
        try:
            SpecifierSet(text)
        except Exception:
            continue
        valid.append(text)
    return valid


@pytest.mark.parametrize("spec", _all_specs())
def test_membership_matches_packaging(spec: str) -> None:
    vset = VersionSet.from_specifiers(spec)
    ss = SpecifierSet(spec)
    wrong = [str(v) for v in VERSIONS if (v in vset) != ss.contains(v, prereleases=True)]
    if spec.startswith("==="):
        # ``===`` compares strings; we take it as PEP 440 equality with the version named.
        wrong = [w for w in wrong if Version(w) != Version(spec[3:])]
    assert wrong == []


def test_local_and_post_semantics() -> None:
    eq = VersionSet.from_specifiers("==1.0")
    assert Version("1.0+cpu") in eq and Version("1.0.0") in eq
    assert Version("1.0.post1") not in eq
    exact_local = VersionSet.from_specifiers("==1.0+cpu")
    assert Version("1.0+cpu") in exact_local and Version("1.0") not in exact_local
    gt = VersionSet.from_specifiers(">1.0")
    assert Version("1.0.post1") not in gt and Version("1.0+cpu") not in gt
    assert Version("1.0.1") in gt
    assert Version("1.0.post2") in VersionSet.from_specifiers(">1.0.post1")
    lt = VersionSet.from_specifiers("<2")
    assert Version("2.0rc1") not in lt and Version("1.9") in lt
    assert Version("2.0rc1") in VersionSet.from_specifiers("<2.0rc2")
    compat = VersionSet.from_specifiers("~=1.4.2")
    assert Version("1.4.9") in compat and Version("1.5") not in compat


versions_st = st.sampled_from(VERSIONS)
specs_st = st.sampled_from(_all_specs()[:-2])  # without ===
sets_st = st.lists(specs_st, min_size=1, max_size=3).map(
    lambda specs: VersionSet.from_specifiers(",".join(specs))
)
# unions of intersections: non-convex sets too
unions_st = st.lists(sets_st, min_size=1, max_size=3).map(
    lambda sets: sets[0] if len(sets) == 1 else sets[0] | sets[1] | sets[-1]
)


@settings(max_examples=300, deadline=None)
@given(unions_st, unions_st, versions_st)
def test_algebra_is_pointwise(a: VersionSet, b: VersionSet, v: Version) -> None:
    assert (v in (a & b)) == (v in a and v in b)
    assert (v in (a | b)) == (v in a or v in b)
    assert (v in (a - b)) == (v in a and v not in b)
    assert (v in a.complement()) == (v not in a)
    assert a.complement().complement() == a


@settings(max_examples=200, deadline=None)
@given(unions_st, unions_st)
def test_relations(a: VersionSet, b: VersionSet) -> None:
    assert (a & b).is_subset(a)
    assert a.is_subset(a | b)
    assert a.is_disjoint(a.complement())
    assert (a | a.complement()).is_full()
    assert (a & a.complement()).is_empty()
    if a.is_subset(b):
        assert all(v in b for v in VERSIONS if v in a)
    if a.is_disjoint(b):
        assert not any(v in a and v in b for v in VERSIONS)


@settings(max_examples=200, deadline=None)
@given(unions_st)
def test_counting_and_picking(a: VersionSet) -> None:
    ordered = sorted(set(VERSIONS), key=version_key)
    points = point_keys(ordered)
    inside = [v for v in ordered if v in a]
    assert a.count_in(points) == len(inside)
    hi = a.first_in(points, highest=True)
    lo = a.first_in(points, highest=False)
    assert (None if hi is None else ordered[hi]) == (inside[-1] if inside else None)
    assert (None if lo is None else ordered[lo]) == (inside[0] if inside else None)


def test_version_key_orders_like_packaging() -> None:
    assert sorted(VERSIONS) == sorted(VERSIONS, key=version_key)


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        (">=1.0,<2", ">=1.0,<2"),
        ("==1.0", "==1.0"),
        ("==1.0+cpu", "==1.0+cpu"),
        ("!=1.5", "!=1.5"),
        (">1.0", ">1.0"),
        ("<=2", "<=2"),
        ("~=1.4.2", ">=1.4.2,<1.5"),
        ("==1.*", "==1.*"),
        ("!=1.0.*", "!=1.0.*"),
        ("<1.0", "<1.0"),
        (">=1.0,!=1.5,<2", ">=1.0,<1.5 | >1.5,<2"),
        ("", "*"),
        (">=2,<1", "∅"),
    ],
)
def test_display(spec: str, shown: str) -> None:
    assert str(VersionSet.from_specifiers(spec)) == shown


def test_display_keeps_the_written_form_whatever_was_parsed_before() -> None:
    VersionSet.from_specifiers("==1")  # same key as 1.0: must not change how ==1.0 is shown
    assert str(VersionSet.from_specifiers("==1.0")) == "==1.0"
    assert str(VersionSet.from_specifiers("==1")) == "==1"


def test_exact_and_between() -> None:
    v1, v2 = Version("1.0"), Version("2.0")
    assert str(VersionSet.exact(v1)) == "==1.0"
    between = VersionSet.between(v1, v2)
    assert Version("1.5") in between and v2 in between and Version("2.0.post1") not in between
    assert VersionSet.exact(Version("1.0+cpu")) != VersionSet.exact(v1)
