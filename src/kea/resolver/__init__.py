"""kea's resolver: PubGrub over a ``Provider``, pure (no I/O, never imports kea.http/index).

    from kea.resolver import Options, resolve
    resolution = resolve(["requests>=2"], provider, Options(prerelease="allow"))
    resolution.packages  # {"requests": Version("2.32.3"), ...}

A failure raises ``ResolutionError`` (a ``KeaError``) whose ``explanation`` tells why.
"""

from __future__ import annotations

from kea.resolver.protocol import (
    PRERELEASE_MODES,
    RESOLUTION_MODES,
    BaseProvider,
    Options,
    PrereleaseMode,
    Provider,
    Resolution,
    ResolutionError,
    ResolutionMode,
    Unavailable,
)
from kea.resolver.ranges import VersionSet
from kea.resolver.solver import package_name, resolve

__all__ = [
    "PRERELEASE_MODES",
    "RESOLUTION_MODES",
    "BaseProvider",
    "Options",
    "PrereleaseMode",
    "Provider",
    "Resolution",
    "ResolutionError",
    "ResolutionMode",
    "Unavailable",
    "VersionSet",
    "package_name",
    "resolve",
]
