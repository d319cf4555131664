"""Distributions installed in a directory, found by their ``*.dist-info`` directories."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import msgspec

from kea.dist.names import canonicalize_name

from kea.dist.metadata import CoreMetadata, parse_metadata
from kea.dist.record import RecordEntry, parse_record
from kea.errors import KeaError


class InstalledDist(msgspec.Struct, frozen=True):
    """One installed distribution: ``root`` holds ``dist_info`` (e.g. site-packages)."""

    name: str  # canonical name
    version: str
    dist_info: Path
    display_name: str = ""  # the Name field of METADATA (falls back to ``name``)

    @property
    def pretty_name(self) -> str:
        return self.display_name or self.name

    @property
    def root(self) -> Path:
        return self.dist_info.parent

    def metadata(self) -> CoreMetadata:
        path = self.dist_info / "METADATA"
        try:
            data = path.read_bytes()
        except OSError as e:
            raise KeaError(f"cannot read {path}: {e.strerror}") from None
        return parse_metadata(data, source=str(path))

    def record(self) -> list[RecordEntry]:
        path = self.dist_info / "RECORD"
        try:
            text = path.read_text("utf-8")
        except OSError as e:
            raise KeaError(f"cannot read {path}: {e.strerror}") from None
        return parse_record(text, source=str(path))

    def read_text(self, name: str) -> str | None:
        try:
            return (self.dist_info / name).read_text("utf-8")
        except OSError:
            return None

    @property
    def installer(self) -> str | None:
        text = self.read_text("INSTALLER")
        return text.strip() if text else None


def _from_dir(path: Path) -> InstalledDist | None:
    stem = path.name[: -len(".dist-info")]
    name, sep, version = stem.partition("-")
    if not sep:
        return None
    meta_version = None
    meta_name = None
    try:
        with open(path / "METADATA", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                k = key.strip().lower()
                if k == "name":
                    meta_name = value.strip()
                elif k == "version":
                    meta_version = value.strip()
                if meta_name and meta_version:
                    break
    except OSError:
        return None  # a dist-info without METADATA is not an installed distribution
    return InstalledDist(
        canonicalize_name(meta_name or name), meta_version or version, path, meta_name or name
    )


def find_installed(roots: Iterable[Path]) -> dict[str, InstalledDist]:
    """Installed distributions in ``roots`` (first root wins for a name), by canonical name."""
    found: dict[str, InstalledDist] = {}
    seen: set[str] = set()
    for root in roots:
        key = os.path.realpath(root)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = list(os.scandir(root))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            if not entry.name.endswith(".dist-info") or entry.name.startswith("."):
                continue
            if not entry.is_dir():
                continue
            dist = _from_dir(Path(entry.path))
            if dist is not None and dist.name not in found:
                found[dist.name] = dist
    return found
