"""Wheel and sdist file names.

``parse_wheel_name`` turns ``name-1.0-py3-none-any.whl`` into a :class:`WheelName`; sdists are
recognised (so the caller can say why they are not used) but not built: ``require_wheel`` raises
``building from source is not supported yet: <file>``.
"""

from __future__ import annotations

import re

import msgspec

from kea.dist.names import canonicalize_name
from kea.errors import KeaError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from packaging.tags import Tag
    from packaging.utils import BuildTag, NormalizedName
    from packaging.version import Version

# packaging.utils (and with it packaging.tags) is imported by the functions that parse: a run
# answered from the cache never parses a file name (``kea.dist.names``).

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")


class WheelName(msgspec.Struct, frozen=True):
    """The parts of a wheel file name (a Struct: a dataclass would import ``inspect``, 3 ms, on
    every run)."""

    filename: str
    name: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag]


def parse_wheel_name(filename: str) -> WheelName:
    """Parse a wheel file name; a malformed one is a ``KeaError``."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as e:
        raise KeaError(f"invalid wheel file name {filename!r}: {e}") from None
    return WheelName(filename, name, version, build, tags)


# PEP 427: the name part of a wheel file name, escaped (letters, digits, ``_`` and ``.``).
_WHEEL_NAME = re.compile(r"[\w.]+", re.UNICODE)
_BUILD = re.compile(r"(\d+)(.*)", re.ASCII)


def wheel_parts(filename: str) -> tuple[NormalizedName, Version, frozenset[str]] | None:
    """``(name, version, tags)`` of a wheel file name, each tag as text (``py3-none-any``,
    lower case, a compressed set expanded); None when it is not a valid wheel file name.

    The same reading, and the same refusals, as ``packaging.utils.parse_wheel_filename`` (a test
    holds the two together), without importing it: that module imports ``packaging.tags``,
    ``subprocess`` and ``sysconfig`` (~8 ms), and every file of every page read from the cache
    passes through here, where only the tags' text is compared (``kea.dist.tags``).
    """
    if not filename.endswith(".whl"):
        return None
    stem = filename[:-4]
    dashes = stem.count("-")
    if dashes != 4 and dashes != 5:
        return None
    parts = stem.split("-")
    name_part = parts[0]
    if "__" in name_part or not _WHEEL_NAME.fullmatch(name_part):
        return None
    if dashes == 5 and not _BUILD.fullmatch(parts[2]):
        return None
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(parts[1])
    except InvalidVersion:
        return None
    interpreters, abis, platforms = (p.split(".") for p in parts[-3:])
    if "" in interpreters or "" in abis or "" in platforms:
        return None
    if not all(i.isidentifier() for i in interpreters):
        return None
    tags = frozenset(
        f"{i}-{a}-{p}".lower() for i in interpreters for a in abis for p in platforms
    )
    return canonicalize_name(name_part), version, tags


def is_wheel_filename(filename: str) -> bool:
    return filename.lower().endswith(".whl")


def is_sdist_filename(filename: str) -> bool:
    """True for a source distribution file name (``.tar.gz``, ``.zip``, ...)."""
    lower = filename.lower()
    return not lower.endswith(".whl") and lower.endswith(SDIST_SUFFIXES)


def parse_sdist_name(filename: str) -> tuple[NormalizedName, Version] | None:
    """``(name, version)`` of an sdist file name, or None when it cannot be parsed."""
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename

    try:
        return parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return None


def parse_dist_filename(filename: str) -> tuple[NormalizedName, Version] | None:
    """``(name, version)`` of a wheel (a name ending in ``.whl``) or sdist file name; None when
    it cannot be parsed."""
    if filename.endswith(".whl"):
        parts = wheel_parts(filename)
        return None if parts is None else (parts[0], parts[1])
    from packaging.utils import parse_sdist_filename

    try:
        return parse_sdist_filename(filename)
    except ValueError:  # InvalidSdistFilename among them
        return None


def require_wheel(filename: str) -> WheelName:
    """The parsed wheel name, or a clear error for an sdist or any other file."""
    if is_wheel_filename(filename):
        return parse_wheel_name(filename)
    if is_sdist_filename(filename):
        raise KeaError(
            f"building from source is not supported yet: {filename}",
            hint="use a wheel of this package (or --only-binary :all: to skip sdists)",
        )
    raise KeaError(f"not a distribution file: {filename}", hint="expected a .whl file")
