"""Wheel tag compatibility, ranked: the best tag is the lowest index in the supported list.

The supported list comes from the *target* interpreter (``packaging.tags.sys_tags()`` run inside
it, see ``kea.install.environment``), most specific first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag


class TagRanker:
    """Ranks wheels by how well their tags fit an interpreter (lower rank = better).

    Keyed by the tag's text (``cp311-cp311-manylinux_2_17_x86_64``, lower case as ``Tag``
    prints it): an interpreter supports ~900 tags and building a ``Tag`` of each, every run,
    cost more than the few hundred wheels ranked against them.
    """

    __slots__ = ("_rank",)

    def __init__(self, supported: Iterable[str | Tag]) -> None:
        rank: dict[str, int] = {}
        for i, tag in enumerate(supported):
            text = str(tag).lower()
            if "." in text:  # a compressed tag set (py2.py3-none-any): each of its tags
                from packaging.tags import parse_tag

                for t in parse_tag(text):
                    rank.setdefault(str(t), i)
            else:
                rank.setdefault(text, i)
        self._rank = rank

    def __len__(self) -> int:
        return len(self._rank)

    def rank(self, tags: Iterable[Tag | str]) -> int | None:
        """The best (lowest) rank among ``tags``, or None when none is supported."""
        best: int | None = None
        for tag in tags:
            r = self._rank.get(str(tag))
            if r is not None and (best is None or r < best):
                best = r
        return best

    def is_compatible(self, tags: Iterable[Tag]) -> bool:
        return self.rank(tags) is not None

    def rank_filename(self, filename: str) -> int | None:
        """Rank of a wheel file name (None: incompatible or not a valid wheel name)."""
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            tags = parse_wheel_filename(filename)[3]
        except InvalidWheelFilename:
            return None
        return self.rank(tags)

    def best(self, filenames: Iterable[str]) -> str | None:
        """The compatible wheel file name with the best rank (first one on ties)."""
        best_name: str | None = None
        best_rank = -1
        for name in filenames:
            r = self.rank_filename(name)
            if r is not None and (best_name is None or r < best_rank):
                best_name, best_rank = name, r
        return best_name
