"""IndexClient against third-party servers: simpleindex (the seed's router) in front of
pypiserver (TLS, htpasswd), credentials from a netrc. Parses their real HTML, follows the 302,
reads metadata by range from pypiserver and by a full GET from simpleindex (which ignores Range).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kea.cache import ARCHIVE, Cache
from kea.http.client import HttpClient
from kea.index.client import IndexClient
from kea.settings import Settings, load_settings
from tests.cache.wheelmaker import build_wheel, sha256_of
from tests.e2e.servers.pypi import PypiServer
from tests.e2e.servers.router import SimpleIndexRouter
from tests.e2e.servers.tls import Tls, make_tls
from tests.e2e.servers.web import ServerLoop

pytestmark = pytest.mark.e2e

PASSWORD = "pw-idx-" + hashlib.sha256(b"kea-index-tests").hexdigest()[:12]


@dataclass
class Seed:
    root: Path
    tls: Tls
    pypi: PypiServer
    router: SimpleIndexRouter
    priv: Path
    local: Path


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    root = tmp_path_factory.mktemp("index-real")
    tls = make_tls(root / "tls")
    upstream = root / "upstream"
    build_wheel(upstream, "priv-pkg", "0.9")
    priv = build_wheel(upstream, "priv-pkg", "1.0", requires=("dep-pkg",), padding=200_000)
    local_dir = root / "router-local" / "local-pkg"
    local = build_wheel(local_dir, "local-pkg", "2.0", requires=("priv-pkg>=1",))
    loop = ServerLoop()
    pypi = PypiServer(
        root / "pypi", "127.0.0.2", tls=tls, users={"alice": PASSWORD}, packages=upstream
    )
    try:
        router = SimpleIndexRouter(
            root / "router",
            "127.0.0.1",
            loop=loop,
            upstream=pypi.url,
            local_project="local-pkg",
            local_dir=local_dir,
        )
    except BaseException:
        pypi.stop()
        loop.stop()
        raise
    try:
        yield Seed(root, tls, pypi, router, priv, local)
    finally:
        router.stop()
        pypi.stop()
        loop.stop()


def settings_for(seed: Seed, tmp_path: Path) -> Settings:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.2 login alice password {PASSWORD}\n")
    netrc.chmod(0o600)
    env = {
        "HOME": str(tmp_path),
        "NETRC": str(netrc),
        "SSL_CERT_FILE": str(seed.tls.ca_pem),
        "KEA_HTTP_RETRIES": "0",
    }
    return load_settings(
        cli={"default_index": seed.router.url, "no_config": True}, env=env, cwd=tmp_path
    )


def test_router_local_route_page_metadata_and_wheel(seed: Seed, tmp_path: Path) -> None:
    settings = settings_for(seed, tmp_path)
    cache = Cache(tmp_path / "cache")
    front = seed.router.front
    before = len(front.seen_all)

    async def main() -> None:
        async with HttpClient(settings) as http:
            client = IndexClient(settings, http, cache)
            (page,) = await client.project_pages("local-pkg")
            (f,) = page.files
            assert f.url == f"{seed.router.url}/local-pkg/{seed.local.name}"
            assert f.hashes == {}  # simpleindex lists no hashes
            meta = await client.metadata("local-pkg", f)
            assert meta.requires_dist == ("priv-pkg>=1",)
            archive = await client.fetch_wheel(f)
            assert archive == cache.root / ARCHIVE / sha256_of(seed.local)

    asyncio.run(main())
    seen = front.seen_all[before:]
    wheel_gets = [s for s in seen if s.path.endswith(".whl")]
    # simpleindex ignores Range and sends the whole wheel: kea keeps it, so one GET in all.
    assert [s.method for s in wheel_gets] == ["GET"]
    assert all(s.method == "GET" for s in seen)


def test_router_302_to_protected_pypiserver(seed: Seed, tmp_path: Path) -> None:
    settings = settings_for(seed, tmp_path)
    cache = Cache(tmp_path / "cache")
    mark = seed.pypi.mark()

    async def main() -> None:
        async with HttpClient(settings) as http:
            client = IndexClient(settings, http, cache)
            (page,) = await client.project_pages("priv-pkg")
            assert page.url == f"{seed.pypi.url}/simple/priv-pkg/"
            files = {f.filename: f for f in page.files}
            f = files[seed.priv.name]
            assert f.url == f"{seed.pypi.url}/packages/{seed.priv.name}"
            assert f.hashes == {"sha256": sha256_of(seed.priv)}
            meta = await client.metadata("priv-pkg", f)
            assert meta.version == "1.0" and meta.requires_dist == ("dep-pkg",)
            archive = await client.fetch_wheel(f)
            assert (archive / "priv_pkg" / "__init__.py").is_file()

    asyncio.run(main())
    seen = seed.pypi.seen(mark)
    assert "HEAD" not in {s.method for s in seen}
    wheel = [s for s in seen if s.path.endswith(".whl")]
    # Range reads (206) for the metadata, then exactly one full download (200) to install.
    assert [s.status for s in wheel if s.status == 200] == [200]
    assert any(s.status == 206 for s in wheel)
    # Every request that got an answer carried alice's credentials from the netrc.
    assert all(s.user == "alice" for s in seen if s.status in (200, 206))
