"""From PEP 508 requirements to the resolver's edges: markers, extras, overrides.

Packages are plain canonical names (``requests``) or virtual extra packages (``requests[socks]``).
``a[x]==v`` depends on ``a==v`` and on the requirements of ``a`` whose marker holds only with
``extra == "x"``; plain ``a==v`` depends on those whose marker holds with no extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from packaging.version import Version

from kea.dist import parsed
from kea.dist.names import canonicalize_name
from kea.errors import KeaError
from kea.resolver.ranges import VersionSet

if TYPE_CHECKING:
    from packaging.markers import Marker
    from packaging.requirements import Requirement

Edge = tuple[str, VersionSet]


def package_key(name: str, extra: str | None = None) -> str:
    """``name`` or ``name[extra]`` (both canonical)."""
    name = canonicalize_name(name)
    return f"{name}[{canonicalize_name(extra)}]" if extra else name


def split_key(key: str) -> tuple[str, str | None]:
    """``"a[x]"`` → ``("a", "x")``; ``"a"`` → ``("a", None)``."""
    if key.endswith("]"):
        name, _, extra = key[:-1].partition("[")
        return name, extra
    return key, None


def parse_requirement(req: Requirement | str) -> Requirement:
    if not isinstance(req, str):
        return req
    try:
        return parsed.requirement(req)
    except parsed.InvalidRequirement as e:
        raise KeaError(f"invalid requirement {req!r}: {e}") from None


class Requirements(list["Requirement"]):
    """The requirements of one distribution, for a provider that parses them lazily.

    The list itself holds the lines that may apply without an extra; lines that certainly need
    one extra (an ``extra == "x"`` conjunction: they never hold without it) are kept as text and
    parsed only when ``x`` is asked for (``for_extra``), most never. ``lines`` is every line in
    metadata order with the extra it needs (or None); ``parse`` turns one into a requirement or
    None (invalid: skipped).
    """

    def __init__(
        self,
        lines: Sequence[tuple[str | None, str]],
        parse: Callable[[str], Requirement | None],
    ) -> None:
        self._lines = lines
        self._parse = parse
        self._extras: dict[str, list[Requirement]] = {}
        super().__init__(r for x, line in lines if x is None and (r := parse(line)) is not None)

    def for_extra(self, extra: str) -> list[Requirement]:
        """Every requirement that may hold with ``extra`` (canonical), in metadata order."""
        hit = self._extras.get(extra)
        if hit is None:
            if not any(x == extra for x, _ in self._lines):
                hit = list(self)
            else:
                hit = [
                    r
                    for x, line in self._lines
                    if (x is None or x == extra) and (r := self._parse(line)) is not None
                ]
            self._extras[extra] = hit
        return hit


class Environment:
    """Marker evaluation against the target environment, cached per (marker, extra)."""

    def __init__(self, values: Mapping[str, str] | None) -> None:
        base: dict[str, str] = {}
        if not values or not values.keys() >= parsed.VARIABLES:
            from packaging.markers import default_environment  # the target's probe gives all

            base = {k: str(v) for k, v in default_environment().items()}
        if values:
            base.update(values)
        self.values = base
        # (id of the marker, extra) -> (the marker, kept alive so that its id is not reused;
        # whether it holds): keyed by identity, as ``str(marker)`` re-formats it on every call.
        self._cache: dict[tuple[int, str], tuple[Marker, bool]] = {}

    def holds(self, marker: Marker | None, extra: str = "") -> bool:
        if marker is None:
            return True
        key = (id(marker), extra)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is marker:
            return hit[1]
        env = dict(self.values)
        env["extra"] = extra
        try:
            holds = bool(marker.evaluate(env))
        except Exception as e:  # UndefinedComparison, UndefinedEnvironmentName...
            raise KeaError(f"cannot evaluate marker `{marker}`: {e}") from None
        self._cache[key] = (marker, holds)
        return holds


class EdgeBuilder:
    """Turns requirements into ``(package key, version set)`` edges under overrides."""

    def __init__(self, env: Environment, overrides: Sequence[Requirement]) -> None:
        self.env = env
        self.overrides: dict[str, list[Requirement]] = {}
        for req in overrides:
            if env.holds(req.marker):
                self.overrides.setdefault(canonicalize_name(req.name), []).append(req)
        self._cache: dict[tuple[str, Version, str | None], list[Edge]] = {}

    def _expand(self, req: Requirement) -> list[Edge]:
        if req.url:
            raise KeaError(
                f"direct URL requirement `{req.name} @ ...` is not supported by the resolver yet"
            )
        vset = VersionSet.from_specifiers(parsed.specifier_text(req))
        name: str = canonicalize_name(req.name)
        edges: list[Edge] = [(name, vset)]
        for extra in sorted(req.extras):
            edges.append((package_key(name, extra), vset))
        return edges

    def _apply_overrides(self, reqs: Iterable[Requirement]) -> Iterable[Requirement]:
        replaced: set[str] = set()
        for req in reqs:
            name = canonicalize_name(req.name)
            over = self.overrides.get(name)
            if over is None:
                yield req
            elif name not in replaced:
                replaced.add(name)
                yield from over

    def root_edges(self, reqs: Sequence[Requirement]) -> list[Edge]:
        active = [r for r in reqs if self.env.holds(r.marker)]
        edges: list[Edge] = []
        for req in self._apply_overrides(active):
            edges += self._expand(req)
        return _merge(edges)

    def edges(self, key: str, version: Version, reqs: Sequence[Requirement]) -> list[Edge]:
        """The edges of package ``key`` (plain or extra) at ``version``."""
        name, extra = split_key(key)
        cache_key = (name, version, extra)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        edges: list[Edge] = []
        if extra is None:
            active = [r for r in reqs if self.env.holds(r.marker, "")]
        else:
            edges.append((name, VersionSet.exact(version)))
            if isinstance(reqs, Requirements):
                reqs = reqs.for_extra(extra)
            active = [
                r
                for r in reqs
                if r.marker is not None
                and self.env.holds(r.marker, extra)
                and not self.env.holds(r.marker, "")
            ]
        for req in self._apply_overrides(active):
            for dep, vset in self._expand(req):
                if dep != key or version not in vset:  # a self-dependency it satisfies: a no-op
                    edges.append((dep, vset))
        edges = _merge(edges)
        self._cache[cache_key] = edges
        return edges


def _merge(edges: list[Edge]) -> list[Edge]:
    """One edge per dependency where possible: several requirements on it are intersected
    (order kept), unless that leaves nothing, so that a conflict is explained requirement by
    requirement."""
    merged: dict[str, VersionSet] = {}
    extra: list[Edge] = []
    for dep, vset in edges:
        have = merged.get(dep)
        if have is None:
            merged[dep] = vset
        elif (have & vset).is_empty():
            extra.append((dep, vset))
        else:
            merged[dep] = have & vset
    return [*merged.items(), *extra]


def has_explicit_prerelease(req: Requirement) -> bool:
    """Whether a requirement's specifier names a pre-release (``>=2.0b1``)."""
    return parsed.specifier_parts(parsed.specifier_text(req))[1]
