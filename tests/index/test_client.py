"""IndexClient against real aiohttp.web servers on loopback, through the real HttpClient."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kea.cache import ARCHIVE, Cache
from kea.errors import KeaError
from kea.http.client import HttpClient
from kea.http.errors import AuthError
from kea.index.client import IndexClient, OfflineMiss
from kea.index.models import DistFile
from kea.settings import Settings, load_settings
from tests.cache.wheelmaker import build_wheel, sha256_of
from tests.index.server import IndexServer


def make_settings(
    tmp_path: Path,
    indexes: Sequence[str] = (),
    *,
    strategy: str = "first-index",
    find_links: Sequence[str] = (),
    no_index: bool = False,
    offline: bool = False,
) -> Settings:
    cli: dict[str, Any] = {"no_config": True, "index_strategy": strategy}
    if indexes:
        cli["index"] = list(indexes[:-1])
        cli["default_index"] = indexes[-1]
    cli["find_links"] = list(find_links)
    cli["no_index"] = no_index
    cli["offline"] = offline
    env = {"HOME": str(tmp_path / "home"), "KEA_HTTP_RETRIES": "0"}
    return load_settings(cli=cli, env=env, cwd=tmp_path)


@asynccontextmanager
async def index_client(
    settings: Settings, cache: Cache, **kwargs: Any
) -> AsyncIterator[IndexClient]:
    if settings.offline:
        yield IndexClient(settings, None, cache, **kwargs)
        return
    async with HttpClient(settings) as http:
        yield IndexClient(settings, http, cache, **kwargs)


@pytest.fixture
def wheels(tmp_path: Path) -> list[Path]:
    d = tmp_path / "wheels"
    d.mkdir()
    return [
        build_wheel(d, "demo", "1.0", requires=("dep>=1",)),
        build_wheel(d, "demo", "2.0", requires=("dep>=2", "extra; extra == 'x'"), padding=300_000),
        build_wheel(d, "dep", "2.0"),
    ]


def by_name(page_files: Sequence[DistFile], filename: str) -> DistFile:
    return next(f for f in page_files if f.filename == filename)


# -- metadata ------------------------------------------------------------------------------


def test_pep658_metadata_file_is_used_and_cached(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels) as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                (page,) = await client.project_pages("Demo")
                f = by_name(page.files, "demo-1.0-py3-none-any.whl")
                assert f.core_metadata and f.hashes["sha256"] == sha256_of(wheels[0])
                meta = await client.metadata("demo", f)
            assert meta.version == "1.0" and meta.requires_dist == ("dep>=1",)
            assert srv.paths() == ["/simple/demo/", "/files/demo-1.0-py3-none-any.whl.metadata"]
            srv.seen.clear()
            # A new run: the metadata comes from the cache, no request at all for it.
            async with index_client(settings, cache) as client:
                assert (await client.metadata("demo", f)).version == "1.0"
            assert srv.seen == []

    asyncio.run(main())


def test_range_read_when_there_is_no_metadata_file(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels, metadata=False) as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                (page,) = await client.project_pages("demo")
                big = by_name(page.files, "demo-2.0-py3-none-any.whl")
                assert big.core_metadata is False
                meta = await client.metadata("demo", big)
        assert meta.version == "2.0"
        assert meta.requires_dist == ("dep>=2", "extra; extra == 'x'")
        file_requests = [s for s in srv.seen if s.path.startswith("/files/")]
        assert "HEAD" not in srv.methods()
        assert file_requests and all(s.method == "GET" for s in file_requests)
        assert all("Range" in s.headers for s in file_requests)
        assert all(s.status == 206 for s in file_requests)
        assert file_requests[0].headers["Range"].startswith("bytes=-")
        # Only a small part of the (300 KB+) wheel crossed the wire.
        assert sum(s.sent for s in file_requests) < wheels[1].stat().st_size // 3

    asyncio.run(main())


def test_server_without_ranges_sends_the_wheel_once(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels, metadata=False, ranges=False) as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                (page,) = await client.project_pages("demo")
                f = by_name(page.files, "demo-2.0-py3-none-any.whl")
                meta = await client.metadata("demo", f)
                archive = await client.fetch_wheel(f)
        assert meta.version == "2.0"
        # The full body the server sent to the range request was verified and kept.
        assert archive == cache.root / ARCHIVE / sha256_of(wheels[1])
        assert srv.paths().count("/files/demo-2.0-py3-none-any.whl") == 1

    asyncio.run(main())


def test_metadata_file_with_wrong_hash_is_an_error(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels) as srv:
            srv.canned["/files/dep-2.0-py3-none-any.whl.metadata"] = (200, {}, b"Name: evil\n")
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                (page,) = await client.project_pages("dep")
                with pytest.raises(KeaError, match="hash mismatch"):
                    await client.metadata("dep", page.files[0])

    asyncio.run(main())


# -- wheels ------------------------------------------------------------------------------------


def test_fetch_wheel_downloads_once_and_verifies(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels) as srv:
            srv.wrong_hash.add("dep-2.0-py3-none-any.whl")
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                (page,) = await client.project_pages("demo")
                f = by_name(page.files, "demo-1.0-py3-none-any.whl")
                a1, a2 = await asyncio.gather(client.fetch_wheel(f), client.fetch_wheel(f))
                assert a1 == a2 and (a1 / "demo" / "__init__.py").is_file()
                # start_wheel says when a download's bytes are in: once, before it unpacks.
                told: list[bool] = []
                f2 = by_name(page.files, "demo-2.0-py3-none-any.whl")
                task = client.start_wheel(f2, lambda: told.append(task.done()))
                assert (await task / "demo" / "__init__.py").is_file() and told == [False]
                (dep_page,) = await client.project_pages("dep")
                with pytest.raises(KeaError, match=r"hash mismatch for dep-2\.0"):
                    await client.fetch_wheel(dep_page.files[0])
            assert srv.paths().count("/files/demo-1.0-py3-none-any.whl") == 1
            assert sorted(
                p.name for p in (cache.root / ARCHIVE).iterdir() if p.name != ".locks"
            ) == sorted([sha256_of(wheels[0]), sha256_of(wheels[1])])
            # Metadata of a wheel already in the cache is read from its archive.
            srv.seen.clear()
            async with index_client(settings, cache) as client:
                assert (await client.metadata("demo", f)).version == "1.0"
                # Nor is a cached wheel downloaded: start_wheel has nothing to tell.
                again: list[bool] = []
                assert await client.start_wheel(f, lambda: again.append(True)) == a1
                assert again == []
            assert srv.seen == []

    asyncio.run(main())


# -- strategies ----------------------------------------------------------------------------


def test_first_index_404_moves_on_and_the_first_hit_wins(
    tmp_path: Path, wheels: list[Path]
) -> None:
    async def main() -> None:
        async with IndexServer([wheels[2]]) as a, IndexServer(wheels[:2]) as b:
            settings = make_settings(tmp_path, [a.url + "/simple", b.url + "/simple"])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                demo = await client.project_pages("demo")
                dep = await client.project_pages("dep")
                missing = await client.project_pages("nothing-here")
        assert [p.url for p in demo] == [b.url + "/simple/demo/"]
        assert [p.url for p in dep] == [a.url + "/simple/dep/"]
        assert missing == []
        assert a.paths() == ["/simple/demo/", "/simple/dep/", "/simple/nothing-here/"]
        assert b.paths() == ["/simple/demo/", "/simple/nothing-here/"]  # never asked for dep

    asyncio.run(main())


def test_first_index_401_stops_the_search(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with (
            IndexServer(wheels, auth=("u", "p")) as a,
            IndexServer(wheels) as b,
        ):
            settings = make_settings(tmp_path, [a.url + "/simple", b.url + "/simple"])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                with pytest.raises(AuthError) as e:
                    await client.project_pages("demo")
        assert "needs credentials" in str(e.value) or "401" in str(e.value)
        assert b.seen == []  # the search stopped at the protected index

    asyncio.run(main())


def test_credentials_in_the_index_url_reach_the_page_and_not_the_cache(
    tmp_path: Path, wheels: list[Path]
) -> None:
    async def main() -> None:
        async with IndexServer(wheels, auth=("u", "s3cret")) as a:
            url = a.url.replace("http://", "http://u:s3cret@") + "/simple"
            settings = make_settings(tmp_path, [url])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                (page,) = await client.project_pages("demo")
                meta = await client.metadata("demo", page.files[0])
        assert meta.version == "1.0"
        assert "s3cret" not in page.url and all("s3cret" not in f.url for f in page.files)
        for path in cache.root.rglob("*"):
            if path.is_file():
                assert b"s3cret" not in path.read_bytes(), path

    asyncio.run(main())


@pytest.mark.parametrize("strategy", ["unsafe-best-match", "unsafe-first-match"])
def test_unsafe_strategies_ask_every_index(
    tmp_path: Path, wheels: list[Path], strategy: str
) -> None:
    async def main() -> None:
        async with (
            IndexServer([wheels[0]]) as a,
            IndexServer(wheels[:2], auth=("u", "p")) as locked,
            IndexServer(wheels[:2]) as b,
        ):
            settings = make_settings(
                tmp_path,
                [a.url + "/simple", locked.url + "/simple", b.url + "/simple"],
                strategy=strategy,
            )
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                pages = await client.project_pages("demo")
                assert [p.url for p in pages] == [a.url + "/simple/demo/", b.url + "/simple/demo/"]
                assert [len(p.files) for p in pages] == [1, 2]
                assert "demo" in client.auth_failures
                # Nobody else has "dep": the 401 is the only answer, so it is the error.
                with pytest.raises(AuthError):
                    await client.project_pages("dep")

    asyncio.run(main())


def test_unsafe_strategy_all_auth_failures_raise(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels, auth=("u", "p")) as locked, IndexServer([]) as empty:
            settings = make_settings(
                tmp_path,
                [locked.url + "/simple", empty.url + "/simple"],
                strategy="unsafe-best-match",
            )
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                with pytest.raises(AuthError):
                    await client.project_pages("demo")

    asyncio.run(main())


# -- negotiation, bad pages, redirects -------------------------------------------------------


def test_json_is_negotiated(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels, json_api=True) as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                (page,) = await client.project_pages("demo")
                meta = await client.metadata("demo", page.files[1])
        assert page.api_version == "1.1"
        assert page.files[0].url == srv.url + "/files/demo-1.0-py3-none-any.whl"
        assert page.files[0].size == wheels[0].stat().st_size
        assert meta.version == "2.0"
        accept = srv.seen[0].headers["Accept"]
        assert accept.startswith("application/vnd.pypi.simple.v1+json")
        assert "text/html" in accept

    asyncio.run(main())


def test_login_page_and_bad_json_are_one_line_errors(tmp_path: Path) -> None:
    login = b"<html><body><form action=/login><input type=password name=p></form></body></html>"
    bad_json = json.dumps({"meta": {"api-version": "1.0"}, "name": "x"}).encode()

    async def main() -> None:
        async with IndexServer() as srv:
            srv.canned["/simple/login/"] = (200, {"Content-Type": "text/html"}, login)
            srv.canned["/simple/badjson/"] = (
                200,
                {"Content-Type": "application/vnd.pypi.simple.v1+json"},
                bad_json,
            )
            url = srv.url.replace("http://", "http://tok:en-s3cret@") + "/simple"
            settings = make_settings(tmp_path, [url])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                with pytest.raises(KeaError) as e1:
                    await client.project_pages("login")
                with pytest.raises(KeaError) as e2:
                    await client.project_pages("badjson")
        assert f"{srv.url}/simple/login/ is not a package index page" in str(e1.value)
        assert "invalid JSON index page" in str(e2.value) and "files" in str(e2.value)
        for e in (e1, e2):
            assert "s3cret" not in str(e.value) and "\n" not in str(e.value)

    asyncio.run(main())


def test_relative_links_resolve_against_the_redirect_target(
    tmp_path: Path, wheels: list[Path]
) -> None:
    async def main() -> None:
        async with IndexServer(wheels) as srv:
            srv.canned["/simple/moved/"] = (302, {"Location": "/elsewhere/moved/"}, b"")
            srv.canned["/elsewhere/moved/"] = (
                200,
                {},  # no Content-Type at all: sniffed
                b'<a href="./moved-1.0-py3-none-any.whl">moved-1.0-py3-none-any.whl</a>',
            )
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            async with index_client(settings, Cache(tmp_path / "cache")) as client:
                (page,) = await client.project_pages("moved")
        assert page.url == srv.url + "/elsewhere/moved/"
        assert page.files[0].url == srv.url + "/elsewhere/moved/moved-1.0-py3-none-any.whl"

    asyncio.run(main())


# -- the page cache --------------------------------------------------------------------------


def test_max_age_fresh_pages_need_no_request(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels, cache_control="max-age=600") as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                first = await client.project_pages("demo")
            async with index_client(settings, cache) as client:
                second = await client.project_pages("demo")
            assert first == second
            assert srv.paths() == ["/simple/demo/"]
            # --refresh revalidates even a fresh page (ETag → 304).
            async with index_client(settings, cache, refresh=True) as client:
                assert await client.project_pages("demo") == first
            assert srv.seen[-1].status == 304
            assert srv.seen[-1].headers.get("If-None-Match")

    asyncio.run(main())


def test_fresh_404s_are_remembered_too(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with (
            IndexServer([wheels[2]], cache_control="max-age=600") as a,
            IndexServer(wheels[:2], cache_control="max-age=600") as b,
        ):
            settings = make_settings(tmp_path, [a.url + "/simple", b.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                first = await client.project_pages("demo")
            assert a.seen[0].status == 404
            async with index_client(settings, cache) as client:
                assert await client.project_pages("demo") == first
            # The warm run asked nobody: index a's 404 and index b's page were both fresh.
            assert len(a.seen) == 1 and len(b.seen) == 1
            offline = make_settings(tmp_path, [a.url + "/simple", b.url + "/simple"], offline=True)
            async with index_client(offline, cache) as client:
                assert await client.project_pages("demo") == first

    asyncio.run(main())


def test_stale_pages_are_revalidated_with_etag(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels) as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                first = await client.project_pages("demo")
            async with index_client(settings, cache) as client:
                again = await client.project_pages("demo")
            assert again == first
            assert [s.status for s in srv.seen] == [200, 304]
            assert "If-None-Match" not in srv.seen[0].headers
            assert srv.seen[1].headers["If-None-Match"].startswith('"')
            # The index changed: a new ETag, a new page.
            srv.wheels.append(build_wheel(tmp_path / "wheels", "demo", "3.0"))
            async with index_client(settings, cache) as client:
                (page,) = await client.project_pages("demo")
            assert len(page.files) == 3 and srv.seen[-1].status == 200

    asyncio.run(main())


def test_no_store_is_not_cached(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels, cache_control="no-store") as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            for _ in range(2):
                async with index_client(settings, cache) as client:
                    await client.project_pages("demo")
            assert [s.status for s in srv.seen] == [200, 200]
            assert "If-None-Match" not in srv.seen[1].headers

    asyncio.run(main())


def test_offline_uses_the_cache_only(tmp_path: Path, wheels: list[Path]) -> None:
    async def main() -> None:
        async with IndexServer(wheels) as srv:
            settings = make_settings(tmp_path, [srv.url + "/simple"])
            cache = Cache(tmp_path / "cache")
            async with index_client(settings, cache) as client:
                (page,) = await client.project_pages("demo")
                await client.metadata("demo", page.files[0])
            srv.seen.clear()
            offline = make_settings(tmp_path, [srv.url + "/simple"], offline=True)
            async with index_client(offline, cache) as client:
                assert await client.project_pages("demo") == [page]
                assert (await client.metadata("demo", page.files[0])).version == "1.0"
                with pytest.raises(OfflineMiss, match="--offline"):
                    await client.metadata("demo", page.files[1])
                with pytest.raises(OfflineMiss, match="no cached index page"):
                    await client.project_pages("dep")
                with pytest.raises(OfflineMiss):
                    await client.fetch_wheel(page.files[0])
            assert srv.seen == []

    asyncio.run(main())


# -- local sources -------------------------------------------------------------------------


def test_find_links_directory_with_no_index(tmp_path: Path, wheels: list[Path]) -> None:
    (tmp_path / "wheels" / "README.txt").write_text("not a dist")

    async def main() -> None:
        settings = make_settings(tmp_path, find_links=[str(tmp_path / "wheels")], no_index=True)
        assert settings.indexes == []
        cache = Cache(tmp_path / "cache")
        client = IndexClient(settings, None, cache)
        (demo,) = await client.project_pages("DEMO")
        assert sorted(f.filename for f in demo.files) == [w.name for w in wheels[:2]]
        f = by_name(demo.files, "demo-2.0-py3-none-any.whl")
        assert f.url.startswith("file:///")
        meta = await client.metadata("demo", f)
        assert meta.requires_dist[0] == "dep>=2"
        archive = await client.fetch_wheel(f)
        assert archive == cache.root / ARCHIVE / hashlib.sha256(wheels[1].read_bytes()).hexdigest()
        assert await client.project_pages("absent") == []

    asyncio.run(main())


def test_find_links_html_page_and_missing_location(tmp_path: Path, wheels: list[Path]) -> None:
    page = tmp_path / "links.html"
    page.write_text(
        "<html><body>"
        + "".join(f'<a href="wheels/{w.name}">{w.name}</a>' for w in wheels)
        + '<a href="https://example.invalid/docs">docs</a></body></html>'
    )

    async def main() -> None:
        settings = make_settings(tmp_path, find_links=[page.as_uri()], no_index=True)
        client = IndexClient(settings, None, Cache(tmp_path / "cache"))
        (dep,) = await client.project_pages("dep")
        assert dep.files[0].url == (tmp_path / "wheels" / wheels[2].name).as_uri()
        bad = make_settings(tmp_path, find_links=[str(tmp_path / "nope")], no_index=True)
        with pytest.raises(KeaError, match="does not exist"):
            await IndexClient(bad, None, Cache(tmp_path / "cache")).project_pages("dep")

    asyncio.run(main())


def test_file_index_nested_and_flat(tmp_path: Path, wheels: list[Path]) -> None:
    nested = tmp_path / "nested" / "simple"
    (nested / "demo").mkdir(parents=True)
    for w in wheels[:2]:
        (nested / "demo" / w.name).write_bytes(w.read_bytes())
    (nested / "dep").mkdir()
    (nested / "dep" / "index.html").write_text(
        f'<a href="../../files/{wheels[2].name}">{wheels[2].name}</a>'
    )

    async def main() -> None:
        settings = make_settings(tmp_path, [nested.as_uri()])
        client = IndexClient(settings, None, Cache(tmp_path / "cache"))
        (demo,) = await client.project_pages("demo")
        assert len(demo.files) == 2
        assert (await client.metadata("demo", demo.files[0])).version == "1.0"
        (dep,) = await client.project_pages("dep")
        assert dep.files[0].url == (tmp_path / "nested" / "files" / wheels[2].name).as_uri()
        flat = make_settings(tmp_path, [(tmp_path / "wheels").as_uri()])
        flat_client = IndexClient(flat, None, Cache(tmp_path / "cache"))
        (flat_demo,) = await flat_client.project_pages("demo")
        assert len(flat_demo.files) == 2
        assert await flat_client.project_pages("absent") == []

    asyncio.run(main())


def test_sdist_metadata_is_a_clear_error(tmp_path: Path) -> None:
    async def main() -> None:
        client = IndexClient(make_settings(tmp_path, no_index=True), None, Cache(tmp_path / "c"))
        f = DistFile(filename="pkg-1.0.tar.gz", url="https://h/pkg-1.0.tar.gz")
        with pytest.raises(KeaError, match="building from source is not supported yet"):
            await client.metadata("pkg", f)

    asyncio.run(main())


def test_offline_index_client_never_imports_the_network_stack(
    tmp_path: Path, wheels: list[Path]
) -> None:
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from kea.cache import Cache\n"
        "from kea.index.client import IndexClient\n"
        "from kea.settings import load_settings\n"
        f"s = load_settings(cli={{'no_index': True, 'find_links': [{str(wheels[0].parent)!r}],"
        " 'offline': True, 'no_config': True}, env={})\n"
        f"c = IndexClient(s, None, Cache(Path({str(tmp_path / 'cache')!r})))\n"
        "async def main():\n"
        "    (p,) = await c.project_pages('demo')\n"
        "    m = await c.metadata('demo', p.files[0])\n"
        "    await c.fetch_wheel(p.files[0])\n"
        "    print(m.version)\n"
        "asyncio.run(main())\n"
        "print(sorted(n for n in ('aiohttp', 'rich', 'kea.http.client') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["1.0", "[]"]
