"""What the resolver asks of the world, what it is told by the caller, and what it answers.

The resolver is pure: everything it knows about packages comes through a ``Provider``. The bridge
to the index client (``kea.resolver.provider``) implements it over the network; tests implement it
over in-memory universes. The resolver calls the provider synchronously from one thread; a bridge
that fetches asynchronously runs its event loop elsewhere and blocks on its futures here, and uses
``prefetch`` / ``on_decision`` to start those fetches early.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import msgspec
from packaging.version import Version

from kea.errors import KeaError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

PrereleaseMode = Literal[
    "disallow", "allow", "if-necessary", "explicit", "if-necessary-or-explicit"
]
ResolutionMode = Literal["highest", "lowest", "lowest-direct"]

PRERELEASE_MODES: tuple[str, ...] = (
    "disallow",
    "allow",
    "if-necessary",
    "explicit",
    "if-necessary-or-explicit",
)
RESOLUTION_MODES: tuple[str, ...] = ("highest", "lowest", "lowest-direct")


# Records are msgspec Structs, not dataclasses: a dataclass writes and compiles its methods when
# the module is imported (~0.5-2 ms each, every run), a Struct is made in C.


class Unavailable(msgspec.Struct, frozen=True):
    """Why a package (or one version of it) cannot be used.

    ``reason`` completes a sentence whose subject is the package or version, e.g.
    ``"has no wheels with a matching platform tag"``, ``"requires Python>=3.12"``,
    ``"has invalid metadata"``, ``"was not found in the package registry"``. It must already be
    redacted (no URLs with credentials).
    """

    reason: str


@runtime_checkable
class Provider(Protocol):
    """The resolver's only window on packages. Names passed in are canonical (PEP 503)."""

    def versions(self, name: str) -> Sequence[Version] | Unavailable:
        """Every usable version of ``name``, in any order.

        Already filtered by the provider: wheel tags, requires-python (or report that through
        ``dependencies``), yanked (unless pinned with ``==``), ``--exclude-newer``. Pre-release
        policy is the resolver's job: return pre-releases too.
        """
        ...

    def dependencies(self, name: str, version: Version) -> Sequence[Requirement] | Unavailable:
        """The requirements of ``name==version`` as its metadata states them (``Requires-Dist``,
        markers and extras included: the resolver evaluates them), or why it can't be used."""
        ...

    def prefetch(self, names: Sequence[str]) -> None:
        """Hint: these packages will probably be needed soon (start fetching their pages)."""
        ...

    def on_decision(self, name: str, version: Version) -> None:
        """Hint: the resolver chose ``name==version`` (its dependencies are fetched next)."""
        ...

    # Optional (looked up with getattr, not part of the runtime check):
    #   version_tiers(name) -> Sequence[Sequence[Version]] | None
    # ranked groups of ``versions(name)``: every version of an earlier group is tried before any
    # of a later one (highest/lowest within a group per --resolution). ``unsafe-first-match``
    # uses it to exhaust the first index's versions before the next index's. None: one group.


class BaseProvider:
    """Convenience base class: no-op hints; subclasses implement ``versions``/``dependencies``."""

    def versions(self, name: str) -> Sequence[Version] | Unavailable:  # pragma: no cover
        raise NotImplementedError

    def dependencies(
        self, name: str, version: Version
    ) -> Sequence[Requirement] | Unavailable:  # pragma: no cover
        raise NotImplementedError

    def prefetch(self, names: Sequence[str]) -> None:
        return None

    def on_decision(self, name: str, version: Version) -> None:
        return None


class Options(msgspec.Struct, frozen=True):
    """The caller's policies.

    ``environment``: marker values of the target interpreter (``python_version``,
    ``sys_platform``...); missing keys fall back to ``packaging.markers.default_environment()``.
    ``constraints`` narrow a package's versions when something requires it (``-c``) without
    requiring it; ``overrides`` replace every requirement on their package, wherever it appears
    (``--overrides``). ``preferences`` are versions to keep when allowed (installed versions,
    minus ``--upgrade`` / ``--upgrade-package`` ones).
    """

    prerelease: PrereleaseMode = "if-necessary-or-explicit"
    resolution: ResolutionMode = "highest"
    environment: Mapping[str, str] | None = None
    constraints: Sequence[Requirement | str] = ()
    overrides: Sequence[Requirement | str] = ()
    preferences: Mapping[str, Version | str] = msgspec.field(default_factory=dict)


class Resolution(dict[str, Version]):
    """A solution: a dict of canonical name → version, plus the extras in use and who depends
    on whom (``dependencies``: name → names it depends on, extras folded in)."""

    def __init__(
        self,
        packages: Mapping[str, Version],
        extras: Mapping[str, frozenset[str]] | None = None,
        dependencies: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        super().__init__(packages)
        self.extras: dict[str, frozenset[str]] = dict(extras or {})
        self.dependencies: dict[str, frozenset[str]] = dict(dependencies or {})

    @property
    def packages(self) -> dict[str, Version]:
        return dict(self)

    def pins(self) -> list[str]:
        """``name==version`` lines, sorted by name."""
        return [f"{name}=={self[name]}" for name in sorted(self)]


class ResolutionError(KeaError):
    """No solution: ``explanation`` is the derivation in plain English, one sentence a line.

    Callers add hints with ``add_hint`` (e.g. "package X was only 401/403"); each becomes its own
    ``hint:`` line when the CLI prints the error.
    """

    def __init__(self, explanation: str, hints: Sequence[str] = ()) -> None:
        self.explanation = explanation
        body = "\n".join("  " + line for line in explanation.splitlines())
        super().__init__("No solution found when resolving dependencies:\n" + body)
        self.hints: list[str] = []
        self.packages: frozenset[str] = frozenset()  # package names the explanation involves
        self.incompatibility: object | None = None  # the root of the derivation tree
        for hint in hints:
            self.add_hint(hint)

    def add_hint(self, hint: str) -> None:
        if hint and hint not in self.hints:
            self.hints.append(hint)
        self.hint = "\nhint: ".join(self.hints) if self.hints else None
