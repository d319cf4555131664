"""Project names of distribution file names (for the test servers)."""

from __future__ import annotations

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename


def project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(canonicalize_name(parse_wheel_filename(filename)[0]))
    return str(canonicalize_name(parse_sdist_filename(filename)[0]))
