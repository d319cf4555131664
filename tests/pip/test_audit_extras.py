"""``drop_other_extras`` (kea.resolver.provider_select): a cheap filter of ``Requires-Dist``.

It must never change what ``dependencies_of`` answers: checked on hand-picked lines and on
generated markers (and/or/parentheses, both quotes, extras first or last, odd spacing).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import default_environment

from kea.dist.metadata import CoreMetadata
from kea.resolver.provider_select import dependencies_of, drop_other_extras

MARKERS = {k: str(v) for k, v in default_environment().items()}


def deps(lines: tuple[str, ...], extras: tuple[str, ...]) -> list[str]:
    meta = CoreMetadata(name="p", version="1", requires_dist=lines)
    return [str(r) for r in dependencies_of(meta, extras, MARKERS)]


def test_drops_only_lines_of_other_extras() -> None:
    lines = (
        "base>=1",
        'tests-only; extra == "test"',
        "docs-only ; extra=='docs'",
        'old; python_version < "3.0" and extra == "test"',
        'posix; extra == "test" and os_name != "nt"',
        'either; extra == "test" or python_version >= "3"',
        'cased; extra == "Fancy_Name"',
        'nested; (extra == "test" or extra == "docs") and python_version >= "3"',
        'plain-marker; python_version >= "3"',
    )
    assert drop_other_extras(lines, ()) == (
        "base>=1",
        'either; extra == "test" or python_version >= "3"',
        'nested; (extra == "test" or extra == "docs") and python_version >= "3"',
        'plain-marker; python_version >= "3"',
    )
    kept = drop_other_extras(lines, ("TEST", "fancy-name"))
    assert "docs-only ; extra=='docs'" not in kept
    assert 'tests-only; extra == "test"' in kept and 'cased; extra == "Fancy_Name"' in kept
    assert 'posix; extra == "test" and os_name != "nt"' in kept
    for extras in ((), ("test",), ("docs",), ("fancy-name", "docs")):
        assert deps(drop_other_extras(lines, extras), extras) == deps(lines, extras)


_ATOMS = st.sampled_from([
    'extra == "test"', "extra=='test'", 'extra == "docs"', "extra  ==  'Docs'",
    'extra == "a-b"', 'python_version >= "3"', 'python_version < "3"', "os_name == 'nt'",
    'os_name != "nt"', 'sys_platform == "win32"', 'platform_release == "or"',
])  # fmt: skip


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from([" and ", " or "]), children).map("".join),
        children.map(lambda m: f"({m})"),
    )


_MARKER = st.recursive(_ATOMS, _combine, max_leaves=5)
_LINE = st.tuples(
    st.sampled_from(["dep", "dep>=1", "dep[x]", "dep @ https://example.org/d-1.whl "]),
    st.sampled_from([";", " ; ", "; "]),
    _MARKER,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=6).map(tuple),
    extras=st.lists(st.sampled_from(["test", "docs", "A_B", "other"]), max_size=2).map(tuple),
)
def test_never_changes_the_dependencies(lines: tuple[str, ...], extras: tuple[str, ...]) -> None:
    assert deps(drop_other_extras(lines, extras), extras) == deps(lines, extras)
