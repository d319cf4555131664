"""Wheel and sdist file names.

``parse_wheel_name`` turns ``name-1.0-py3-none-any.whl`` into a :class:`WheelName`; sdists are
recognised (so the caller can say why they are not used) but not built: ``require_wheel`` raises
``building from source is not supported yet: <file>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from kea.errors import KeaError

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")


@dataclass(frozen=True, slots=True)
class WheelName:
    """The parts of a wheel file name."""

    filename: str
    name: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag]


def parse_wheel_name(filename: str) -> WheelName:
    """Parse a wheel file name; a malformed one is a ``KeaError``."""
    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as e:
        raise KeaError(f"invalid wheel file name {filename!r}: {e}") from None
    return WheelName(filename, name, version, build, tags)


def is_wheel_filename(filename: str) -> bool:
    return filename.lower().endswith(".whl")


def is_sdist_filename(filename: str) -> bool:
    """True for a source distribution file name (``.tar.gz``, ``.zip``, ...)."""
    lower = filename.lower()
    return not lower.endswith(".whl") and lower.endswith(SDIST_SUFFIXES)


def parse_sdist_name(filename: str) -> tuple[NormalizedName, Version] | None:
    """``(name, version)`` of an sdist file name, or None when it cannot be parsed."""
    try:
        return parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return None


def parse_dist_filename(filename: str) -> tuple[NormalizedName, Version] | None:
    """``(name, version)`` of a wheel (a name ending in ``.whl``) or sdist file name; None when
    it cannot be parsed."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
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
