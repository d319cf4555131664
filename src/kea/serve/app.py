"""The aiohttp application of ``kea serve``: URL dispatch, auth, pages, files, uploads, ops.

URLs::

    GET  /simple/                          project list (every route the client may read)
    GET  /simple/<name>/                   project page (HTML or JSON by Accept)
    GET  /files/<route>/<project>/<file>   a file (and ``<file>.metadata``, PEP 658)
    POST /  (or /legacy/, /simple/)        legacy upload API (twine)
    GET  /health, /metrics

Paths are parsed here, segment by segment, from the raw path: a segment that decodes to ``.``,
``..``, or holds ``/``, ``\\`` or NUL is refused (400) before anything else happens. Names are
never joined to filesystem paths: local files are looked up among the files a directory scan
found, cached files by their sha256.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import unquote

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from kea.auth.redact import redact_text, redact_url
from kea.index.models import DistFile
from kea.serve.clientauth import ClientAuth, can_read, can_write
from kea.serve.config import Route, ServeConfig
from kea.serve.lists import ProjectLists
from kea.serve.local import LocalDirectory
from kea.serve.metrics import PUBLISH_EVERY, Board, Metrics
from kea.serve.names import MAX_NAME, normalize, valid_name
from kea.serve.negotiate import choose, content_type
from kea.serve.proxy import Proxy, UpstreamError, file_headers
from kea.serve.render import render_index, render_project
from kea.serve.routes import route_for, routed_to
from kea.serve.store import Store
from kea.serve.upload import UploadError, check_upload, read_upload

log = logging.getLogger("kea.serve")
access_log = logging.getLogger("kea.serve.access")

_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!~-]{0,250}$")
MAX_PATH = 2048
INDEX_RENDERED = 4  # project lists kept rendered (a public index's is ~30 MB)
STALE_WARNING = '110 kea-serve "Response is Stale"'  # RFC 7234's warning for a stale answer


class Problem(Exception):
    """A client error answered as ``status`` with a one-line text body."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class ServeApp:
    def __init__(
        self, config: ServeConfig, env: Mapping[str, str], board: Board | None = None
    ) -> None:
        self.config = config
        self.env = env
        self.store = Store(config.cache_dir)
        self.metrics = Metrics()
        self.board = board  # several workers: /metrics answers for all (kea.serve.metrics)
        if board is not None:
            # This slot's worker before this one, if one died: counting goes on from there.
            earlier = board.restore()
            self.metrics = (Metrics.read(earlier) if earlier else None) or self.metrics
        self._publisher: asyncio.Task[None] | None = None
        self.proxy = Proxy(config, self.store, self.metrics)
        self.lists = ProjectLists(config, self.proxy)
        self.auth = ClientAuth(config.htpasswd, config.tokens_file)
        self.local: dict[str, LocalDirectory] = {
            r.name: LocalDirectory(r.directory, self.store.metadata)
            for r in config.routes
            if r.directory is not None
        }
        self.started = time.time()
        # Rendered project pages: (route, project, kind) -> (what they were made from, body, etag)
        self._rendered: dict[tuple[str, str, str], tuple[object, bytes, str]] = {}
        # Rendered project lists, the last few: (kind, what they were made from) -> (parts,
        # body, etag). Clients who may read different routes get different lists.
        self._index_rendered: dict[tuple[str, object], tuple[list[list[str]], bytes, str]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_response_prepare.append(_server_header)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, app: web.Application) -> None:
        await self.proxy.start(self.env)
        if self.board is not None:
            self._publisher = asyncio.create_task(self._publish())

    async def _cleanup(self, app: web.Application) -> None:
        await self.proxy.close()
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        if self.board is not None:
            self.board.publish(self.metrics)  # what this worker counted to the end

    async def _publish(self) -> None:
        assert self.board is not None
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            self.board.publish(self.metrics)

    # -- middleware: errors, metrics ---------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        request["route"] = "-"
        try:
            resp = await handler(request)
        except Problem as e:
            resp = _text(e.status, e.message, e.headers)
        except UpstreamError as e:
            resp = _text(e.status, e.message)
        except web.HTTPException as e:
            headers = {
                k: v
                for k, v in e.headers.items()
                if k.lower() not in ("content-length", "content-type")
            }
            body = e.text if e.text and e.status >= 400 else ""
            resp = web.Response(status=e.status, text=body, headers=headers)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug: one redacted line in the log, never a traceback out
            log.error(
                "internal error on %s %s: %s: %s",
                request.method,
                redact_text(request.path),
                type(e).__name__,
                redact_text(str(e)),
            )
            if log.isEnabledFor(logging.DEBUG):
                log.debug("traceback", exc_info=True)
            resp = _text(500, "internal server error")
        status = request.get("aborted") or resp.status
        self.metrics.request(request["route"], status)
        return resp

    # -- dispatch ----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?", 1)[0]
        if len(raw) > MAX_PATH:
            raise Problem(414, "path too long")
        segments = [unquote(s) for s in raw.split("/")[1:]]
        for seg in segments:
            if seg in (".", "..") or any(c in seg for c in "/\\\x00"):
                raise Problem(400, "bad path: '.', '..' and encoded separators are not allowed")
        trailing = bool(segments) and segments[-1] == ""
        parts = [s for s in segments if s]
        method = request.method
        if method == "POST" and (not parts or parts in (["legacy"], ["simple"])):
            return await self._upload(request)
        if method not in ("GET", "HEAD"):
            raise Problem(405, f"method {method} not allowed", {"Allow": "GET, HEAD, POST"})
        if parts == ["health"]:
            request["route"] = "health"
            return web.json_response({"status": "ok", "uptime": round(time.time() - self.started)})
        if parts == ["metrics"]:
            request["route"] = "metrics"
            others = self.board.others() if self.board is not None else ()
            return web.Response(
                text=self.metrics.render(others), content_type="text/plain", charset="utf-8"
            )
        if parts and parts[0] == "simple":
            if len(parts) == 1:
                if not trailing:
                    raise web.HTTPMovedPermanently(location="/simple/")
                return await self._index(request)
            if len(parts) == 2:
                return await self._project(request, parts[1], trailing)
        if parts and parts[0] == "files" and len(parts) == 4:
            return await self._file(request, parts[1], parts[2], parts[3])
        raise Problem(404, "not found")

    # -- auth ----------------------------------------------------------------------------------

    async def _user(self, request: web.Request) -> tuple[str | None, bool]:
        if not self.auth.enabled:
            return None, False
        user, presented = await self.auth.identify(request.headers.get("Authorization"))
        request["user"] = user
        return user, presented

    async def _authorize(self, request: web.Request, route: Route, *, write: bool) -> None:
        if not write and route.public_read:
            return
        user, presented = await self._user(request)
        ok = can_write(route, user) if write else can_read(route, user)
        if ok:
            return
        if user is None:
            why = "invalid credentials" if presented else "credentials required"
            raise Problem(401, why, {"WWW-Authenticate": f'Basic realm="{self.config.realm}"'})
        raise Problem(403, f"user {user} may not {'upload to' if write else 'read'} {route.name}")

    # -- pages -------------------------------------------------------------------------------

    def _kind(self, request: web.Request) -> str:
        kind = choose(request.headers.get("Accept"))
        if kind is None:
            raise Problem(406, "no acceptable content type (PEP 691: JSON or HTML)")
        return kind

    async def _index(self, request: web.Request) -> web.StreamResponse:
        """The project list: what each route this client may read answers for
        (``kea.serve.lists``). A proxy route whose upstream cannot give its list, with none
        cached, fails the whole list (502/504) rather than leaving its names out."""
        request["route"] = "index"
        kind = self._kind(request)
        user: str | None = None
        if self.auth.enabled:
            user, _ = await self._user(request)
        parts: list[list[str]] = []  # the names each route answers for
        made_of: list[object] = []  # what identifies them: local names, or a list's identity
        stale = False
        for route in self.config.routes:
            if route.mode == "deny" or not can_read(route, user):
                continue
            local = self.local.get(route.name)
            if local is not None:
                projects = await asyncio.to_thread(local.projects_sync)
                parts.append(routed_to(self.config, route, projects))
                made_of.append(tuple(parts[-1]))
                continue
            routed, old = await self.lists.names(route)
            parts.append(routed)
            made_of.append(id(routed))  # the same list until its upstream's list changes
            stale = stale or old
        extra = {"Warning": STALE_WARNING} if stale else None
        # A public index's list makes a ~30 MB page: rendered once, off the event loop.
        key = (kind, tuple(made_of))
        cached = self._index_rendered.pop(key, None)
        if cached is None:
            body, etag = await asyncio.to_thread(_render_index, kind, parts)
            # parts are kept with it: while they are alive, their ids name no other list
            cached = (parts, body, etag)
            if len(self._index_rendered) >= INDEX_RENDERED:
                del self._index_rendered[next(iter(self._index_rendered))]  # the least recent
        self._index_rendered[key] = cached
        return self._page_response(request, cached[1], kind, extra, cached[2])

    def _check_name(self, raw: str) -> str:
        if len(raw) > MAX_NAME:
            raise Problem(400, f"project name longer than {MAX_NAME} characters")
        if not valid_name(raw):
            raise Problem(400, "invalid project name")
        return normalize(raw)

    def _route(self, request: web.Request, project: str) -> Route:
        route = route_for(self.config, project)
        if route is None:
            raise Problem(404, f"no route serves {project}")
        request["route"] = route.name
        if route.mode == "deny":
            raise Problem(403, f"{project} is denied by route {route.name}")
        return route

    async def _project(self, request: web.Request, raw: str, trailing: bool) -> web.StreamResponse:
        project = self._check_name(raw)
        if project != raw or not trailing:
            raw_query = request.raw_path.partition("?")[2]  # as sent: decoding would change it
            query = f"?{raw_query}" if raw_query else ""
            # a plain Response: HTTPMovedPermanently would re-encode the Location through yarl
            return web.Response(status=301, headers={"Location": f"/simple/{project}/{query}"})
        route = self._route(request, project)
        await self._authorize(request, route, write=False)
        if route.mode == "redirect":
            assert route.upstream is not None
            return web.Response(
                status=302, headers={"Location": route.upstream.project_url(project)}
            )
        kind = self._kind(request)
        base = f"/files/{route.name}/{project}/"
        local = self.local.get(route.name)
        extra: dict[str, str] = {}
        ident: object
        if local is not None:
            found = local.files_fast(project)
            if found is None:
                found = await asyncio.to_thread(local.files_sync, project)
            if not found:
                raise Problem(404, f"{project} has no files on route {route.name}")
            ident = tuple((f.filename, f.sha256, f.metadata_sha256, f.mtime_ns) for f in found)
        else:
            entry = await self.proxy.page(route, project)
            ident = entry
            if entry.stale:
                extra["Warning"] = STALE_WARNING
        key = (route.name, project, kind)
        cached = self._rendered.get(key)
        if cached is not None and (cached[0] is ident or cached[0] == ident):
            body, etag = cached[1], cached[2]
        else:
            if local is not None:
                assert found is not None
                files = [local.dist_file(f, base + f.filename) for f in found]
                versions: list[str] = []
            else:
                files = [_rebased(f, base) for f in entry.files if _FILENAME_RE.match(f.filename)]
                versions = entry.versions
            body = render_project(kind, project, files, versions)
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            if len(self._rendered) > 4096:
                self._rendered.clear()
            self._rendered[key] = (ident, body, etag)
        return self._page_response(request, body, kind, extra, etag)

    def _page_response(
        self,
        request: web.Request,
        body: bytes,
        kind: str,
        extra: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> web.StreamResponse:
        etag = etag or '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Vary": "Accept, Authorization",
            "Cache-Control": "max-age=0, must-revalidate",
            **(extra or {}),
        }
        inm = request.headers.get("If-None-Match", "")
        if etag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = content_type(kind)
        return web.Response(body=body, headers=headers)

    # -- files -------------------------------------------------------------------------------

    async def _file(
        self, request: web.Request, route_name: str, raw_project: str, filename: str
    ) -> web.StreamResponse:
        route = self.config.route(route_name)
        if route is None:
            raise Problem(404, "not found")
        project = self._check_name(raw_project)
        if project != raw_project or not _FILENAME_RE.match(filename):
            raise Problem(400, "invalid file path")
        # The file must belong to the route that serves its project: a private name can never
        # be fetched through a public route's /files/ path.
        if self._route(request, project) is not route:
            raise Problem(404, f"{project} is not served by route {route_name}")
        await self._authorize(request, route, write=False)
        local = self.local.get(route.name)
        if local is not None:
            return await self._local_file(local, route, project, filename)
        if route.mode != "proxy":
            raise Problem(404, "not found")
        return await self.proxy.serve_file(request, route, project, filename)

    async def _local_file(
        self, local: LocalDirectory, route: Route, project: str, filename: str
    ) -> web.StreamResponse:
        headers = file_headers(route)
        if filename.endswith(".metadata"):
            meta = await asyncio.to_thread(
                local.metadata_sync, project, filename[: -len(".metadata")]
            )
            if meta is None:
                raise Problem(404, f"no metadata for {filename}")
            return web.Response(body=meta, content_type="application/octet-stream", headers=headers)
        files = local.files_fast(project)
        if files is None:
            files = await asyncio.to_thread(local.files_sync, project)
        found = next((f for f in files if f.filename == filename), None)
        if found is None:
            raise Problem(404, f"{filename} not found")
        headers["Content-Type"] = "application/octet-stream"
        return web.FileResponse(found.path, headers=headers)

    # -- uploads -----------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        request["route"] = "upload"
        writable = [r for r in self.config.routes if r.write]
        if not writable:
            raise Problem(405, "no route accepts uploads")
        user, presented = await self._user(request)
        if user is None and "*" not in {u for r in writable for u in r.write}:
            why = "invalid credentials" if presented else "credentials required"
            raise Problem(401, why, {"WWW-Authenticate": f'Basic realm="{self.config.realm}"'})
        if not any(can_write(r, user) for r in writable):
            # refused before the body is read: no temp file, no waiting for the upload
            raise Problem(403, f"user {user or 'anonymous'} may not upload")
        try:
            up = await read_upload(
                request, self.store.root / "uploads-tmp", self.config.max_upload_size
            )
        except UploadError as e:
            raise Problem(e.status, e.message) from None
        try:
            try:
                project, filename = await asyncio.to_thread(check_upload, up)
            except UploadError as e:
                raise Problem(e.status, e.message) from None
            route = self._route(request, project)
            if route.directory is None or not route.write:
                raise Problem(403, f"route {route.name} does not accept uploads")
            await self._authorize(request, route, write=True)
            local = self.local[route.name]
            assert up.path is not None
            try:
                await asyncio.to_thread(local.store_sync, filename, up.path)
            except FileExistsError:
                raise Problem(409, f"{filename} already exists") from None
            log.info("uploaded %s to %s by %s", filename, route.name, user or "anonymous")
            return web.Response(status=200, text="OK\n")
        finally:
            up.discard()


def _render_index(kind: str, parts: list[list[str]]) -> tuple[bytes, str]:
    """The project list made of each route's names (each sorted), and its ETag."""
    names = sorted(set().union(*parts)) if len(parts) > 1 else (parts[0] if parts else [])
    body = render_index(kind, names)
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "kea-serve"  # not aiohttp's, with Python and library versions


def _rebased(f: DistFile, base: str) -> DistFile:
    """An upstream file record with its URL moved under kea serve's ``/files/`` path."""
    return DistFile(
        filename=f.filename,
        url=base + f.filename,
        hashes=f.hashes,
        requires_python=f.requires_python,
        yanked=f.yanked,
        core_metadata=f.core_metadata,
        size=f.size,
        upload_time=f.upload_time,
    )


def _text(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=redact_text(message) + "\n", headers=dict(headers or {})
    )


class AccessLogger(AbstractAccessLogger):
    """One redacted line per request: client, user, request line, status, bytes, seconds."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        status = request.get("aborted") or response.status
        user = request.get("user") or "-"
        line = f"{request.method} {redact_url(request.path_qs)}"
        self.logger.info(
            '%s %s "%s" %s %s %.4f',
            request.remote or "-",
            redact_text(str(user)),
            redact_text(line),
            status,
            response.body_length,
            time,
        )


def make_app(config: ServeConfig, env: Mapping[str, str]) -> web.Application:
    return ServeApp(config, env).build()


__all__ = ["AccessLogger", "ServeApp", "make_app"]
