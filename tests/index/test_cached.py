"""``CachedIndex``: which project pages the cache alone answers, per index strategy, freshness,
``--offline`` and ``--refresh-package``; None wherever ``IndexClient`` would have to ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kea.cache import Cache
from kea.index.cached import CachedIndex
from kea.index.models import DistFile, ProjectPage
from kea.index.pagecache import save_page
from kea.settings import Settings, load_settings

A = "https://a.example/simple"
B = "https://b.example/simple"
FRESH = {"Cache-Control": "max-age=600"}


def settings(tmp_path: Path, **cli: Any) -> Settings:
    cli = {"no_config": True, "default_index": B, "index": (A,), **cli}
    return load_settings(cli=cli, env={"HOME": str(tmp_path / "home")})


def page(index: str, name: str = "demo") -> ProjectPage:
    f = DistFile(filename=f"{name}-1.0-py3-none-any.whl", url=f"{index}/f.whl", hashes={})
    return ProjectPage(name=name, url=f"{index}/{name}/", files=[f])


def urls(pages: list[ProjectPage] | None) -> list[str] | None:
    return None if pages is None else [p.url for p in pages]


def test_first_index_moves_past_a_remembered_404(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    save_page(cache, A, "demo", ProjectPage(name="demo", url=f"{A}/demo/"), FRESH, missing=True)
    save_page(cache, B, "demo", page(B), FRESH)
    s = settings(tmp_path)
    assert [i.url for i in CachedIndex(s, cache, offline=False).indexes] == [A, B]
    assert urls(CachedIndex(s, cache, offline=False).answer_pages("Demo")) == [f"{B}/demo/"]
    best = settings(tmp_path, index_strategy="unsafe-best-match")
    assert urls(CachedIndex(best, cache, offline=False).answer_pages("demo")) == [f"{B}/demo/"]


def test_an_index_not_in_the_cache_leaves_it_to_the_network(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    save_page(cache, A, "demo", page(A), FRESH)
    # first-index stops at A; every other strategy would also ask B, which is not cached
    assert urls(CachedIndex(settings(tmp_path), cache, offline=False).answer_pages("demo")) == [
        f"{A}/demo/"
    ]
    best = settings(tmp_path, index_strategy="unsafe-best-match")
    assert CachedIndex(best, cache, offline=False).answer_pages("demo") is None
    assert CachedIndex(settings(tmp_path), cache, offline=False).answer_pages("other") is None


def test_stale_pages_only_offline_and_refresh_never_online(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    save_page(cache, A, "demo", page(A), {})  # no max-age: stale at once
    save_page(cache, A, "fresh", page(A, "fresh"), FRESH)
    s = settings(tmp_path)
    assert CachedIndex(s, cache, offline=False).answer_pages("demo") is None
    assert urls(CachedIndex(s, cache, offline=True).answer_pages("demo")) == [f"{A}/demo/"]
    refreshing = CachedIndex(s, cache, offline=False, refresh_packages=["Fresh"])
    assert refreshing.answer_pages("fresh") is None
    assert CachedIndex(s, cache, offline=False, refresh=True).answer_pages("fresh") is None
    assert urls(CachedIndex(s, cache, offline=False).answer_pages("fresh")) == [f"{A}/fresh/"]


def test_find_links_and_local_indexes_are_not_answered(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    save_page(cache, A, "demo", page(A), FRESH)
    links = settings(tmp_path, find_links=(str(tmp_path),))
    assert CachedIndex(links, cache, offline=False).answer_pages("demo") is None
    local = settings(tmp_path, index=(), default_index=str(tmp_path / "index"))
    assert CachedIndex(local, cache, offline=False).answer_pages("demo") is None


def test_files_known_by_url_alone_are_not_answered_under_refresh(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    s = settings(tmp_path)
    by_url = DistFile(filename="demo-1.0-py3-none-any.whl", url=f"{A}/f.whl", hashes={})
    by_hash = DistFile(filename="demo-1.0-py3-none-any.whl", url=f"{A}/f.whl",
                       hashes={"sha256": "0" * 64})  # fmt: skip
    plain = CachedIndex(s, cache, offline=False)
    refreshing = CachedIndex(s, cache, offline=False, refresh_packages=["demo"])
    assert not plain.url_keyed_stale(by_url)
    assert refreshing.url_keyed_stale(by_url) and not refreshing.url_keyed_stale(by_hash)
    assert refreshing.answer_archive(by_url) is None
    assert refreshing.answer_metadata(by_url) is None


def test_a_page_whose_links_carry_credentials_is_its_owners_only(tmp_path: Path) -> None:
    import os

    from kea.index.pagecache import page_rel, touch_page

    cache = Cache(tmp_path / "cache")
    links = {
        "plain": "https://files.example/f.whl",
        "userinfo": "https://dl-user:dl-s3cret@files.example/f.whl",
        "signed": "https://files.example/f.whl?X-Amz-Signature=s1gned&X-Amz-Credential=c",
    }
    old = os.umask(0o022)
    try:
        for name, url in links.items():
            f = DistFile(filename=f"{name}-1.0-py3-none-any.whl", url=url, hashes={})
            entry = save_page(
                cache, A, name, ProjectPage(name=name, url=f"{A}/{name}/", files=[f]), FRESH
            )
            path = cache.root / "simple-v1" / page_rel(A, name)
            mode = path.stat().st_mode & 0o777
            assert mode == (0o644 if name == "plain" else 0o600), (name, oct(mode))
            assert entry is not None
            touch_page(cache, A, entry, FRESH)  # a 304 writes it again: still private
            assert path.stat().st_mode & 0o777 == mode
    finally:
        os.umask(old)
