"""Version sets: finite unions of half-open intervals over PEP 440 versions.

A set is stored as a sorted tuple of *cuts* ``(lo0, hi0, lo1, hi1, ...)``; a version belongs to
the set when it lies in some ``[lo, hi)``. A cut is a point of the version line that falls
between versions: ``(key, BELOW)`` sits just under the version whose sort key is ``key`` and
``(key, ABOVE)`` just over it. Keys are our own sort tuples (same order as ``packaging``) and may
hold sentinels so that a cut can also sit after every local version of ``1.0`` (``<=1.0``) or after
every post release of ``1.0`` (``>1.0``) — things no single ``Version`` can name.

Conversion from specifiers follows ``packaging`` (>= 26): ``==1.0`` matches ``1.0+cpu``; ``>1.0``
excludes ``1.0.post1`` and ``1.0+cpu``; ``<1.0`` excludes ``1.0rc1`` (``<1.0.dev0``); ``==1.*`` is
``[1.dev0, 2.dev0)``; ``~=1.4.2`` is ``>=1.4.2, ==1.4.*``. Sets carry no pre-release policy: a
set answers "does the specifier match this version", and the solver decides separately which
pre-releases are candidates. ``===X`` is taken as the single version ``X`` (by PEP 440 equality).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

from kea.dist import parsed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from packaging.specifiers import Specifier, SpecifierSet

__all__ = ["VersionSet", "version_key"]

INF = math.inf
BELOW = 0
POINT = 1  # a version itself, between its BELOW and ABOVE cuts; never stored in a set
ABOVE = 2

Key = tuple[Any, ...]
# (key, BELOW or ABOVE, the Version it is shown as). The Version never decides a comparison: two
# cuts with equal keys and sides carry equal Versions (1.0 == 1.0.0), so it only serves display.
Cut = tuple[Key, int, Any]
Point = tuple[Key, int]

_LOCAL_SEP = re.compile(r"[._-]")
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
_DEV_ONLY = (-1, 0)  # 1.0.dev0 sorts before 1.0a1
_NO_PRE = (3, 0)
_TOP_PRE = (4, 0)
_TOP_LOCAL = ((2, 0, ""),)

MIN_CUT: Cut = ((-1,), BELOW, None)
MAX_CUT: Cut = ((INF,), BELOW, None)


def _make_key(
    epoch: int,
    release: tuple[int, ...],
    pre: tuple[str, int] | None,
    post: int | None,
    dev: int | None,
    local: str | None,
) -> Key:
    rel = list(release)
    while rel and rel[-1] == 0:
        rel.pop()
    if pre is None and post is None and dev is not None:
        pre_k: tuple[int, int] = _DEV_ONLY
    elif pre is None:
        pre_k = _NO_PRE
    else:
        pre_k = (_PRE_RANK[pre[0]], pre[1])
    post_k: float = -1 if post is None else post
    dev_k: float = INF if dev is None else dev
    if local is None:
        local_k: tuple[tuple[int, int, str], ...] = ()
    else:
        local_k = tuple(
            (1, int(p), "") if p.isdigit() else (0, 0, p.lower()) for p in _LOCAL_SEP.split(local)
        )
    return (epoch, tuple(rel), pre_k, post_k, dev_k, local_k)


@lru_cache(maxsize=65536)
def version_key(v: Version) -> Key:
    """A sort key for ``v`` with the same order as ``packaging`` (cached)."""
    return _make_key(v.epoch, v.release, v.pre, v.post, v.dev, v.local)


def _after_locals(key: Key) -> Key:
    return (*key[:5], _TOP_LOCAL)


def _after_posts(key: Key) -> Key:
    return (key[0], key[1], key[2], INF, INF, _TOP_LOCAL)


def _dev0(epoch: int, release: tuple[int, ...]) -> Version:
    prefix = f"{epoch}!" if epoch else ""
    return Version(prefix + ".".join(map(str, release)) + ".dev0")


def _spec_cuts(op: str, text: str) -> tuple[Cut, ...]:
    """The cuts of one specifier (``op`` and its version text)."""
    if op == "===":
        try:
            v = Version(text)
        except InvalidVersion:
            return ()
        k = version_key(v)
        return ((k, BELOW, v), (k, ABOVE, v))
    if text.endswith(".*"):
        base = Version(text[:-2])
        lo_v = _dev0(base.epoch, base.release)
        hi_v = _dev0(base.epoch, (*base.release[:-1], base.release[-1] + 1))
        lo: Cut = (version_key(lo_v), BELOW, lo_v)
        hi: Cut = (version_key(hi_v), BELOW, hi_v)
        if op == "==":
            return (lo, hi)
        return (MIN_CUT, lo, hi, MAX_CUT)
    v = Version(text)
    k = version_key(v)
    if op == ">=":
        return ((k, BELOW, v), MAX_CUT)
    if op == "<=":
        return (MIN_CUT, (_after_locals(k), BELOW, v))
    if op == ">":
        if v.dev is not None:
            nxt = Version(str(v.public).rsplit("dev", 1)[0] + f"dev{v.dev + 1}")
            cut: Cut = (version_key(nxt), BELOW, v)
        elif v.post is not None:
            nxt = Version(str(v.public).rsplit("post", 1)[0] + f"post{v.post + 1}.dev0")
            cut = (version_key(nxt), BELOW, v)
        else:
            cut = (_after_posts(k), BELOW, v)
        return (cut, MAX_CUT)
    if op == "<":
        if v.is_prerelease:
            return (MIN_CUT, (k, BELOW, v))
        return (MIN_CUT, (version_key(Version(f"{v.public}.dev0")), BELOW, v))
    if op == "~=":
        prefix = v.release[:-1]
        hi_v = _dev0(v.epoch, (*prefix[:-1], prefix[-1] + 1))
        shown = Version(".".join(map(str, hi_v.release)))
        if v.epoch:
            shown = Version(f"{v.epoch}!{shown}")
        return ((k, BELOW, v), (version_key(hi_v), BELOW, shown))
    # == and != (without wildcard)
    lo = (k, BELOW, v)
    hi = (k, ABOVE, v) if v.local is not None else (_after_locals(k), BELOW, v)
    if op == "==":
        return (lo, hi)
    return (MIN_CUT, lo, hi, MAX_CUT)


def _combine(a: tuple[Cut, ...], b: tuple[Cut, ...], op: int) -> tuple[Cut, ...]:
    """Sweep two cut lists; ``op``: 0 intersection, 1 union, 2 difference (a minus b)."""
    out: list[Cut] = []
    i = j = 0
    la, lb = len(a), len(b)
    in_a = in_b = cur = False
    while i < la or j < lb:
        if j >= lb or (i < la and a[i] < b[j]):
            c = a[i]
            i += 1
            in_a = not in_a
        elif i >= la or b[j] < a[i]:
            c = b[j]
            j += 1
            in_b = not in_b
        else:
            c = a[i]
            i += 1
            j += 1
            in_a = not in_a
            in_b = not in_b
        if op == 0:
            new = in_a and in_b
        elif op == 1:
            new = in_a or in_b
        else:
            new = in_a and not in_b
        if new != cur:
            out.append(c)
            cur = new
    return tuple(out)


# Relations between sets are asked again and again during propagation: remember them.
_MEMO_MAX = 200_000
_SUBSET: dict[tuple[VersionSet, VersionSet], bool] = {}
_DISJOINT: dict[tuple[VersionSet, VersionSet], bool] = {}


class VersionSet:
    """An immutable set of versions. Build with ``from_specifiers``, ``exact``, ``full``..."""

    __slots__ = ("_cuts", "_hash")

    def __init__(self, cuts: tuple[Cut, ...] = ()) -> None:
        self._cuts = cuts
        self._hash: int | None = None

    # -- constructors ---------------------------------------------------------------------------
    @staticmethod
    def full() -> VersionSet:
        return _FULL

    @staticmethod
    def empty() -> VersionSet:
        return _EMPTY

    @staticmethod
    def exact(version: Version) -> VersionSet:
        """Exactly ``version`` (a local version label is part of the identity)."""
        k = version_key(version)
        return VersionSet(((k, BELOW, version), (k, ABOVE, version)))

    @staticmethod
    def between(low: Version, high: Version) -> VersionSet:
        """Every version from ``low`` to ``high``, both included."""
        return VersionSet(((version_key(low), BELOW, low), (version_key(high), ABOVE, high)))

    @staticmethod
    def from_specifiers(spec: SpecifierSet | Specifier | str) -> VersionSet:
        """The versions a specifier set matches (pre-releases included; no policy). Text (see
        ``kea.dist.parsed.specifier_text``) needs no ``packaging.specifiers`` when the memo
        knows it."""
        return _from_text(str(spec))

    # -- algebra --------------------------------------------------------------------------------
    def __and__(self, other: VersionSet) -> VersionSet:
        if self._cuts == other._cuts:
            return self
        return VersionSet(_combine(self._cuts, other._cuts, 0))

    def __or__(self, other: VersionSet) -> VersionSet:
        if self._cuts == other._cuts:
            return self
        return VersionSet(_combine(self._cuts, other._cuts, 1))

    def __sub__(self, other: VersionSet) -> VersionSet:
        return VersionSet(_combine(self._cuts, other._cuts, 2))

    def complement(self) -> VersionSet:
        cuts = self._cuts
        cuts = cuts[1:] if cuts and cuts[0] == MIN_CUT else (MIN_CUT, *cuts)
        cuts = cuts[:-1] if cuts and cuts[-1] == MAX_CUT else (*cuts, MAX_CUT)
        return VersionSet(cuts)

    intersection = __and__
    union = __or__
    difference = __sub__

    def is_empty(self) -> bool:
        return not self._cuts

    def is_full(self) -> bool:
        return self._cuts == _FULL._cuts

    def is_subset(self, other: VersionSet) -> bool:
        key = (self, other)
        hit = _SUBSET.get(key)
        if hit is None:
            hit = _SUBSET[key] = self._is_subset(other)
            if len(_SUBSET) > _MEMO_MAX:
                _SUBSET.clear()
        return hit

    def _is_subset(self, other: VersionSet) -> bool:
        a, b = self._cuts, other._cuts
        if a == b or not a or b is _FULL_CUTS:
            return True
        if not b:
            return False
        if len(b) == 2 and len(a) >= 2 and b[0] <= a[0] and a[-1] <= b[1]:
            return True  # inside one interval
        return not _combine(a, b, 2)

    def is_disjoint(self, other: VersionSet) -> bool:
        key = (self, other)
        hit = _DISJOINT.get(key)
        if hit is None:
            hit = _DISJOINT[key] = self._is_disjoint(other)
            if len(_DISJOINT) > _MEMO_MAX:
                _DISJOINT.clear()
        return hit

    def _is_disjoint(self, other: VersionSet) -> bool:
        a, b = self._cuts, other._cuts
        if not a or not b:
            return True
        if a[-1] <= b[0] or b[-1] <= a[0]:
            return True
        return not _combine(a, b, 0)

    def __contains__(self, version: Version) -> bool:
        return bisect_right(self._cuts, (version_key(version), POINT)) % 2 == 1

    contains = __contains__

    def count_in(self, keys: Sequence[Point]) -> int:
        """How many of ``keys`` (sorted ``(version_key(v), POINT)`` points) lie in the set."""
        cuts = self._cuts
        n = 0
        for i in range(0, len(cuts), 2):
            n += bisect_right(keys, cuts[i + 1]) - bisect_right(keys, cuts[i])
        return n

    def first_in(self, keys: Sequence[Point], *, highest: bool) -> int | None:
        """Index into sorted ``keys`` of the highest (or lowest) point in the set, or None."""
        cuts = self._cuts
        best: int | None = None
        for i in range(0, len(cuts), 2):
            lo = bisect_right(keys, cuts[i])
            hi = bisect_right(keys, cuts[i + 1])
            if lo < hi:
                if highest:
                    best = hi - 1
                elif best is None:
                    return lo
        return best

    # -- identity -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, VersionSet) and self._cuts == other._cuts

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self._cuts)
        return self._hash

    def __repr__(self) -> str:
        return f"VersionSet({str(self)!r})"

    def intervals(self) -> list[tuple[Cut, Cut]]:
        c = self._cuts
        return [(c[i], c[i + 1]) for i in range(0, len(c), 2)]

    # -- display --------------------------------------------------------------------------------
    def __str__(self) -> str:
        """A specifier-like text: ``>=1.0,<2``, ``==1.0``, ``!=1.5``, ``*`` or ``∅``."""
        cuts = self._cuts
        if not cuts:
            return "∅"
        if cuts == _FULL._cuts:
            return "*"
        if len(cuts) == 4 and cuts[0] == MIN_CUT and cuts[3] == MAX_CUT:
            hole = _equal_text(cuts[1], cuts[2])
            if hole is not None:
                return "!=" + hole[2:]
        parts = []
        for i in range(0, len(cuts), 2):
            parts.append(_interval_text(cuts[i], cuts[i + 1]))
        return " | ".join(parts)


def _is_dev0(v: Version) -> bool:
    return v.dev == 0 and v.pre is None and v.post is None and v.local is None


def _lower_text(cut: Cut) -> str:
    key, side, v = cut
    shown = version_key(v)
    if shown == key:
        return (">=" if side == BELOW else ">") + str(v)
    if shown < key:  # the cut sits after v's locals / post releases / dev release
        return ">" + str(v)
    return f">={v}.dev0"


def _upper_text(cut: Cut) -> str:
    key, side, v = cut
    shown = version_key(v)
    if shown == key:
        return ("<" if side == BELOW else "<=") + str(v)
    if shown < key:
        return "<=" + str(v)
    return "<" + str(v)


def _equal_text(lo: Cut, hi: Cut) -> str | None:
    """``==V`` or ``==V.*`` when ``[lo, hi)`` is exactly that, else None."""
    if lo[1] != BELOW or lo is MIN_CUT or hi is MAX_CUT:
        return None
    v = lo[2]
    if hi == (lo[0], ABOVE, v) or hi == (_after_locals(lo[0]), BELOW, v):
        return f"=={v}"
    w = hi[2]
    if (
        _is_dev0(v)
        and _is_dev0(w)
        and version_key(w) == hi[0]
        and v.epoch == w.epoch
        and len(v.release) == len(w.release)
        and w.release == (*v.release[:-1], v.release[-1] + 1)
    ):
        return f"=={v.base_version}.*"
    return None


def _interval_text(lo: Cut, hi: Cut) -> str:
    named = _equal_text(lo, hi)
    if named is not None:
        return named
    if lo == MIN_CUT:
        return _upper_text(hi)
    if hi == MAX_CUT:
        return _lower_text(lo)
    return _lower_text(lo) + "," + _upper_text(hi)


@lru_cache(maxsize=8192)
def _from_text(text: str) -> VersionSet:
    try:
        pairs, _ = parsed.specifier_parts(text)
    except parsed.InvalidSpecifier:
        from packaging.specifiers import Specifier  # one specifier packaging's set refuses

        pairs, _ = parsed.specifier_parts(str(Specifier(text)))
    result = _FULL
    for op, version in sorted(pairs, key="".join):  # as packaging's str(Specifier) sorts
        result = result & VersionSet(_spec_cuts(op, version))
        if result.is_empty():
            break
    return result


def point_keys(versions: Iterable[Version]) -> list[Point]:
    """Sorted points for ``count_in`` / ``first_in`` (``versions`` must already be sorted)."""
    return [(version_key(v), POINT) for v in versions]


_FULL_CUTS = (MIN_CUT, MAX_CUT)
_FULL = VersionSet(_FULL_CUTS)
_EMPTY = VersionSet(())
