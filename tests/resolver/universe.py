"""An in-memory package universe implementing the resolver's Provider, for tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.requirements import Requirement
from packaging.version import Version

from kea.resolver import BaseProvider, Unavailable


class Universe(BaseProvider):
    """``{"a": {"1.0": ["b>=2"], "2.0": Unavailable("...")}}``; records the hints it gets."""

    def __init__(
        self,
        packages: Mapping[str, Mapping[str, Sequence[str] | Unavailable] | Unavailable],
    ) -> None:
        self.packages = packages
        self.prefetched: list[str] = []
        self.decisions: list[tuple[str, Version]] = []
        self.version_calls: list[str] = []
        self.dependency_calls: list[tuple[str, Version]] = []

    def versions(self, name: str) -> Sequence[Version] | Unavailable:
        self.version_calls.append(name)
        entry = self.packages.get(name)
        if entry is None:
            return Unavailable("was not found in the package registry")
        if isinstance(entry, Unavailable):
            return entry
        return [Version(v) for v in entry]

    def dependencies(self, name: str, version: Version) -> Sequence[Requirement] | Unavailable:
        self.dependency_calls.append((name, version))
        entry = self.packages[name]
        assert not isinstance(entry, Unavailable)
        for text, deps in entry.items():
            if Version(text) == version:
                if isinstance(deps, Unavailable):
                    return deps
                return [Requirement(d) for d in deps]
        raise AssertionError(f"{name}=={version} was never offered")

    def prefetch(self, names: Sequence[str]) -> None:
        self.prefetched.extend(names)

    def on_decision(self, name: str, version: Version) -> None:
        self.decisions.append((name, version))
