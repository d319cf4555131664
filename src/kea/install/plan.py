"""What an install has to do: wanted distributions vs those installed in the target."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import msgspec
from packaging.version import InvalidVersion, Version

from kea.dist.installed import InstalledDist
from kea.dist.names import canonicalize_name


class WantedDist(msgspec.Struct, frozen=True):
    """A distribution the resolver chose, with its unpacked wheel (the cache's archive)."""

    name: str
    version: str
    archive: Path
    direct_url: str | None = None  # JSON text for direct_url.json (URL / path installs)
    requested: bool = True  # named by the user (writes REQUESTED)
    filename: str | None = None  # the wheel's file name, to name it in errors

    @property
    def canonical_name(self) -> str:
        return canonicalize_name(self.name)


def from_same_url(have: InstalledDist, direct_url: str | None) -> bool:
    """Whether ``have`` came from where ``direct_url`` (the JSON of a direct reference, None
    for an index's file) says: any installed copy satisfies a wanted one from an index."""
    if direct_url is None:
        return True
    return (have.read_text("direct_url.json") or "").strip() == direct_url.strip()


class Plan(msgspec.Struct):
    to_install: list[WantedDist] = msgspec.field(default_factory=list)
    to_remove: list[InstalledDist] = msgspec.field(default_factory=list)  # replaced or removed
    unchanged: list[InstalledDist] = msgspec.field(default_factory=list)

    def replaced(self, name: str) -> InstalledDist | None:
        for dist in self.to_remove:
            if dist.name == name:
                return dist
        return None

    @property
    def empty(self) -> bool:
        return not self.to_install and not self.to_remove


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def make_plan(
    wanted: Iterable[WantedDist],
    installed: Mapping[str, InstalledDist],
    *,
    reinstall: bool | Iterable[str] = False,
    remove_unwanted: bool = False,
) -> Plan:
    """Compare ``wanted`` with ``installed`` (by canonical name).

    ``reinstall``: True for all, or the names to reinstall even when the version matches.
    A wanted dist installed from a direct URL is reinstalled when its direct_url differs.
    ``remove_unwanted`` (``pip sync``): installed dists not wanted are removed.
    """
    if isinstance(reinstall, bool):
        reinstall_all, reinstall_names = reinstall, set()
    else:
        reinstall_all, reinstall_names = False, {canonicalize_name(n) for n in reinstall}
    plan = Plan()
    seen: set[str] = set()
    for want in wanted:
        name = want.canonical_name
        seen.add(name)
        have = installed.get(name)
        if have is None:
            plan.to_install.append(want)
            continue
        same = _same_version(have.version, want.version) and from_same_url(have, want.direct_url)
        if same and not reinstall_all and name not in reinstall_names:
            plan.unchanged.append(have)
            continue
        plan.to_install.append(want)
        plan.to_remove.append(have)
    if remove_unwanted:
        for name, have in installed.items():
            if name not in seen:
                plan.to_remove.append(have)
    return plan
