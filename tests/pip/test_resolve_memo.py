"""The resolution memo (``kea.resolver.provider_memo``): a warm resolve is answered by an earlier
one only while everything that answer depended on is unchanged. The cache is filled by a real
resolve from a loopback index; every check then reads that cache."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from kea.cache import RESOLVED, Cache
from kea.index.cached import CachedIndex
from kea.index.pagecache import load_page, save_page
from kea.resolver.provider import ResolveInput, resolve_from_cache, resolve_request
from kea.resolver.provider_memo import KEEP, MOST, Memo, _Answer
from kea.settings import load_settings
from tests.pip.server import SimpleIndex
from tests.pip.test_provider import MARKERS, TAGS
from tests.pip.wheelmaker import build_wheel


class _Target:
    tags = TAGS
    markers = MARKERS
    python_full_version = "3.11.7"


class Warm:
    """A cache filled from a loopback index serving app 1.0 -> lib, lib 1.0 and 2.0."""

    def __init__(self, tmp_path: Path, index: SimpleIndex) -> None:
        self.index = index
        self.settings = load_settings(
            cli={"default_index": index.url, "no_config": True},
            env={"HOME": str(tmp_path), "KEA_HTTP_RETRIES": "0"},
            cwd=tmp_path,
        )
        self.cache = Cache(tmp_path / "cache")

    def spec(self, *requirements: str, **kw: Any) -> ResolveInput:
        return ResolveInput(requirements=[Requirement(r) for r in requirements], **kw)

    def fill(self, *requirements: str) -> None:
        from kea.http.client import HttpClient
        from kea.index.client import IndexClient

        async def main() -> None:
            async with HttpClient(self.settings) as http:
                client = IndexClient(self.settings, http, self.cache)
                await resolve_request(self.spec(*requirements), client, _Target())

        asyncio.run(main())

    def lookup(self, *, offline: bool = False, **kw: Any) -> CachedIndex:
        return CachedIndex(self.settings, self.cache, offline=offline, **kw)

    def resolve(self, *requirements: str, lookup: CachedIndex | None = None) -> dict[str, str]:
        got = resolve_from_cache(self.spec(*requirements), lookup or self.lookup(), _Target())
        assert got is not None
        return {c.name: str(c.version) for c in got}

    def name(self, *requirements: str, offline: bool = False) -> str:
        lookup = self.lookup(offline=offline)
        memo = Memo.for_run(self.spec(*(requirements or ("app",))), lookup, _Target())
        assert memo is not None
        return memo.name

    def memo(self, *requirements: str, offline: bool = False) -> _Answer | None:
        name = self.name(*requirements, offline=offline)
        return self.cache.read_record(RESOLVED, name, _Answer)


@pytest.fixture
def warm(tmp_path: Path) -> Any:
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "app", "1.0", requires=["lib>=1"])
    build_wheel(wheels, "lib", "1.0")
    build_wheel(wheels, "lib", "2.0")
    with SimpleIndex(wheels) as index:
        index.page_headers = {"Cache-Control": "max-age=600"}
        w = Warm(tmp_path, index)
        w.fill("app")
        w.fill("lib<2")  # lib 1.0's metadata too
        yield w


def test_the_same_resolve_again_is_answered_by_the_memo(warm: Warm) -> None:
    assert warm.resolve("app") == {"app": "1.0", "lib": "2.0"}
    kept = warm.memo()
    assert kept is not None and len(kept.records) == 4  # two pages, two metadata records
    again = warm.lookup()
    assert warm.resolve("app", lookup=again) == {"app": "1.0", "lib": "2.0"}
    assert again.seen is None  # nothing was read, nothing watched: the memo answered


def test_a_page_stored_again_is_read_again(warm: Warm) -> None:
    assert warm.resolve("app") == {"app": "1.0", "lib": "2.0"}
    # lib's page is stored again, fresh, without 2.0 (as a new fetch would store it): the
    # memo's answer no longer holds, and the resolve reads the page.
    entry = load_page(warm.cache, warm.index.url, "lib")
    assert entry is not None
    files = [f for f in entry.page.files if not f.filename.startswith("lib-2.0")]
    page = type(entry.page)(name=entry.page.name, url=entry.page.url, files=files)
    save_page(warm.cache, warm.index.url, "lib", page, {"Cache-Control": "max-age=600"})
    again = warm.lookup()
    assert warm.resolve("app", lookup=again) == {"app": "1.0", "lib": "1.0"}
    assert again.seen is not None


def test_another_request_is_resolved_and_kept_beside(warm: Warm) -> None:
    assert warm.resolve("app") == {"app": "1.0", "lib": "2.0"}
    assert warm.resolve("app", "lib<2") == {"app": "1.0", "lib": "1.0"}
    # each answer is kept under its own request: both are answered by the memo now
    for reqs, lib in ((("app",), "2.0"), (("app", "lib<2"), "1.0")):
        again = warm.lookup()
        assert warm.resolve(*reqs, lookup=again) == {"app": "1.0", "lib": lib}
        assert again.seen is None
        kept = warm.memo(*reqs)
        assert kept is not None and [c[:2] for c in kept.chosen] == [("app", "1.0"), ("lib", lib)]


def test_the_memo_keeps_a_bounded_number_of_answers(warm: Warm) -> None:
    # Requests that differ only in an installed package they do not use: each its own answer.
    for i in range(MOST + 1):
        spec = ResolveInput(requirements=[Requirement("app")], installed={"other": f"{i}.0"})
        assert resolve_from_cache(spec, warm.lookup(), _Target()) is not None
    kept = list(warm.cache.bucket(RESOLVED).iterdir())
    assert len(kept) == KEEP


def test_a_changed_module_file_is_a_miss(warm: Warm) -> None:
    assert warm.resolve("app") == {"app": "1.0", "lib": "2.0"}
    kept = warm.memo()
    assert kept is not None and kept.code
    # As an upgrade (or an edit) of one of the modules that answered would leave it.
    (path, ident), *rest = kept.code
    changed = _Answer(
        key=kept.key,
        code=[(path, (ident[0] + 1, *ident[1:])), *rest],
        records=kept.records,
        fresh_until=kept.fresh_until,
        chosen=kept.chosen,
    )
    warm.cache.write_record(RESOLVED, warm.name(), changed)
    again = warm.lookup()
    assert warm.resolve("app", lookup=again) == {"app": "1.0", "lib": "2.0"}
    assert again.seen is not None  # resolved again


def test_the_memo_ends_when_a_page_it_used_goes_stale(warm: Warm) -> None:
    assert warm.resolve("app") == {"app": "1.0", "lib": "2.0"}
    kept = warm.memo()
    assert kept is not None and kept.fresh_until is not None
    # the pages were fetched just now with max-age=600: the answer holds for ~600 s
    entry = load_page(warm.cache, warm.index.url, "app")
    assert entry is not None
    assert kept.fresh_until == pytest.approx(entry.fetched_at + 600, abs=5)
    stale = _Answer(
        key=kept.key, code=kept.code, records=kept.records, fresh_until=0.0, chosen=kept.chosen
    )
    warm.cache.write_record(RESOLVED, warm.name(), stale)
    again = warm.lookup()
    assert warm.resolve("app", lookup=again) == {"app": "1.0", "lib": "2.0"}
    assert again.seen is not None


def test_no_memo_for_a_refresh_find_links_or_a_direct_reference(warm: Warm, tmp_path: Path) -> None:
    assert Memo.for_run(warm.spec("app"), warm.lookup(), _Target()) is not None
    assert Memo.for_run(warm.spec("app"), warm.lookup(refresh=True), _Target()) is None
    assert Memo.for_run(warm.spec("app"), warm.lookup(refresh_packages=["lib"]), _Target()) is None
    local = build_wheel(tmp_path / "local", "app", "1.0", requires=["lib>=1"])
    direct = warm.spec(f"app @ {local.as_uri()}")
    assert Memo.for_run(direct, warm.lookup(), _Target()) is None
    settings = load_settings(
        cli={"default_index": warm.index.url, "find_links": [str(tmp_path / "local")],
             "no_config": True},
        env={"HOME": str(tmp_path)},
        cwd=tmp_path,
    )  # fmt: skip
    links = CachedIndex(settings, warm.cache, offline=False)
    assert Memo.for_run(warm.spec("app"), links, _Target()) is None
    # and a refreshed resolve, which the cache alone cannot answer, leaves none behind
    assert resolve_from_cache(warm.spec("app"), warm.lookup(refresh=True), _Target()) is None
    assert warm.memo() is None


def test_offline_answers_are_kept_without_a_time_limit(warm: Warm) -> None:
    first = warm.lookup(offline=True)
    assert warm.resolve("app", lookup=first) == {"app": "1.0", "lib": "2.0"}
    kept = warm.memo(offline=True)
    assert kept is not None and kept.fresh_until is None
    again = warm.lookup(offline=True)
    assert warm.resolve("app", lookup=again) == {"app": "1.0", "lib": "2.0"}
    assert again.seen is None
    # the same request online is another request: its pages must be fresh
    online = warm.lookup()
    assert warm.resolve("app", lookup=online) == {"app": "1.0", "lib": "2.0"}
    assert online.seen is not None


def test_every_field_of_the_request_is_in_the_key(warm: Warm) -> None:
    from datetime import UTC, datetime

    other: dict[str, Any] = {
        "requirements": [Requirement("app>=1")],
        "constraints": [Requirement("lib<3")],
        "overrides": [Requirement("lib==1.0")],
        "hashes": {"app": frozenset({"sha256:" + "0" * 64})},
        "installed": {"lib": "1.0"},
        "upgrade": True,
        "upgrade_packages": frozenset({"lib"}),
        "no_deps": True,
        "prerelease": "allow",
        "resolution": "lowest",
        "exclude_newer": datetime(2026, 1, 1, tzinfo=UTC),
        "only_binary": [":all:"],
        "no_binary": ["lib"],
        "index_strategy": "unsafe-best-match",
    }
    fields = set(ResolveInput.__struct_fields__) - {"fetch_early"}
    assert set(other) == fields  # a new field needs a value here, and a place in the key

    def key(spec: ResolveInput) -> str:
        memo = Memo.for_run(spec, warm.lookup(), _Target())
        assert memo is not None
        return memo.key

    base = key(warm.spec("app"))
    assert key(warm.spec("app", fetch_early=True)) == base
    for name, value in other.items():
        kw = {"requirements": value} if name == "requirements" else {name: value}
        spec = ResolveInput(**{"requirements": [Requirement("app")], **kw})
        assert key(spec) != base, name


@pytest.mark.e2e
def test_the_memo_through_kea_pip_install(
    kea: Any, small_index: SimpleIndex, tmp_path: Path
) -> None:
    """The same ``kea pip install --dry-run`` again is answered by the memo; once the pages it
    used went stale, the next one asks the index, and sees what the index has now."""
    import re
    import time

    small_index.page_headers = {"Cache-Control": "max-age=10"}  # three runs fit in it
    build_wheel(small_index.directory, "app", "1.0", requires=["lib"])
    build_wheel(small_index.directory, "lib", "1.0")
    small_index.scan()
    venv = kea.venv(tmp_path / "v")
    args = ("pip", "install", "--dry-run", "-v", "-i", small_index.url, "app")
    fetched = time.time()
    runs = [kea(*args, venv=venv) for _ in range(3)]  # network, cache alone, memo
    assert [r.returncode for r in runs] == [0, 0, 0], runs[-1].stderr
    assert [("from the memo" in r.stderr) for r in runs] == [False, False, True]
    assert all(" + lib==1.0" in r.lines for r in runs)

    def said(r: Any) -> list[str]:  # what a user sees, the elapsed times left out
        return [re.sub(r" in \S+$", "", x) for x in r.lines if not x.startswith("DEBUG")]

    assert said(runs[2]) == said(runs[1])

    build_wheel(small_index.directory, "lib", "2.0")
    small_index.scan()
    time.sleep(max(0.0, fetched + 10.5 - time.time()))  # every page is stale now
    later = kea(*args, venv=venv)
    assert later.returncode == 0, later.stderr
    assert "from the memo" not in later.stderr
    assert " + lib==2.0" in later.lines
