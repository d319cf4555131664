"""A PEP 503 (HTML) simple index over a directory of wheels, served by aiohttp on loopback.

Runs its own event loop in a thread so synchronous tests (and the ``kea`` subprocesses they start)
can use it. Serves PEP 658 ``.metadata`` files (extracted from each wheel) and answers range
requests for the wheels, and records every request path it answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import threading
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename


def _wheel_metadata(path: Path) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                parts = info.filename.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    return zf.read(info)
    except (OSError, zipfile.BadZipFile):
        return None
    return None


class SimpleIndex:
    """Serve ``directory`` (its ``*.whl`` and ``*.tar.gz``) as ``http://127.0.0.1:PORT/simple/``."""

    def __init__(self, directory: Path, *, metadata: bool = True) -> None:
        self.directory = directory
        self.metadata = metadata
        self.requests: list[str] = []
        # project name -> (content type, body): served instead of the generated page
        self.canned: dict[str, tuple[str, bytes]] = {}
        # extra headers on every project page, e.g. {"Cache-Control": "max-age=600"}
        self.page_headers: dict[str, str] = {}
        # seconds each wheel download waits before it is answered; the most answered at once
        self.file_delay = 0.0
        self.most_files_at_once = 0
        # file name (a wheel or its .metadata) -> seconds the server holds it before answering
        self.held: dict[str, float] = {}
        self._files_now = 0
        self._projects: dict[str, list[Path]] = defaultdict(list)
        self._meta: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.scan()

    def scan(self) -> None:
        """(Re)read the directory: call after adding wheels."""
        self._projects.clear()
        for path in sorted(self.directory.iterdir()):
            if path.name.endswith(".whl"):
                name = parse_wheel_filename(path.name)[0]
            elif path.name.endswith(".tar.gz"):
                name = parse_sdist_filename(path.name)[0]
            else:
                continue
            self._projects[canonicalize_name(name)].append(path)
            self._hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
            if self.metadata:
                meta = _wheel_metadata(path)
                if meta is not None:
                    self._meta[path.name] = meta

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple"

    # -- handlers --------------------------------------------------------------------------

    async def _root(self, request: Any) -> Any:
        from aiohttp import web

        self.requests.append(request.path)
        links = "".join(f'<a href="{n}/">{n}</a>\n' for n in sorted(self._projects))
        return web.Response(text=f"<html><body>\n{links}</body></html>", content_type="text/html")

    async def _project(self, request: Any) -> Any:
        from aiohttp import web

        self.requests.append(request.path)
        raw = request.match_info["name"]
        name = canonicalize_name(raw)
        if raw != name:
            raise web.HTTPMovedPermanently(f"/simple/{name}/")
        if name in self.canned:
            content_type, data = self.canned[name]
            return web.Response(
                body=data, headers={**self.page_headers, "Content-Type": content_type}
            )
        files = self._projects.get(name)
        if not files:
            raise web.HTTPNotFound()
        rows = []
        for path in files:
            href = f"/files/{path.name}#sha256={self._hashes[path.name]}"
            attrs = f'href="{html.escape(href)}"'
            meta = self._meta.get(path.name)
            if meta is not None:
                digest = hashlib.sha256(meta).hexdigest()
                attrs += f' data-core-metadata="sha256={digest}"'
                attrs += f' data-dist-info-metadata="sha256={digest}"'
            rows.append(f"<a {attrs}>{html.escape(path.name)}</a><br/>")
        body = "<!DOCTYPE html>\n<html><body>\n" + "\n".join(rows) + "\n</body></html>\n"
        return web.Response(text=body, content_type="text/html", headers=self.page_headers)

    async def _file(self, request: Any) -> Any:
        from aiohttp import web

        self.requests.append(request.path)
        filename = request.match_info["filename"]
        if filename in self.held:  # until the time is up or the server stops
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.held[filename])
        if filename.endswith(".metadata"):
            meta = self._meta.get(filename[: -len(".metadata")])
            if meta is None:
                raise web.HTTPNotFound()
            return web.Response(body=meta, content_type="application/octet-stream")
        path = self.directory / filename
        if "/" in filename or not path.is_file():
            raise web.HTTPNotFound()
        if self.file_delay:
            self._files_now += 1
            self.most_files_at_once = max(self.most_files_at_once, self._files_now)
            try:
                await asyncio.sleep(self.file_delay)
            finally:
                self._files_now -= 1
        return web.FileResponse(path)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SimpleIndex:
        from aiohttp import web

        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def setup() -> None:
            self._stopping = asyncio.Event()
            app = web.Application()
            app.router.add_get("/simple/", self._root)
            app.router.add_get("/simple/{name}/", self._project)
            app.router.add_get("/files/{filename}", self._file)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(setup())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="simple-index", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test index did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> SimpleIndex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
