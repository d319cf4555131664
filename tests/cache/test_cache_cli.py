"""``kea cache dir|clean|prune`` run as the real command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from kea.cache import ARCHIVE, METADATA, SIMPLE, WHEELS, Cache
from kea.cache.maintenance import clean_packages, format_size, prune
from tests.cache.wheelmaker import build_wheel, sha256_of


def kea(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("KEA_CACHE_DIR", "KEA_NO_CACHE")}
    full_env.update({"KEA_NO_CONFIG": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "kea", *args], capture_output=True, text=True, env=full_env
    )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def fill(tmp_path: Path, cache: Cache) -> dict[str, Path]:
    """Two projects' wheels stored (archives + pointers) plus a page and metadata record each."""
    d = tmp_path / "w"
    d.mkdir(exist_ok=True)
    out = {}
    for name in ("alpha", "beta"):
        wheel = build_wheel(d, name, "1.0")
        out[name] = asyncio.run(
            cache.store_wheel(
                _chunks(wheel.read_bytes()), wheel.name, url=f"https://h/files/{wheel.name}"
            )
        )
        cache.write_record(SIMPLE, f"abc/{name}.msgpack", {"page": name})
        cache.write_record(METADATA, f"{name}/{wheel.name}-x.msgpack", {"m": name})
    return out


def test_cache_dir_follows_options_and_env(tmp_path: Path) -> None:
    out = kea("cache", "dir", "--cache-dir", str(tmp_path / "c1"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "c1")
    out = kea("cache", "dir", env={"KEA_CACHE_DIR": str(tmp_path / "c2")})
    assert out.stdout.strip() == str(tmp_path / "c2")
    if sys.platform.startswith("linux"):
        env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
        out = kea("cache", "dir", env=env)
        assert out.stdout.strip() == str(tmp_path / "xdg" / "kea")


def test_clean_one_package(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    archives = fill(tmp_path, cache)
    out = kea("cache", "clean", "Alpha", "--cache-dir", str(cache.root))
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("Removed ") and "for alpha" in out.stderr
    assert not archives["alpha"].exists() and archives["beta"].is_dir()
    assert not (cache.root / SIMPLE / "abc" / "alpha.msgpack").exists()
    assert (cache.root / SIMPLE / "abc" / "beta.msgpack").exists()
    assert not (cache.root / METADATA / "alpha").exists()
    assert not (cache.root / WHEELS / "alpha").exists()
    out = kea("cache", "clean", "alpha", "--cache-dir", str(cache.root))
    assert "No cache entries found for alpha" in out.stderr


def test_clean_everything(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    fill(tmp_path, cache)
    out = kea("cache", "clean", "--cache-dir", str(cache.root))
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == f"Clearing cache at: {cache.root}"
    assert lines[1].startswith("Removed ") and "files (" in lines[1]
    assert list(cache.root.iterdir()) == []
    out = kea("cache", "clean", "--cache-dir", str(tmp_path / "never"))
    assert "No cache found at" in out.stderr


def test_prune_removes_orphans_old_buckets_and_stale_temp(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    archives = fill(tmp_path, cache)
    # An orphan archive (no pointer), an old bucket version, a stale temp file, a broken pointer.
    wheel = build_wheel(tmp_path / "w", "orphan", "1.0")
    orphan = asyncio.run(cache.unpack_local_wheel(wheel))
    for p in (cache.root / WHEELS / "orphan").iterdir():
        p.unlink()
    stamps = cache.root / "fastpath-v1"  # kea.cli.fastpath's no-op stamps are kept
    stamps.mkdir()
    (stamps / ("0" * 64)).write_bytes(b"stamp")
    (cache.root / "simple-v0").mkdir()
    (cache.root / "simple-v0" / "old.json").write_text("{}")
    stale = cache.root / WHEELS / ".tmp-deadbeef.whl"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh_tmp = cache.root / WHEELS / ".tmp-inuse.whl"
    fresh_tmp.write_bytes(b"in use")
    removal = prune(cache, now=time.time() + 7200)
    assert removal.files >= 3
    assert not orphan.exists() and not (cache.root / "simple-v0").exists()
    assert not stale.exists()
    assert (stamps / ("0" * 64)).read_bytes() == b"stamp"
    assert archives["alpha"].is_dir() and archives["beta"].is_dir()
    # Through the CLI: a young temp file (maybe a running kea's) is left alone.
    fresh_tmp.touch()
    out = kea("cache", "prune", "--cache-dir", str(cache.root))
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        f"Pruning cache at: {cache.root}",
        "No unused entries found",
    ]
    assert fresh_tmp.exists()


def test_clean_packages_finds_archives_without_pointers(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    wheel = build_wheel(tmp_path, "gamma_pkg", "2.0")
    archive = asyncio.run(cache.unpack_local_wheel(wheel))
    assert archive.name == sha256_of(wheel)
    for p in (cache.root / WHEELS).rglob("*.msgpack"):
        p.unlink()
    result = clean_packages(cache, ["Gamma.Pkg"])
    assert result["gamma-pkg"].files >= 4
    assert not archive.exists()
    assert [p.name for p in (cache.root / ARCHIVE).iterdir()] == []


def test_format_size() -> None:
    assert format_size(12) == "12B"
    assert format_size(2048) == "2.0KiB"
    assert format_size(5 * 1024 * 1024 + 1) == "5.0MiB"
