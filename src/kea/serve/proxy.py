"""Proxy routes: upstream project pages and files, fetched with the upstream's credentials.

Every upstream request goes through ``kea.http.HttpClient`` (its redirect loop and per-origin
credential policy), one client per upstream, each with a private ``Settings`` that knows that
upstream alone: its credentials come from the config (``KEA_INDEX_<NAME>_USERNAME/PASSWORD`` in a
private env mapping, never the process environment), no netrc, no keyring. So an upstream's
secret goes to its own origin only, and only for its own route's pages and files: a link or a
redirect from another upstream to it is fetched with no credentials at all.

A page keeps only the files of its project, with http(s) URLs: a link named for another
project (a private one, say) is dropped, as pip drops it.

Pages are parsed (HTML or JSON), cached on disk with their validators (``ETag``,
``Last-Modified``) and freshness (``Cache-Control: max-age``, else ``page-ttl``; the records are
``kea.serve.entries``), revalidated when stale, and served stale when the upstream is down.
Files are streamed to the first client while being written to a temporary file and hashed; the
last chunk is held back until the hash is checked, so a client never receives a complete file
that failed its hash. A good body is renamed into the content-addressed store; a bad or
truncated one is dropped and the client's connection is aborted. Concurrent requests for the
same file wait for that one fetch (single flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kea.auth.redact import redact_url
from kea.errors import KeaError
from kea.serve.config import Route, ServeConfig, Upstream
from kea.serve.entries import PageEntry, Validated, freshness
from kea.serve.metrics import Metrics
from kea.serve.store import Store, cache_write_failed, is_sha256, keep_json, read_json

if TYPE_CHECKING:
    from aiohttp import web

    from kea.http.client import HttpClient
    from kea.http.response import Response

log = logging.getLogger("kea.serve")


def file_headers(route: Route) -> dict[str, str]:
    """The caching headers of a file of ``route``: a file never changes, but one that not
    everyone may read must not be kept by a shared cache (a reverse proxy would hand it to
    the next client, whoever it is)."""
    if route.public_read:
        return {"Cache-Control": "public, max-age=31536000, immutable"}
    return {"Cache-Control": "private, max-age=31536000, immutable", "Vary": "Authorization"}


class UpstreamError(Exception):
    """An answer kea serve gives instead of the upstream's: a status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Abandoned(Exception):
    """The request fetching a file was cancelled: those waiting for it fetch it themselves."""


V = TypeVar("V", bound=Validated)
T = TypeVar("T")


async def single_flight(
    flights: dict[Any, asyncio.Future[T]], key: Any, make: Callable[[], Awaitable[T]]
) -> T:
    """``make()``'s result, made once for every caller that asks for ``key`` meanwhile."""
    flight = flights.get(key)
    if flight is not None:
        return await asyncio.shield(flight)
    fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    flights[key] = fut
    try:
        result = await make()
        fut.set_result(result)
        return result
    except BaseException as e:
        fut.set_exception(e)
        fut.exception()  # retrieved: no "never retrieved" warning without waiters
        raise
    finally:
        flights.pop(key, None)


def upstream_settings(config: ServeConfig, up: Upstream, env: Mapping[str, str]) -> Any:
    """A private Settings for ``up``'s HttpClient: that upstream as a named index, with its
    secret, and no other."""
    from kea.settings import Index, Settings

    private_env = {k: v for k, v in env.items() if not k.startswith("KEA_INDEX") and k != "NETRC"}
    index = Index(url=up.base_url, name=up.name, source=str(config.path))
    prefix = index.env_prefix or ""
    if up.username is not None:
        private_env[prefix + "USERNAME"] = up.username
    if up.password is not None:
        private_env[prefix + "PASSWORD"] = up.password
    return Settings(
        indexes=[index],
        netrc_path=None,
        keyring_provider="disabled",
        http_timeout=config.upstream_timeout,
        http_connect_timeout=config.upstream_connect_timeout,
        http_retries=config.upstream_retries,
        env=private_env,
    )


class Proxy:
    def __init__(self, config: ServeConfig, store: Store, metrics: Metrics) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clients: dict[str, HttpClient] = {}  # by upstream name
        self._pages: dict[tuple[str, str], PageEntry] = {}
        self._page_flights: dict[tuple[str, str], asyncio.Future[PageEntry]] = {}
        self._file_flights: dict[tuple[str, str, str], asyncio.Future[str]] = {}
        self._pointers: dict[tuple[str, str, str], str] = {}  # (route, project, file) -> sha256

    def _remember(self, key: tuple[str, str, str], sha256: str) -> None:
        if len(self._pointers) > 100_000:
            self._pointers.clear()
        self._pointers[key] = sha256

    async def start(self, env: Mapping[str, str]) -> None:
        if not any(r.mode == "proxy" and r.upstream is not None for r in self.config.routes):
            return  # redirect routes never fetch: no client (and no TLS stack, see server.py)
        from kea.http.client import HttpClient

        used = {r.upstream.name for r in self.config.routes if r.mode == "proxy" and r.upstream}
        for up in self.config.upstreams:
            if up.name not in used:
                continue
            client = HttpClient(upstream_settings(self.config, up, env), backoff_base=0.1)
            await client.open()
            self.clients[up.name] = client

    async def close(self) -> None:
        clients, self.clients = self.clients, {}
        for client in clients.values():
            await client.close()

    # -- pages -------------------------------------------------------------------------------

    async def page(self, route: Route, project: str) -> PageEntry:
        key = (route.name, project)
        entry = self._pages.get(key) or await self._load_page(route, project)
        if entry is not None and entry.fresh(time.time()):
            self.metrics.cache_hits["page"] += 1
            return entry
        return await single_flight(
            self._page_flights, key, lambda: self._fetch_page(route, project, entry)
        )

    async def _load_page(self, route: Route, project: str) -> PageEntry | None:
        """The page of ``project`` kept on disk, into this worker's memory; its files those of
        the project alone, as a fetched page's are (one kept before that rule is, too)."""
        entry = await PageEntry.load(self.store.page_path(route.name, project))
        if entry is not None:
            files = [f for f in entry.files if _of_project(f.filename, f.url, project)]
            if len(files) != len(entry.files):
                entry.files = files
                entry.by_name = {f.filename: f for f in files}
            self._pages[(route.name, project)] = entry
        return entry

    async def _fetch_page(self, route: Route, project: str, entry: PageEntry | None) -> PageEntry:
        from kea.index.page import parse_project_page

        upstream = route.upstream
        assert upstream is not None
        self.metrics.cache_misses["page"] += 1
        got = await self.revalidate(upstream, upstream.project_url(project), entry, project)
        if isinstance(got, PageEntry):
            if not got.stale:  # a 304: fresh again
                await self._save_page(route, project, got)
            return got
        resp = got
        key = (route.name, project)
        if resp.status != 200:  # 404 or 410
            self._pages.pop(key, None)
            raise UpstreamError(404, f"{project} not found on upstream {upstream.name}")
        try:
            # in a thread: a large page parsed on the loop held up every other request
            parsed = await asyncio.to_thread(
                parse_project_page,
                resp.body,
                resp.url,
                resp.headers.get("Content-Type"),
                name=project,
            )
        except KeaError as e:
            raise UpstreamError(
                502,
                f"upstream {upstream.name} sent a malformed page for {project}:"
                f" {_unlocated(e.message, upstream)}",
            ) from None
        except Exception as e:  # a parser bug must not become a traceback to a client
            raise UpstreamError(
                502,
                f"upstream {upstream.name} sent a malformed page for {project}"
                f" ({type(e).__name__})",
            ) from None
        new = PageEntry(
            files=[f for f in parsed.files if _of_project(f.filename, f.url, project)],
            versions=list(parsed.versions),
            **self.validators(resp),
        )
        self._pages[key] = new
        await self._save_page(route, project, new)
        return new

    async def revalidate(
        self, upstream: Upstream, url: str, entry: V | None, what: str, kind: str = "page"
    ) -> Response | V:
        """GET ``url`` of ``upstream`` (a ``kind``: a page, or its project list, for ``what``)
        with ``entry``'s validators. The response when it is a 200, 404 or 410; else ``entry``,
        made fresh by a 304 or marked stale when the upstream failed (an ``UpstreamError``
        without one)."""
        from kea.http.errors import HttpError, HttpTimeout, TooLarge
        from kea.index.page import ACCEPT

        client = self.clients[upstream.name]
        headers = {"Accept": ACCEPT}
        if entry is not None and entry.etag:
            headers["If-None-Match"] = entry.etag
        if entry is not None and entry.last_modified:
            headers["If-Modified-Since"] = entry.last_modified
        start = time.monotonic()
        # upstream-timeout bounds each read; a page trickling in a byte at a time never hit it
        # (a 40-byte page took 42 s at upstream-timeout = 3). The whole fetch gets a bound too.
        c = self.config
        deadline = c.upstream_timeout * 2 * (c.upstream_retries + 1) + c.upstream_connect_timeout
        try:
            async with asyncio.timeout(deadline):
                resp = await client.get(
                    url, headers=headers, purpose="page", max_bytes=self.config.max_page_size
                )
        except TooLarge:
            self.metrics.upstream(upstream.name, time.monotonic() - start, error=True)
            limit = self.config.max_page_size
            log.warning("upstream %s: %s of %s is over max-page-size", upstream.name, kind, what)
            return self._stale(
                kind, entry, 502, f"upstream {upstream.name} sent a {kind} over {limit} bytes"
            )
        except (HttpTimeout, TimeoutError):  # a read's time-out, or the deadline's
            self.metrics.upstream(upstream.name, time.monotonic() - start, error=True)
            return self._stale(kind, entry, 504, f"upstream {upstream.name} timed out")
        except HttpError as e:
            self.metrics.upstream(upstream.name, time.monotonic() - start, error=True)
            log.warning("upstream %s: %s", upstream.name, e.message)
            return self._stale(
                kind,
                entry,
                502,
                f"upstream {upstream.name} unreachable: {_unlocated(e.message, upstream)}",
            )
        self.metrics.upstream(upstream.name, time.monotonic() - start, error=resp.status >= 500)
        if resp.status == 304 and entry is not None:
            entry.fetched, entry.stale = time.time(), False
            entry.max_age = self.validators(resp)["max_age"]
            return entry
        if resp.status in (200, 404, 410):
            return resp
        if resp.status in (401, 403):
            # where the credentials came from (a server-side path) is for the log only
            log.warning(
                "upstream %s refused kea serve's credentials for %s (%s; source: %s)",
                upstream.name,
                what,
                resp.status,
                upstream.credential_source,
            )
            return self._stale(
                kind, entry, 502, f"upstream {upstream.name} refused kea serve's credentials"
            )
        return self._stale(kind, entry, 502, f"upstream {upstream.name} answered {resp.status}")

    def validators(self, resp: Response) -> dict[str, Any]:
        """The validators and freshness of an upstream's answer (``Validated``'s fields)."""
        max_age, persist = freshness(resp.headers.get("Cache-Control"), self.config.page_ttl)
        return {
            "etag": resp.headers.get("ETag"),
            "last_modified": resp.headers.get("Last-Modified"),
            "fetched": time.time(),
            "max_age": max_age,
            "persist": persist,
        }

    def _stale(self, kind: str, entry: V | None, status: int, message: str) -> V:
        if entry is None:
            raise UpstreamError(status, message)
        log.warning("%s; serving the cached %s", message, kind)
        entry.stale = True
        self.metrics.cache_hits[f"stale-{kind}"] += 1
        return entry

    async def _save_page(self, route: Route, project: str, entry: PageEntry) -> None:
        await entry.save(self.store.page_path(route.name, project))

    # -- files -------------------------------------------------------------------------------

    async def serve_file(
        self, request: web.Request, route: Route, project: str, filename: str
    ) -> web.StreamResponse:
        from aiohttp import web

        pointer = self.store.pointer_path(route.name, project, filename)
        bodies = self.store.for_route(route.name, route.public_read)
        key = (route.name, project, filename)
        # What the page says the file is now (the page this worker holds, else the one on
        # disk): an upstream may replace a file, and the body cached before must then not be
        # served for the new page's hash.
        if (route.name, project) not in self._pages:
            await self._load_page(route, project)
        now = self._advertised(route, project, filename)
        sha = self._pointers.get(key)
        if sha is not None and now in (None, sha):
            path = bodies.verified_fast(sha)
            if path is not None:
                return self._from_cache(path, route)
        if sha is None:
            sha = await _pointed(pointer)
        if sha is not None and now not in (None, sha):
            sha = None
        if sha is not None:
            path = await asyncio.to_thread(bodies.verified_path, sha)
            if path is not None:
                self._remember(key, sha)
                return self._from_cache(path, route)
        listed = _listed(await self.page(route, project), filename)
        if listed is None:
            raise web.HTTPNotFound(text=f"{filename} is not a file of {project}\n")
        url, hashes = listed
        known = hashes.get("sha256", "").lower()
        if is_sha256(known):
            path = await asyncio.to_thread(bodies.verified_path, known)
            if path is not None:
                await asyncio.to_thread(keep_json, pointer, {"sha256": known})
                self._remember(key, known)
                return self._from_cache(path, route)
        while (flight := self._file_flights.get(key)) is not None:
            try:
                sha = await asyncio.shield(flight)
            except _Abandoned:
                continue  # its request was cancelled: this one fetches the file instead
            path = await asyncio.to_thread(bodies.verified_path, sha)
            if path is not None:
                return self._from_cache(path, route)
            # What that fetch stored no longer verifies (it went bad once stored, or the flight
            # was still finishing when this request found the bad copy): fetch it again.
            break
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._file_flights[key] = fut
        try:
            lock: Any = self.store.file_lock(route.name, project, filename)
        except OSError as e:  # a cache it cannot write to: fetch without the lock
            cache_write_failed(self.store.root / "locks", e)
            lock = None
        try:
            # One fetch across workers too: wait for another worker's fetch of this file, then
            # look again; a worker that died releases its lock with its process.
            await self._acquire(lock)
            done_sha = await _pointed(pointer)
            if done_sha is not None and (not is_sha256(known) or done_sha == known):
                # (a pointer to another sha256 than the page's is a replaced file's)
                done = await asyncio.to_thread(bodies.verified_path, done_sha)
                if done is not None:
                    self._remember(key, done_sha)
                    fut.set_result(done_sha)
                    return self._from_cache(done, route)
            response, got, cached = await self._download(request, route, url, hashes, filename)
            if got and cached:
                await asyncio.to_thread(keep_json, pointer, {"sha256": got})
                self._remember(key, got)
                fut.set_result(got)
            elif got:  # served, not kept (the cache cannot be written): the others fetch it
                fut.set_exception(_Abandoned())
                fut.exception()
            else:
                fut.set_exception(UpstreamError(502, f"fetching {filename} from upstream failed"))
                fut.exception()
            return response
        except BaseException as e:
            if not fut.done():
                cancelled = isinstance(e, asyncio.CancelledError)
                fut.set_exception(_Abandoned() if cancelled else e)
                fut.exception()
            raise
        finally:
            if self._file_flights.get(key) is fut:  # a later fetch of the same file may follow
                del self._file_flights[key]
            if lock is not None and lock.is_locked:
                lock.release()

    def _advertised(self, route: Route, project: str, filename: str) -> str | None:
        """The sha256 that the page of ``project`` in memory lists for ``filename`` (or its
        ``.metadata``); None when there is no such page, file or hash."""
        page = self._pages.get((route.name, project))
        listed = None if page is None else _listed(page, filename)
        sha = "" if listed is None else listed[1].get("sha256", "").lower()
        return sha if is_sha256(sha) else None

    async def _acquire(self, lock: Any) -> None:
        """Take ``lock`` (another worker's fetch of the file ends first), waiting no longer
        than a fetch may take; without it (None, or a cache it cannot write to) fetch anyway."""
        from filelock import Timeout

        if lock is None:
            return
        deadline = time.monotonic() + self.config.upstream_timeout * 2 + 30
        while True:
            try:
                lock.acquire(timeout=0)
                return
            except Timeout:
                if time.monotonic() > deadline:
                    return  # fetch anyway rather than fail the client
                await asyncio.sleep(0.05)
            except OSError as e:  # (Timeout is an OSError too: caught above)
                cache_write_failed(Path(lock.lock_file), e)
                return

    def _from_cache(self, path: Any, route: Route) -> web.StreamResponse:
        from aiohttp import web

        self.metrics.cache_hits["file"] += 1
        try:
            self.metrics.cache_bytes += path.stat().st_size
        except OSError:
            pass
        headers = file_headers(route)
        headers["Content-Type"] = "application/octet-stream"
        return web.FileResponse(path, headers=headers)

    async def _download(
        self,
        request: web.Request,
        route: Route,
        url: str,
        hashes: Mapping[str, str],
        filename: str,
    ) -> tuple[web.StreamResponse, str | None, bool]:
        """Stream ``url`` to the client and into the store; (response, sha256 or None when it
        failed, whether the body was kept: a cache it cannot write to only costs the keeping)."""
        from aiohttp import web

        from kea.http.errors import HttpError, HttpTimeout

        upstream: Upstream | None = route.upstream
        assert upstream is not None
        client = self.clients[upstream.name]
        self.metrics.cache_misses["file"] += 1
        expected = {k.lower(): v.lower() for k, v in hashes.items()}
        check_alg = next(
            (a for a in ("sha256", "sha384", "sha512", "sha1", "md5") if a in expected), None
        )
        h256 = hashlib.sha256()
        hcheck = hashlib.new(check_alg) if check_alg and check_alg != "sha256" else None
        bodies = self.store.for_route(route.name, route.public_read)
        tmp_f: Any = None
        tmp: Path | None = None
        try:
            tmp_f, tmp = await asyncio.to_thread(bodies.temp_file)
        except OSError as e:
            cache_write_failed(bodies.files, e)

        def stop_keeping(e: OSError) -> None:
            nonlocal tmp_f
            cache_write_failed(bodies.files, e)
            with contextlib.suppress(OSError):
                tmp_f.close()
            tmp_f = None

        out: web.StreamResponse | None = None
        client_gone = False
        start = time.monotonic()
        size = 0
        committed = False
        try:
            try:
                async with client.stream(url, purpose="file") as s:
                    if s.status != 200:
                        status = {404: 404, 410: 404, 504: 504}.get(s.status, 502)
                        raise UpstreamError(
                            status, f"upstream {upstream.name} answered {s.status} for {filename}"
                        )
                    out = web.StreamResponse(status=200)
                    out.headers.update(file_headers(route))
                    out.content_type = "application/octet-stream"
                    if s.content_length is not None:
                        out.content_length = s.content_length
                    try:
                        await out.prepare(request)
                    except (ConnectionError, RuntimeError):
                        # The client left while the upstream was asked: the file is fetched
                        # all the same, for the clients waiting on this fetch and the cache
                        # (its error was theirs: a 500 for each).
                        client_gone = True
                    held: bytes | None = None
                    async for chunk in s.iter_chunks():
                        if not chunk:
                            continue
                        if tmp_f is not None:
                            try:
                                tmp_f.write(chunk)
                            except OSError as e:  # the disk is full, say: serve, not keep
                                stop_keeping(e)
                        h256.update(chunk)
                        if hcheck is not None:
                            hcheck.update(chunk)
                        size += len(chunk)
                        if held is not None and not client_gone:
                            client_gone = not await _send(out, held)
                        held = chunk
                    if s.content_length is not None and size != s.content_length:
                        raise UpstreamError(
                            502,
                            f"upstream {upstream.name} sent {size} of {s.content_length} bytes"
                            f" of {filename}",
                        )
            except HttpTimeout:
                raise UpstreamError(504, f"upstream {upstream.name} timed out") from None
            except HttpError as e:
                log.warning("upstream %s: %s", upstream.name, e.message)
                raise UpstreamError(
                    502,
                    f"upstream {upstream.name} unreachable for {filename}:"
                    f" {_unlocated(e.message, upstream)}",
                ) from None
            finally:
                self.metrics.upstream(upstream.name, time.monotonic() - start)
            if tmp_f is not None:
                try:
                    tmp_f.close()
                except OSError as e:
                    stop_keeping(e)
            sha = h256.hexdigest()
            want = expected.get(check_alg or "", "")
            got = sha if check_alg == "sha256" else (hcheck.hexdigest() if hcheck else "")
            if check_alg and got != want:
                raise UpstreamError(
                    502,
                    f"{filename} from upstream {upstream.name} does not match its {check_alg}"
                    " hash (not cached)",
                )
            if tmp_f is not None and tmp is not None:
                try:
                    await asyncio.to_thread(bodies.commit, tmp, sha)
                    committed = True
                except OSError as e:
                    stop_keeping(e)
            self.metrics.upstream_bytes += size
            assert out is not None
            if held is not None and not client_gone:
                client_gone = not await _send(out, held)
            if not client_gone:
                try:
                    await out.write_eof()
                except (ConnectionError, RuntimeError):
                    pass
            return out, sha, committed
        except UpstreamError as e:
            if out is None:
                raise
            # Headers are sent: the only honest signal left is a broken connection.
            log.warning("%s (%s)", e.message, redact_url(url))
            request["aborted"] = e.status
            if request.transport is not None:
                request.transport.abort()
            return out, None, False
        finally:
            if tmp_f is not None and not tmp_f.closed:
                tmp_f.close()
            if not committed and tmp is not None:
                bodies.discard(tmp)


def _listed(page: PageEntry, filename: str) -> tuple[str, Mapping[str, str]] | None:
    """Where ``filename`` (a file of ``page``, or its ``.metadata``) is fetched from, and the
    hashes the page lists for it; None when the page lists no such file."""
    metadata = filename.endswith(".metadata")
    dist = page.by_name.get(filename[: -len(".metadata")] if metadata else filename)
    if dist is None or (metadata and not dist.has_metadata_file):
        return None
    if metadata:
        return dist.metadata_url, dist.metadata_hashes
    return dist.url.split("#", 1)[0], dist.hashes


async def _pointed(pointer: Path) -> str | None:
    """The sha256 a pointer file names; None when it is missing or names none."""
    ptr = await asyncio.to_thread(read_json, pointer)
    sha = str(ptr.get("sha256", "")) if isinstance(ptr, dict) else ""
    return sha if is_sha256(sha) else None


def _of_project(filename: str, url: str, project: str) -> bool:
    """Whether a file of an upstream's page for ``project`` is one kea serve lists: named for
    that project (a wheel or an sdist) and fetched over http(s)."""
    from kea.index.findlinks import project_of

    if not url.lower().startswith(("http://", "https://")):
        return False
    return project_of(filename) == project


_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>()]*[^\s\"'<>():]")


def _unlocated(message: str, upstream: Upstream) -> str:
    """``message`` without URLs or the upstream's host: clients learn which upstream failed and
    why, not where it is (the operator's log has the whole message)."""
    from kea.auth.urls import host_of

    message = _URL_RE.sub("the upstream", message)
    host = host_of(upstream.url.replace("{project}", "x"))
    if host:
        message = re.sub(re.escape(host) + r"(:\d+)?", "the upstream", message)
    return message


async def _send(out: web.StreamResponse, data: bytes) -> bool:
    try:
        await out.write(data)
        return True
    except (ConnectionError, RuntimeError):
        return False


__all__ = ["Proxy", "UpstreamError", "upstream_settings"]
