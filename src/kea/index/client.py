"""``IndexClient``: project pages across indexes and find-links, metadata, and wheel downloads.

All network traffic goes through the run's ``kea.http.client.HttpClient``; everything fetched is
kept in the ``kea.cache.Cache`` (pages with validators, metadata, unpacked wheels). Concurrent
requests for the same page, metadata or wheel share one task, so the resolver's prefetcher can
ask for dozens of things at once.

Index strategies (uv's): ``first-index`` — the first index that has the project wins; a 404 moves
on to the next index, a 401/403 stops the search with that error. ``unsafe-first-match`` and
``unsafe-best-match`` — every index is asked (concurrently) and every page returned, in index
order (the candidate selection lets an earlier page win a version); an auth failure is an error
only when no index had the project.

Metadata of a candidate: the cache; the unpacked wheel if it is cached; the wheel itself when
it is being downloaded anyway (``metadata_with_wheel``: a locked requirements file's pins); the
PEP 658/714 ``.metadata`` file (hash-verified); an HTTP range read of ``*.dist-info/METADATA``
(GET with ``Range``, never HEAD); else the whole wheel, downloaded once, hash-verified and kept
in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import kea.log
from kea.auth.redact import redact_url
from kea.cache import SIMPLE, Cache
from kea.errors import KeaError
from kea.index.cached import CachedIndex
from kea.index.findlinks import (
    file_index_page,
    is_local,
    local_path,
    parse_find_links_page,
    scan_local_find_links,
)
from kea.index.models import DistFile, ProjectPage, normalize_name
from kea.index.page import ACCEPT, header, parse_project_page, split_content_type
from kea.index.pagecache import (
    CachedPage,
    load_page,
    max_age,
    page_rel,
    save_metadata,
    save_page,
    touch_page,
)
from kea.index.wheelmeta import (
    RangeUnavailable,
    metadata_by_range,
    metadata_from_archive,
    metadata_from_zip,
)

if TYPE_CHECKING:
    from kea.dist.metadata import CoreMetadata
    from kea.http.client import HttpClient
    from kea.settings import Settings

log = kea.log.get("kea.index")
T = TypeVar("T")

PARSE_IN_THREAD = 256 * 1024  # pages larger than this are parsed off the event loop


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class OfflineMiss(KeaError):
    """Something needed the network while ``--offline`` forbids it."""


class IndexClient:
    """Pages and metadata for the resolver (``kea.resolver.provider.IndexSource``) and wheels
    for the installer.

    ``http`` may be None for a run that must not touch the network (``--offline``); then only
    the cache and local sources are used. Or ``connect`` makes the HTTP client on the first
    request that needs one (once, shared by all tasks): a run answered wholly from a fresh cache
    then never imports kea.http, aiohttp or ssl contexts. The caller closes what it made.
    """

    def __init__(
        self,
        settings: Settings,
        http: HttpClient | None,
        cache: Cache,
        *,
        refresh: bool = False,
        refresh_packages: Iterable[str] = (),
        connect: Callable[[], Awaitable[HttpClient]] | None = None,
        cached: CachedIndex | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.cache = cache
        self._connect = None if settings.offline else connect
        self.offline = settings.offline or (http is None and self._connect is None)
        # When a cached page, metadata or archive may be used (freshness, --refresh, --offline):
        # the run's CachedIndex, which may already have answered a resolve without this client.
        self.cached = cached or CachedIndex(
            settings, cache, offline=self.offline, refresh=refresh,
            refresh_packages=refresh_packages,
        )  # fmt: skip
        self.strategy = settings.index_strategy
        self.indexes = self.cached.indexes
        # name -> errors (401/403) met on some index while others answered; for hints.
        self.auth_failures: dict[str, list[KeaError]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._find_links: dict[str, dict[str, ProjectPage]] | None = None
        self._find_links_lock = asyncio.Lock()
        self._with_wheel: set[str] = set()  # URLs of wheels whose metadata comes from them
        # Called on the loop with each wheel this client unpacks and its file name, before its
        # fetch ends: the installer's layout, worked out while other wheels still download.
        # Not in a thread: each takes ~1 ms, and a cold jupyter install made ~6,700 futex
        # calls on kea's own thread as the loop and those threads took turns with the GIL
        # (~300 without); paired against it, 0.987 of the wall time and 0.975 of the user CPU.
        self.unpacked: Callable[[Path, str], None] | None = None

    # -- shared in-flight work ---------------------------------------------------------------
    async def _once(self, kind: str, key: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` once per (kind, key) for this client; later callers share the result."""
        result: T = await asyncio.shield(self._shared(kind, key, make))
        return result

    def _shared(self, kind: str, key: str, make: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """The task running ``make()`` for (kind, key), started now if it is not yet."""
        fut = self._tasks.get((kind, key))
        if fut is None:
            fut = asyncio.ensure_future(make())
            # A shared task whose askers are gone (Ctrl-C, a failure elsewhere) must not log
            # "Task exception was never retrieved" with a traceback when the session closes.
            fut.add_done_callback(_retrieve)
            self._tasks[(kind, key)] = fut
        return fut

    def _remember(self, kind: str, key: str, value: T) -> T:
        """Record an answer found without any waiting (a cache hit) as the shared result of
        (kind, key): no task is made, nothing is scheduled on the loop."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(value)
        self._tasks[(kind, key)] = fut
        return value

    # -- project pages -----------------------------------------------------------------------
    async def project_pages(self, name: str) -> list[ProjectPage]:
        """The pages listing ``name``: find-links first, then indexes per the strategy.

        ``[]`` when no source has the project. A 401/403 under ``first-index`` raises.
        """
        name = normalize_name(name)
        pages = list(await self.find_links_pages(name))
        pages += await self._index_pages(name)
        if not pages and self.offline and self.indexes:
            cached_anywhere = any(
                load_page(self.cache, i.url, name) is not None for i in self.indexes
            )
            if not cached_anywhere and not all(is_local(i.url) for i in self.indexes):
                raise OfflineMiss(
                    f"{name}: no cached index page, and network access is disabled (--offline)",
                    hint="run once without --offline to fill the cache",
                )
        return pages

    async def _index_pages(self, name: str) -> list[ProjectPage]:
        if not self.indexes:
            return []
        if self.strategy == "first-index":
            for index in self.indexes:
                page = await self.index_page(index.url, name)
                if page is not None:
                    return [page]
            return []
        results = await asyncio.gather(
            *(self.index_page(i.url, name) for i in self.indexes), return_exceptions=True
        )
        pages: list[ProjectPage] = []
        auth: list[KeaError] = []
        for result in results:
            if isinstance(result, ProjectPage):
                pages.append(result)
            elif isinstance(result, KeaError) and isinstance(result, _auth_errors()):
                auth.append(result)
            elif isinstance(result, BaseException):
                raise result
        if auth:
            if not pages:
                raise auth[0]
            self.auth_failures.setdefault(name, []).extend(auth)
            for err in auth:
                log.warning("%s: %s (other indexes answered)", name, err)
        return pages

    async def index_page(self, index_url: str, name: str) -> ProjectPage | None:
        """The page of ``name`` on one index; None when the index does not have it (404)."""
        name = normalize_name(name)
        key = f"{index_url}\0{name}"
        if ("page", key) in self._tasks or is_local(index_url):
            return await self._once("page", key, lambda: self._page(index_url, name, None))
        # A page fresh in the cache is answered right here (no task: a warm resolve asks for
        # about a hundred); anything else goes to one shared task, with the entry already read.
        entry, usable = self.cached.page(index_url, name)
        if entry is not None and usable:
            return self._remember("page", key, None if entry.missing else entry.page)
        return await self._once("page", key, lambda: self._page(index_url, name, entry))

    def refreshed(self, name: str) -> bool:
        """Whether a refresh covers the project ``name`` in this run (``CachedIndex``)."""
        return self.cached.refreshed(name)

    async def _page(
        self, index_url: str, name: str, entry: CachedPage | None
    ) -> ProjectPage | None:
        """Fetch (or revalidate ``entry``, the page as cached, which is not fresh) one page."""
        if is_local(index_url):
            return await asyncio.to_thread(file_index_page, index_url, name)
        http = await self._http()
        if http is None:
            return None
        url = index_url.rstrip("/") + "/" + name + "/"
        headers = {"Accept": ACCEPT}
        if entry is not None:
            headers.update(entry.validators())
        resp = await http.get(url, headers=headers, purpose="page")
        if resp.status == 304 and entry is not None:
            touch_page(self.cache, index_url, entry, resp.headers)
            log.debug("%s: not modified (%s)", name, redact_url(resp.url))
            return None if entry.missing else entry.page
        if resp.status in (404, 410):
            log.debug("%s: not on %s", name, redact_url(url))
            # A 404 is remembered only as long as the server says it stays fresh (max-age).
            if max_age(header(resp.headers, "Cache-Control")):
                empty = ProjectPage(name=name, url=resp.url)
                save_page(self.cache, index_url, name, empty, resp.headers, missing=True)
            elif entry is not None:
                self.cache.remove_record(SIMPLE, page_rel(index_url, name))
            return None
        resp.raise_for_status()
        if resp.status != 200:
            raise KeaError(f"{redact_url(resp.url)} answered {resp.status} for an index page")
        content_type = header(resp.headers, "Content-Type")
        if len(resp.body) > PARSE_IN_THREAD:
            page = await asyncio.to_thread(
                parse_project_page, resp.body, resp.url, content_type, name=name
            )
        else:
            page = parse_project_page(resp.body, resp.url, content_type, name=name)
        save_page(self.cache, index_url, name, page, resp.headers)
        return page

    # -- find-links --------------------------------------------------------------------------
    async def find_links_pages(self, name: str) -> list[ProjectPage]:
        """Pages of ``name`` from every ``--find-links`` source (scanned once per run)."""
        if not self.settings.find_links:
            return []
        async with self._find_links_lock:
            if self._find_links is None:
                self._find_links = {}
                for location in self.settings.find_links:
                    self._find_links[location] = await self._scan_find_links(location)
        name = normalize_name(name)
        return [src[name] for src in self._find_links.values() if name in src]

    async def _scan_find_links(self, location: str) -> dict[str, ProjectPage]:
        if is_local(location):
            return await asyncio.to_thread(scan_local_find_links, location)
        http = await self._http()
        if http is None:
            log.warning("skipping find-links page %s (--offline)", redact_url(location))
            return {}
        resp = await http.get(location, headers={"Accept": "text/html"}, purpose="page")
        resp.raise_for_status()
        _, charset = split_content_type(header(resp.headers, "Content-Type"))
        return parse_find_links_page(resp.body, resp.url, charset)

    # -- metadata ----------------------------------------------------------------------------
    async def metadata(self, name: str, file: DistFile) -> CoreMetadata:
        """Core metadata of one distribution file (see the module docstring for the order)."""
        if ("metadata", file.url) not in self._tasks:
            cached = self.cached.answer_metadata(file)
            if cached is not None:
                return self._remember("metadata", file.url, cached)
        return await self._once("metadata", file.url, lambda: self._metadata(name, file))

    async def _metadata(self, name: str, file: DistFile) -> CoreMetadata:
        """Metadata not in the cache: fetched, checked, parsed and stored."""
        from kea.dist.metadata import parse_metadata

        data = await self.metadata_bytes(file)
        meta = parse_metadata(data, source=file.filename)
        if normalize_name(meta.name) != normalize_name(name):
            raise KeaError(
                f"{file.filename}: its metadata names the project {meta.name!r}, not {name!r}",
                hint=f"the index lists a wrong file for {name}",
            )
        listed = file.version
        if listed is not None and meta.parsed_version != listed:
            # installed, it would be the metadata's version under the file's name, and every
            # later run would find the file's version missing and install it again
            raise KeaError(
                f"{file.filename}: its metadata gives the version {meta.version}, not {listed}",
                hint=f"the index lists a wrong file for {name}",
            )
        save_metadata(self.cache, file, meta)
        return meta

    async def metadata_bytes(self, file: DistFile) -> bytes:
        """The raw METADATA of a wheel (not cached by itself; ``metadata`` caches the parse)."""
        if not file.is_wheel:
            raise KeaError(
                f"{file.filename}: building from source is not supported yet",
                hint="use a wheel of this package (or --only-binary :all:)",
            )
        if is_local(file.url):
            return await asyncio.to_thread(metadata_from_zip, local_path(file.url), file.filename)
        archive = self.cached.answer_archive(file)
        if archive is not None:
            return metadata_from_archive(archive, file.filename)
        if file.url in self._with_wheel:
            try:
                archive = await self.fetch_wheel(file)
            except KeaError as e:  # the ways below; the installer meets the error again
                log.debug("%s: metadata not read from the wheel: %s", file.filename, e.message)
            else:
                return metadata_from_archive(archive, file.filename)
        http = await self._need_http(f"metadata of {file.filename}")
        if file.has_metadata_file:
            resp = await http.get(file.metadata_url, purpose="metadata")
            if resp.status == 200:
                _verify(file.metadata_url, resp.body, file.metadata_hashes)
                return resp.body
            if resp.status in (401, 403):
                resp.raise_for_status()
            log.debug("%s: .metadata answered %s; trying a range read", file.filename, resp.status)

        async def fetch(range_value: str) -> tuple[int, Mapping[str, str], bytes]:
            resp = await http.get(
                file.url,
                headers={"Range": range_value, "Accept-Encoding": "identity"},
                purpose="metadata",
            )
            if resp.status >= 400 and resp.status not in (416, 501):
                resp.raise_for_status()
            return resp.status, resp.headers, resp.body

        try:
            return await metadata_by_range(fetch, file.filename)
        except RangeUnavailable as e:
            log.debug("%s: range read not possible (%s)", file.filename, e)
            if e.body is not None:
                archive = await self.cache.store_wheel(
                    _one_chunk(e.body), file.filename, file.hashes, url=file.url
                )
                return metadata_from_archive(archive, file.filename)
        archive = await self.fetch_wheel(file)
        return metadata_from_archive(archive, file.filename)

    # -- wheels ------------------------------------------------------------------------------
    def metadata_with_wheel(self, file: DistFile) -> None:
        """Take ``file``'s metadata from the wheel, which is being downloaded anyway, rather
        than ask the index for it (``kea.resolver.provider_fetch``)."""
        if file.is_wheel:
            self._with_wheel.add(file.url)

    async def fetch_wheel(self, file: DistFile) -> Path:
        """The unpacked archive of a wheel: from the cache, or downloaded once and verified."""
        return await self._once("wheel", file.url, lambda: self._fetch_wheel(file))

    def start_wheel(
        self, file: DistFile, downloaded: Callable[[], None] | None = None
    ) -> asyncio.Future[Path]:
        """``fetch_wheel``'s shared task, started now without waiting for it (the early
        downloads of ``kea.resolver.provider_fetch``). If this starts it and the wheel is
        downloaded, ``downloaded`` is called once its bytes are all in, before unpacking."""
        return self._shared("wheel", file.url, lambda: self._fetch_wheel(file, downloaded))

    async def _fetch_wheel(
        self, file: DistFile, downloaded: Callable[[], None] | None = None
    ) -> Path:
        if not file.is_wheel:
            raise KeaError(f"{file.filename}: building from source is not supported yet")
        if is_local(file.url):
            return await self.cache.unpack_local_wheel(local_path(file.url), file.hashes)
        archive = self.cached.answer_archive(file)
        if archive is not None:
            return archive
        http = await self._need_http(file.filename)
        async with http.stream(file.url, purpose="file") as stream:
            stream.raise_for_status()
            archive = await self.cache.store_wheel(
                stream.iter_chunks(), file.filename, file.hashes, url=file.url, spooled=downloaded
            )
        if self.unpacked is not None:
            self.unpacked(archive, file.filename)
        return archive

    async def _http(self) -> HttpClient | None:
        """The run's HTTP client (made now if it is made on demand); None when offline."""
        if self.offline:
            return None
        if self.http is None and self._connect is not None:
            self.http = await self._once("http", "", self._connect)
        return self.http

    async def _need_http(self, what: str) -> HttpClient:
        http = await self._http()
        if http is None:
            raise OfflineMiss(
                f"{what} is not in the cache, and network access is disabled (--offline)",
                hint="run once without --offline to fill the cache",
            )
        return http


def _auth_errors() -> tuple[type[BaseException], ...]:
    from kea.auth.errors import CredentialsRequired
    from kea.http.errors import AuthError

    return (AuthError, CredentialsRequired)


def _verify(url: str, body: bytes, hashes: Mapping[str, str]) -> None:
    for algo, want in hashes.items():
        if algo not in hashlib.algorithms_available:
            continue
        got = hashlib.new(algo, body).hexdigest()
        if got != want.lower():
            raise KeaError(
                f"hash mismatch for {redact_url(url)}: expected {algo}:{want}, got {algo}:{got}",
                hint="the index's metadata file does not match the hash it lists",
            )


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
