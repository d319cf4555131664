"""``kea cache clean`` and ``kea cache prune``: remove entries and count what went."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from kea.atomic import TMP_PREFIX
from kea.cache.store import (
    ARCHIVE,
    BUCKETS,
    LOCKS,
    METADATA,
    SIMPLE,
    WHEELS,
    Cache,
    WheelPointer,
)
from kea.errors import KeaError

# fastpath-v1: the no-op stamps of kea.cli.fastpath (that writer bounds their number itself).
KEEP_AT_ROOT = frozenset({"CACHEDIR.TAG", ".gitignore", ".lock", "fastpath-v1"})
TMP_MAX_AGE = 3600.0  # temp entries younger than this may belong to a running kea


@dataclass
class Removal:
    files: int = 0
    dirs: int = 0
    bytes: int = 0

    def add(self, other: Removal) -> None:
        self.files += other.files
        self.dirs += other.dirs
        self.bytes += other.bytes

    def summary(self) -> str:
        if not self.files and not self.dirs:
            return "No cache entries found"
        parts = f"{self.files} file{'s' if self.files != 1 else ''}"
        return f"Removed {parts} ({format_size(self.bytes)})"


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}GiB"


def remove_path(path: Path) -> Removal:
    """Remove a file or a directory tree (read-only entries included); count what went."""
    out = Removal()
    try:
        st = path.lstat()
    except FileNotFoundError:
        return out
    if stat.S_ISDIR(st.st_mode):
        for root, dirs, files in os.walk(path):
            out.dirs += len(dirs)
            for name in files:
                try:
                    out.bytes += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    pass
                out.files += 1
        out.dirs += 1

        def retry_writable(func: object, p: str, exc: object) -> None:
            try:
                os.chmod(os.path.dirname(p), 0o700)
                if os.path.isdir(p) and not os.path.islink(p):
                    os.chmod(p, 0o700)
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.unlink(p)
            except OSError:
                pass

        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=retry_writable)
        else:
            shutil.rmtree(path, onerror=retry_writable)
    else:
        out.files, out.bytes = 1, st.st_size
        path.unlink(missing_ok=True)
    return out


def clean_all(cache: Cache) -> Removal:
    """Remove everything in the cache directory."""
    if not cache.root.exists():
        return Removal()
    total = Removal()
    try:
        entries = list(cache.root.iterdir())
    except OSError as e:
        raise KeaError(f"cannot read the cache directory {cache.root}: {e.strerror}") from None
    for entry in entries:
        total.add(remove_path(entry))
    return total


def _normalize(name: str) -> str:
    from kea.index.models import normalize_name

    return normalize_name(name)


def _archive_project(archive: Path) -> str | None:
    try:
        for entry in archive.iterdir():
            if entry.name.endswith(".dist-info") and "-" in entry.name:
                return _normalize(entry.name[: -len(".dist-info")].rsplit("-", 1)[0])
    except OSError:
        return None
    return None


def clean_packages(cache: Cache, names: list[str]) -> dict[str, Removal]:
    """Remove every cache entry of the given projects: pages, metadata, wheels and archives."""
    wanted = {_normalize(n): n for n in names}
    out = {n: Removal() for n in wanted}
    root = cache.root
    simple = root / SIMPLE
    if simple.is_dir():
        for index_dir in simple.iterdir():
            for name in wanted:
                out[name].add(remove_path(index_dir / f"{name}.msgpack"))
    for name in wanted:
        out[name].add(remove_path(root / METADATA / name))
        pointers = root / WHEELS / name
        if pointers.is_dir():
            for p in pointers.glob("*.msgpack"):
                ptr = _read_pointer(p)
                if ptr is not None:
                    out[name].add(remove_path(root / ARCHIVE / ptr.sha256))
        out[name].add(remove_path(pointers))
    archives = root / ARCHIVE
    if archives.is_dir():
        for archive in archives.iterdir():
            if archive.name.startswith(".") or not archive.is_dir():
                continue
            project = _archive_project(archive)
            if project in out:
                out[project].add(remove_path(archive))
    return out


def _read_pointer(path: Path) -> WheelPointer | None:
    try:
        return msgspec.msgpack.decode(path.read_bytes(), type=WheelPointer)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def prune(cache: Cache, *, now: float | None = None) -> Removal:
    """Remove what no run can use: old bucket versions, stale temp entries, unused archives."""
    total = Removal()
    root = cache.root
    if not root.is_dir():
        return total
    now = time.time() if now is None else now
    for entry in root.iterdir():
        if entry.name in KEEP_AT_ROOT or entry.name in BUCKETS:
            continue
        total.add(remove_path(entry))  # e.g. simple-v0 from an older kea
    for bucket in BUCKETS:
        directory = root / bucket
        if not directory.is_dir():
            continue
        for tmp in _temp_entries(directory):
            try:
                age = now - tmp.lstat().st_mtime
            except OSError:
                continue
            if age > TMP_MAX_AGE:
                total.add(remove_path(tmp))
    referenced: set[str] = set()
    wheels = root / WHEELS
    if wheels.is_dir():
        for p in wheels.rglob("*.msgpack"):
            ptr = _read_pointer(p)
            if ptr is None or not (root / ARCHIVE / ptr.sha256).is_dir():
                total.add(remove_path(p))  # unreadable, or pointing at nothing
            else:
                referenced.add(ptr.sha256)
    archives = root / ARCHIVE
    if archives.is_dir():
        for archive in archives.iterdir():
            if archive.name.startswith(".") or archive.name in referenced:
                continue
            try:
                young = now - archive.lstat().st_ctime < TMP_MAX_AGE
            except OSError:
                continue
            if not young:  # a young one may be a running kea's, about to get its pointer
                total.add(remove_path(archive))
    return total


def _temp_entries(directory: Path) -> list[Path]:
    """Temp files/dirs of kea's writers in a bucket (never looking inside unpacked archives)."""
    if directory.name == ARCHIVE:
        return [p for p in directory.iterdir() if p.name.startswith(TMP_PREFIX)]
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d != LOCKS]
        out += [Path(dirpath, n) for n in (*filenames, *dirnames) if n.startswith(TMP_PREFIX)]
    return out
