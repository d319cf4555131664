"""``Cache-Control`` as kea's two caches read it: the installer's page cache (private) and
``kea serve``'s (shared), both through ``kea.index.cache_control``."""

import pytest

from kea.index.cache_control import CacheControl, cache_control
from kea.index.models import ProjectPage
from kea.index.pagecache import CachedPage, max_age, storable
from kea.serve.entries import freshness


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, CacheControl()),
        ("", CacheControl()),
        ("max-age=600", CacheControl(max_age=600)),
        ('Max-Age="60", S-MAXAGE=30', CacheControl(max_age=60, s_maxage=30)),
        ("public, max-age=5, no-cache", CacheControl(max_age=5, no_cache=True)),
        ('no-cache="Set-Cookie", no-store', CacheControl(no_cache=True, no_store=True)),
        # the first of two counts
        ("max-age=10, max-age=99999", CacheControl(max_age=10)),
        # not a number of seconds: stale at once
        ("max-age=abc", CacheControl(max_age=0)),
        ("max-age=-5", CacheControl(max_age=0)),
        ("max-age=", CacheControl(max_age=0)),
        # past 2^31: 2^31
        ("max-age=99999999999999999999", CacheControl(max_age=2**31)),
        # a look-alike is not the directive
        ("x-max-age=50, private", CacheControl()),
    ],
)
def test_directives(value: str | None, expected: CacheControl) -> None:
    assert cache_control(value) == expected


def test_the_page_cache_is_private_it_ignores_s_maxage() -> None:
    assert max_age("s-maxage=300") is None
    assert max_age("s-maxage=300, max-age=20") == 20
    assert storable("max-age=20") and storable(None)
    assert not storable("private, NO-STORE")

    def page(value: str | None) -> CachedPage:
        return CachedPage(
            page=ProjectPage(name="demo", url="http://127.0.0.1/simple/demo/"),
            fetched_at=1000.0,
            cache_control=value,
            age=10,
        )

    assert page("max-age=60").fresh_until() == 1050.0  # fetched 10 s old, fresh for 60
    assert page("max-age=60").is_fresh(now=1049.0)
    assert not page("max-age=60").is_fresh(now=1050.0)
    assert page("s-maxage=60").fresh_until() is None  # revalidated every time
    assert page("max-age=60, no-cache").fresh_until() is None
    assert page(None).fresh_until() is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (120, True)),  # nothing said: the configured time
        ("public", (120, True)),
        ("max-age=30", (30, True)),
        ("s-maxage=45, max-age=30", (45, True)),  # a shared cache takes s-maxage first
        ("max-age=30, s-maxage=0", (0, True)),
        ("max-age=30, no-cache", (0, True)),
        ("no-store, max-age=30", (0, False)),
        ("max-age=oops", (0, True)),
    ],
)
def test_kea_serve_is_a_shared_cache(value: str | None, expected: tuple[int, bool]) -> None:
    assert freshness(value, 120) == expected
