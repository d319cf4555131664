"""Requires-Dist lines of extras nobody asked for are never parsed, and nothing else changes.

``needed_extra`` names the one extra a line certainly needs; ``dependencies_of`` skips lines of
other extras before parsing them; ``Requirements`` (what ``IndexProvider.dependencies`` returns)
parses such a line only when the resolver reaches ``name[extra]``. Each is checked against the
plain way: parse every line, evaluate every marker.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from kea.dist.metadata import CoreMetadata
from kea.resolver import BaseProvider, Options, Unavailable
from kea.resolver.deps import Requirements
from kea.resolver.provider_select import dependencies_of, drop_other_extras, needed_extra
from kea.resolver.solver import Solver

MARKERS = {k: str(v) for k, v in default_environment().items()}


def plain_dependencies(lines: Sequence[str], extras: Sequence[str]) -> list[str]:
    """The reference: every line parsed, its marker evaluated with no extra and each extra."""
    out = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        for extra in ("", *(canonicalize_name(e) for e in extras)):
            try:
                holds = req.marker is None or req.marker.evaluate({**MARKERS, "extra": extra})
            except Exception:
                holds = False
            if holds:
                out.append(str(req))
                break
    return out


def fast_dependencies(lines: Sequence[str], extras: Sequence[str]) -> list[str]:
    meta = CoreMetadata(name="p", version="1", requires_dist=tuple(lines))
    return [str(r) for r in dependencies_of(meta, extras, MARKERS)]


def test_needed_extra_names_only_certain_extras() -> None:
    assert needed_extra('tests-only; extra == "test"') == "test"
    assert needed_extra("docs-only ; extra=='Docs_Extra'") == "docs-extra"
    assert needed_extra('old; python_version < "3.0" and extra == "test"') == "test"
    assert needed_extra('posix; extra == "test" and os_name != "nt"') == "test"
    for line in (
        "base>=1",
        'plain; python_version >= "3"',
        'either; extra == "test" or python_version >= "3"',
        'nested; (extra == "test" or extra == "docs") and python_version >= "3"',
        'quoted; platform_release == "or" and extra == "x"',  # an 'or' anywhere: not sure
        'middle; os_name == "nt" and extra == "x" and python_version >= "3"',
    ):
        assert needed_extra(line) is None, line


def test_dependencies_of_skips_other_extras_without_changing_the_answer() -> None:
    lines = (
        "base>=1",
        'tests-only; extra == "test"',
        "docs-only ; extra=='docs'",
        'posix; extra == "test" and os_name != "nt"',
        'either; extra == "test" or python_version >= "3"',
        'cased; extra == "Fancy_Name"',
        'never; python_version < "3"',
        "not a requirement !!!; extra == 'other'",
    )
    assert fast_dependencies(lines, ()) == ["base>=1", plain_dependencies(lines, ())[1]]
    assert fast_dependencies(lines, ("TEST", "fancy.name")) == plain_dependencies(
        lines, ("test", "fancy-name")
    )
    assert drop_other_extras(lines, ("docs",)) == (
        "base>=1",
        "docs-only ; extra=='docs'",
        'either; extra == "test" or python_version >= "3"',
        'never; python_version < "3"',
    )


_ATOMS = st.sampled_from([
    'extra == "test"', "extra=='test'", 'extra == "docs"', "extra  ==  'Docs'",
    'extra == "a-b"', 'python_version >= "3"', 'python_version < "3"', "os_name == 'nt'",
    'os_name != "nt"', 'sys_platform == "win32"', 'platform_release == "or"',
    'extra == "A_B"',
])  # fmt: skip

_MARKER = st.recursive(
    _ATOMS,
    lambda children: st.one_of(
        st.tuples(children, st.sampled_from([" and ", " or "]), children).map("".join),
        children.map(lambda m: f"({m})"),
    ),
    max_leaves=5,
)
_LINE = st.one_of(
    st.sampled_from(["dep", "dep>=1", "other[x]<3"]),
    st.tuples(
        st.sampled_from(["dep", "dep>=1", "dep[x]", "dep @ https://example.org/d-1.whl "]),
        st.sampled_from([";", " ; ", "; "]),
        _MARKER,
    ).map("".join),
)
_EXTRAS = st.lists(st.sampled_from(["test", "docs", "A_B", "a.b", "other"]), max_size=2)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINE, max_size=6), extras=_EXTRAS)
def test_dependencies_of_matches_parsing_everything(lines: list[str], extras: list[str]) -> None:
    assert fast_dependencies(lines, extras) == plain_dependencies(lines, extras)


class Counting:
    """A ``parse`` for ``Requirements`` that remembers which lines it was asked to parse."""

    def __init__(self) -> None:
        self.parsed: list[str] = []

    def __call__(self, line: str) -> Requirement | None:
        self.parsed.append(line)
        try:
            return Requirement(line)
        except InvalidRequirement:
            return None


def lazy(lines: Sequence[str], parse: Counting) -> Requirements:
    return Requirements([(needed_extra(line), line) for line in lines], parse)


def test_requirements_parse_an_extra_only_when_asked() -> None:
    lines = [
        "base>=1",
        'socks-dep; extra == "socks"',
        'win; sys_platform == "win32"',
        'doc-dep; extra == "docs"',
        'both; extra == "socks" and python_version >= "3"',
    ]
    parse = Counting()
    reqs = lazy(lines, parse)
    assert [r.name for r in reqs] == ["base", "win"]
    assert parse.parsed == ["base>=1", 'win; sys_platform == "win32"']
    socks = reqs.for_extra("socks")
    assert [r.name for r in socks] == ["base", "socks-dep", "win", "both"]  # metadata order
    assert 'doc-dep; extra == "docs"' not in parse.parsed
    assert reqs.for_extra("socks") is socks
    assert [r.name for r in reqs.for_extra("nothing-of-the-sort")] == ["base", "win"]


class Lazy(BaseProvider):
    """A universe whose dependencies come as ``Requirements`` (as ``IndexProvider`` gives them)
    or as a plain list of every line parsed."""

    def __init__(self, packages: dict[str, dict[str, list[str]]], *, lazy: bool) -> None:
        self.packages = packages
        self.lazy = lazy
        self.parse = Counting()

    def versions(self, name: str) -> Sequence[Version] | Unavailable:
        return [Version(v) for v in self.packages.get(name, {})]

    def dependencies(self, name: str, version: Version) -> Sequence[Requirement] | Unavailable:
        lines = self.packages[name][str(version)]
        if self.lazy:
            return lazy(lines, self.parse)
        return [Requirement(line) for line in lines]


UNIVERSE: dict[str, dict[str, list[str]]] = {
    "app": {
        "1.0": [
            "lib[fast]>=1",
            'tester; extra == "test"',
            'sphinx; extra == "docs"',
            'winonly; sys_platform == "nonexistent"',
        ]
    },
    "lib": {
        "1.0": ['speedup<2; extra == "fast"', 'slow; extra == "compat"'],
        "2.0": [
            'speedup>=2; extra == "fast"',
            'slow; extra == "compat"',
            'helper; extra == "fast" and python_version >= "3"',
        ],
    },
    "speedup": {"1.0": [], "2.0": [], "3.0": []},
    "helper": {"1.0": []},
    "tester": {"1.0": []},
    "sphinx": {"1.0": []},
    "slow": {"1.0": []},
    "winonly": {"1.0": []},
}


def test_the_solver_gives_the_same_answer_and_parses_no_unused_extra() -> None:
    for reqs in (["app"], ["app[test]"], ["app[docs,test]", "lib[compat]"]):
        lazy_provider = Lazy(UNIVERSE, lazy=True)
        plain = Solver(reqs, Lazy(UNIVERSE, lazy=False), Options(environment=MARKERS)).solve()
        got = Solver(reqs, lazy_provider, Options(environment=MARKERS)).solve()
        assert dict(got) == dict(plain), reqs
        assert got.dependencies == plain.dependencies
        parsed = lazy_provider.parse.parsed
        assert ('sphinx; extra == "docs"' in parsed) == ("docs" in reqs[0])
        if reqs == ["app"]:
            assert dict(got)["speedup"] == Version("3.0")
            assert dict(got)["helper"] == Version("1.0")
            assert not any("test" in line or "docs" in line for line in parsed)
            assert not any("compat" in line for line in parsed)
