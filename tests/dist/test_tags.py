"""``TagRanker`` keys tags by their text: the same ranks as ranking ``Tag`` objects."""

from __future__ import annotations

from packaging.tags import Tag, parse_tag, sys_tags
from packaging.utils import parse_wheel_filename

from kea.dist.tags import TagRanker


def reference_rank(supported: list[str], tags: frozenset[Tag]) -> int | None:
    rank: dict[Tag, int] = {}
    for i, text in enumerate(supported):
        for t in parse_tag(text):
            rank.setdefault(t, i)
    found = [rank[t] for t in tags if t in rank]
    return min(found) if found else None


def test_ranks_match_parsed_tags() -> None:
    supported = [str(t) for t in sys_tags()]
    supported += ["py2.py3-none-any", "CP399-Abi3-Linux_X86_64"]  # compressed, odd case
    ranker = TagRanker(supported)
    here = supported[0]
    names = [
        f"a-1.0-{here}.whl",
        "a-1.0-py3-none-any.whl",
        "a-1.0-py2.py3-none-any.whl",
        "a-1.0-py2-none-any.whl",
        "a-1.0-cp399-abi3-linux_x86_64.whl",
        "a-1.0-cp27-cp27m-win32.whl",
        "a-1.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ]
    for name in names:
        tags = parse_wheel_filename(name)[3]
        assert ranker.rank(tags) == reference_rank(supported, tags), name
        assert ranker.rank_filename(name) == ranker.rank(tags)
    assert ranker.rank_filename(f"a-1.0-{here}.whl") == 0
    assert ranker.rank_filename("a-1.0-py2-none-any.whl") is not None  # from py2.py3-none-any
    assert ranker.rank_filename("a-1.0-cp27-cp27m-win32.whl") is None
    assert TagRanker([Tag("py3", "none", "any")]).rank_filename("a-1-py3-none-any.whl") == 0
