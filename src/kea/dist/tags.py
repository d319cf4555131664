"""Wheel tag compatibility, ranked: the best tag is the lowest index in the supported list.

The supported list comes from the *target* interpreter (``packaging.tags.sys_tags()`` run inside
it, see ``kea.install.environment``), most specific first.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.tags import Tag, parse_tag


class TagRanker:
    """Ranks wheels by how well their tags fit an interpreter (lower rank = better)."""

    __slots__ = ("_rank",)

    def __init__(self, supported: Iterable[str | Tag]) -> None:
        rank: dict[Tag, int] = {}
        for i, tag in enumerate(supported):
            tags = parse_tag(tag) if isinstance(tag, str) else (tag,)
            for t in tags:
                rank.setdefault(t, i)
        self._rank = rank

    def __len__(self) -> int:
        return len(self._rank)

    def rank(self, tags: Iterable[Tag]) -> int | None:
        """The best (lowest) rank among ``tags``, or None when none is supported."""
        best: int | None = None
        for tag in tags:
            r = self._rank.get(tag)
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
