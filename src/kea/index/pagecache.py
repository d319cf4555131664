"""Index pages and core metadata in the cache, with HTTP validators for revalidation.

A page is stored with its ``ETag``, ``Last-Modified`` and ``Cache-Control`` and the time it was
fetched. ``max-age`` makes it fresh (used without any request); a stale page is revalidated with
``If-None-Match`` / ``If-Modified-Since``; ``no-store`` pages are never written. Metadata of a
distribution file never changes, so it is stored without validators.
"""

import time
from collections.abc import Mapping

import msgspec

from kea.auth.redact import holds_secret
from kea.cache import METADATA, SIMPLE, Cache, url_key
from kea.dist.metadata import CoreMetadata
from kea.filestamp import Identity
from kea.index.cache_control import cache_control
from kea.index.models import DistFile, ProjectPage, normalize_name
from kea.index.page import header


class CachedPage(msgspec.Struct, omit_defaults=True):
    page: ProjectPage
    fetched_at: float
    etag: str | None = None
    last_modified: str | None = None
    cache_control: str | None = None
    age: int = 0
    missing: bool = False  # a cached 404: the index does not have the project

    def is_fresh(self, now: float | None = None) -> bool:
        until = self.fresh_until()
        return until is not None and (time.time() if now is None else now) < until

    def fresh_until(self) -> float | None:
        """The time (``time.time()``) at which the page stops being fresh (its age past its
        max-age); None when it never is (no max-age, or ``no-cache``)."""
        said = cache_control(self.cache_control)
        if said.no_cache or said.max_age is None:
            return None
        return self.fetched_at - self.age + said.max_age

    def validators(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class CachedMetadata(msgspec.Struct):
    filename: str
    metadata: CoreMetadata


def max_age(value: str | None) -> int | None:
    """A private cache's max-age: ``s-maxage`` is for shared caches only."""
    return cache_control(value).max_age


def storable(value: str | None) -> bool:
    return not cache_control(value).no_store


def page_rel(index_url: str, name: str) -> str:
    return f"{url_key(index_url)}/{normalize_name(name)}.msgpack"


def load_page(
    cache: Cache, index_url: str, name: str, seen: list[tuple[str, Identity]] | None = None
) -> CachedPage | None:
    return cache.read_record(SIMPLE, page_rel(index_url, name), CachedPage, seen)


def save_page(
    cache: Cache,
    index_url: str,
    name: str,
    page: ProjectPage,
    headers: Mapping[str, str],
    *,
    missing: bool = False,
) -> CachedPage | None:
    """Store a page (or, with ``missing``, a 404) with its validators; ``no-store`` is honoured."""
    cc = header(headers, "Cache-Control")
    entry = CachedPage(
        missing=missing,
        page=page,
        fetched_at=time.time(),
        etag=header(headers, "ETag"),
        last_modified=header(headers, "Last-Modified"),
        cache_control=cc,
        age=_int(header(headers, "Age")),
    )
    if storable(cc):
        cache.write_record(SIMPLE, page_rel(index_url, name), entry, private=_private(page))
        return entry
    cache.remove_record(SIMPLE, page_rel(index_url, name))
    return None


def touch_page(cache: Cache, index_url: str, entry: CachedPage, headers: Mapping[str, str]) -> None:
    """After a 304: the stored page is good for another ``max-age``."""
    entry.fetched_at = time.time()
    entry.age = _int(header(headers, "Age"))
    entry.cache_control = header(headers, "Cache-Control") or entry.cache_control
    entry.etag = header(headers, "ETag") or entry.etag
    entry.last_modified = header(headers, "Last-Modified") or entry.last_modified
    cache.write_record(
        SIMPLE, page_rel(index_url, entry.page.name), entry, private=_private(entry.page)
    )


def _private(page: ProjectPage) -> bool:
    """A page whose links carry credentials (userinfo, a signed query) is its owner's only."""
    return any(holds_secret(f.url) for f in page.files)


def metadata_rel(file: DistFile) -> str:
    sha = file.hashes.get("sha256")
    key = sha[:32] if sha else url_key(file.url)
    project = normalize_name(file.filename.split("-", 1)[0])
    return f"{project}/{file.filename}-{key}.msgpack"


def load_metadata(
    cache: Cache, file: DistFile, seen: list[tuple[str, Identity]] | None = None
) -> CoreMetadata | None:
    entry = cache.read_record(METADATA, metadata_rel(file), CachedMetadata, seen)
    return entry.metadata if entry is not None else None


def save_metadata(cache: Cache, file: DistFile, metadata: CoreMetadata) -> None:
    cache.write_record(METADATA, metadata_rel(file), CachedMetadata(file.filename, metadata))


def _int(value: str | None) -> int:
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0
