"""IndexClient under ``--refresh`` / ``--refresh-package`` (taken from the Settings): what the
cache keeps by a file's URL alone is asked for again; what it keeps by sha256 is not."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kea.cache import Cache
from kea.http.client import HttpClient
from kea.index.client import IndexClient
from kea.settings import Settings, load_settings
from tests.cache.wheelmaker import build_wheel
from tests.index.server import IndexServer


def settings_for(tmp_path: Path, url: str, **cli: Any) -> Settings:
    env = {"HOME": str(tmp_path / "home"), "KEA_HTTP_RETRIES": "0"}
    return load_settings(cli={"no_config": True, "default_index": url, **cli}, env=env)


async def demo_requires(settings: Settings, cache: Cache) -> tuple[tuple[str, ...], Path]:
    """Resolve-and-install's view of demo 1.0: its Requires-Dist and its unpacked archive."""
    async with HttpClient(settings) as http:
        client = IndexClient(settings, http, cache)
        (page,) = await client.project_pages("demo")
        (file,) = page.files
        meta = await client.metadata("demo", file)
        archive = await client.fetch_wheel(file)
    return meta.requires_dist, archive


@asynccontextmanager
async def warmed(tmp_path: Path, wheel: Path) -> AsyncIterator[tuple[IndexServer, Cache, str]]:
    """An index serving ``wheel`` (pages fresh for 600 s), a cache that one plain run filled,
    and the index URL; the server's record of requests starts empty."""
    async with IndexServer([wheel], cache_control="max-age=600") as srv:
        cache = Cache(tmp_path / "cache")
        url = srv.url + "/simple"
        await demo_requires(settings_for(tmp_path, url), cache)
        srv.seen.clear()
        yield srv, cache, url


def test_files_without_sha256_are_fetched_again_when_refreshed(tmp_path: Path) -> None:
    old = build_wheel(tmp_path / "old", "demo", "1.0", requires=("dep>=1",))
    new = build_wheel(tmp_path / "new", "demo", "1.0", requires=("dep>=2",))
    served = tmp_path / "served"
    served.mkdir()
    wheel = served / old.name
    shutil.copy(old, wheel)

    async def main() -> None:
        # No hashes on the page: the cache knows the file only by its URL.
        async with IndexServer([wheel], hashes=False, cache_control="max-age=600") as srv:
            cache = Cache(tmp_path / "cache")
            url = srv.url + "/simple"
            plain = settings_for(tmp_path, url)
            requires, _ = await demo_requires(plain, cache)
            assert requires == ("dep>=1",)

            shutil.copy(new, wheel)  # the index now serves other bytes under the same URL
            srv.seen.clear()
            assert (await demo_requires(plain, cache))[0] == ("dep>=1",)
            assert srv.seen == []  # the fresh page, the metadata and the wheel: all cached

            for refreshed in (
                settings_for(tmp_path, url, refresh_package=["Demo"]),
                settings_for(tmp_path, url, refresh=True),
            ):
                srv.seen.clear()
                requires, archive = await demo_requires(refreshed, cache)
                assert requires == ("dep>=2",)
                assert "dep>=2" in next(archive.glob("*.dist-info/METADATA")).read_text()
                asked = srv.paths()
                assert asked[0] == "/simple/demo/"
                assert f"/files/{wheel.name}.metadata" in asked
                assert f"/files/{wheel.name}" in asked

            # Another project's refresh leaves demo's cache alone.
            srv.seen.clear()
            other = settings_for(tmp_path, url, refresh_package=["dep"])
            assert (await demo_requires(other, cache))[0] == ("dep>=2",)
            assert srv.seen == []

    asyncio.run(main())


def test_files_with_sha256_are_not_fetched_again(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "demo", "1.0", requires=("dep>=1",))

    async def main() -> None:
        async with warmed(tmp_path, wheel) as (srv, cache, url):
            requires, _ = await demo_requires(settings_for(tmp_path, url, refresh=True), cache)
            assert requires == ("dep>=1",)
            # Only the page is revalidated (304): metadata and wheel are immutable per sha256.
            assert [(s.path, s.status) for s in srv.seen] == [("/simple/demo/", 304)]

    asyncio.run(main())


def test_offline_ignores_a_refresh_from_the_settings(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "demo", "1.0")

    async def main() -> None:
        async with warmed(tmp_path, wheel) as (srv, cache, url):
            env = {"HOME": str(tmp_path / "home"), "KEA_REFRESH": "1", "KEA_OFFLINE": "1"}
            offline = load_settings(cli={"no_config": True, "default_index": url}, env=env)
            assert offline.refresh and offline.offline
            client = IndexClient(offline, None, cache)
            (page,) = await client.project_pages("demo")
            assert await client.metadata("demo", page.files[0])
            assert not client.refreshed("demo")
            assert srv.seen == []

    asyncio.run(main())
