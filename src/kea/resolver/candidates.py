"""A package's versions as the solver may pick them: ascending, pre-releases kept or left out
by the policy (``allowed_versions``), and ranked in groups where the provider ranks them
(``Provider.version_tiers``)."""

from __future__ import annotations

from collections.abc import Sequence

from packaging.version import Version

from kea.resolver.ranges import Point, point_keys, version_key


class Candidates:
    """The versions of one package the solver may pick, ascending."""

    __slots__ = ("excluded_pre", "members", "points", "tiers", "versions")

    def __init__(self, versions: list[Version], excluded_pre: list[Version]) -> None:
        self.versions = versions
        self.points: list[Point] = point_keys(versions)
        self.members = set(versions)
        self.excluded_pre = excluded_pre
        # Ranked groups (each ascending, with its points): a version of an earlier group is
        # always chosen before any of a later one (``Provider.version_tiers``).
        self.tiers: list[tuple[list[Version], list[Point]]] | None = None

    def set_tiers(self, tiers: Sequence[Sequence[Version]]) -> None:
        groups = []
        for tier in tiers:
            members = sorted({v for v in tier if v in self.members}, key=version_key)
            if members:
                groups.append((members, point_keys(members)))
        self.tiers = groups if len(groups) > 1 else None


def allowed_versions(
    versions: Sequence[Version], mode: str, *, explicit: bool, preferred: Version | None
) -> Candidates:
    """``versions`` (any order, repeats allowed) as candidates under the pre-release ``mode``
    (``kea.resolver.protocol.PRERELEASE_MODES``). ``explicit``: a requirement names a
    pre-release of this package; ``preferred``: its installed (or locked) version, which is
    kept even when it is a pre-release. The pre-releases left out are kept aside for hints."""
    ordered = sorted(set(versions), key=version_key)
    allow = mode == "allow"
    if not allow and mode != "disallow":
        allow = (explicit and mode in ("explicit", "if-necessary-or-explicit")) or (
            mode in ("if-necessary", "if-necessary-or-explicit")
            and all(v.is_prerelease for v in ordered)
        )
    if allow:
        return Candidates(ordered, [])
    keep = [v for v in ordered if not v.is_prerelease or v == preferred]
    return Candidates(keep, [v for v in ordered if v.is_prerelease and v != preferred])
