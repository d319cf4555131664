"""Requires-Python is checked with kea's version sets (from the memo), not packaging's
``SpecifierSet``: the answers must be packaging's ``contains(v, prereleases=True)``."""

from __future__ import annotations

import pytest
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from kea.dist import parsed
from kea.dist.tags import TagRanker
from kea.resolver.provider_select import CandidatePolicy

REQUIRES = [
    ">=3.8", ">=3.8,<4", ">= 3.7, < 4", ">3.11", ">3.11.0", "<3.12", "<=3.11", "<3.12.0rc1",
    "~=3.8", "~=3.11.0", "==3.11.*", "!=3.11.*", "==3.11", "!=3.11.7", ">=3.11.0b1",
    "==3.*", ">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*", "===3.11.7", ">3.11.7.post1",
    "===3.11", "===3.11.00", "===3.11.0",
]  # fmt: skip
PYTHONS = ["3.11.7", "3.11.0", "3.12.0rc1", "3.12.0", "3.8.10", "3.13.0a4", "2.7.18", "4.0"]


def _policy(python: str) -> CandidatePolicy:
    return CandidatePolicy(
        tags=TagRanker([]),
        python_version=Version(python),
        markers={},
        only_binary=(),
        no_binary=(),
        exclude_newer=None,
        pinned={},
        allowed_hashes={},
    )


@pytest.mark.parametrize("python", PYTHONS)
def test_requires_python_as_packaging_decides_it(python: str) -> None:
    parsed.reset()
    policy = _policy(python)
    for text in REQUIRES:
        want = SpecifierSet(text).contains(Version(python), prereleases=True)
        assert policy.python_ok(text) == want, (text, python)


@pytest.mark.parametrize("text", [">=3.6.*", "python3", ">=3.7;"])
def test_a_malformed_requires_python_is_ignored(text: str) -> None:
    with pytest.raises(InvalidSpecifier):
        SpecifierSet(text)
    assert _policy("3.11.7").python_ok(text) is True
