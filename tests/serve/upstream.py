"""A scriptable upstream index (aiohttp, on the e2e ``ServerLoop``) that records what it got.

It serves ``/simple/<project>/`` (PEP 503 HTML with sha256 fragments, ``ETag`` and conditional
GET), the project list ``/simple/`` (PEP 691 JSON when asked for, else HTML; ``ETag`` too) and
``/packages/<file>``. Per file or project a ``fault`` makes it misbehave the way real
upstreams do: ``truncate`` (Content-Length promises more than is sent, then the connection
closes), ``badhash`` (the page lists a wrong sha256), ``malformed`` (a page that is not an index),
``slow`` (answers after ``slow_seconds``). The faults of the project list are keyed ``/simple/``:
``malformed``, ``missing`` (404).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.e2e.servers.record import Seen
from tests.e2e.servers.web import ServerLoop
from tests.serve.names_util import project_of


@dataclass
class FakeUpstream:
    loop: ServerLoop
    ip: str
    files: dict[str, bytes] = field(default_factory=dict)  # filename -> bytes
    faults: dict[str, str] = field(default_factory=dict)  # filename or project -> fault
    seen: list[Seen] = field(default_factory=list)
    cache_control: str | None = None
    slow_seconds: float = 5.0
    metadata: bool = False  # offer PEP 658 metadata files (extracted from the wheels)
    listed: list[str] = field(default_factory=list)  # names the project list adds, as given
    pages: dict[str, str] = field(default_factory=dict)  # project -> its page's HTML, as given
    moved: dict[str, str] = field(default_factory=dict)  # file name -> a 302's Location
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def add(self, wheel: Path) -> None:
        self.files[wheel.name] = wheel.read_bytes()

    def start(self) -> None:
        self.port = self.loop.call(self._start(self.port))

    async def _start(self, port: int) -> int:
        app = web.Application()
        app.router.add_get("/simple/", self._list)
        app.router.add_get("/simple/{project}/", self._page)
        app.router.add_get("/packages/{filename}", self._file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.ip, port, reuse_address=True)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    def stop(self) -> None:
        if self._runner is not None:
            self.loop.call(self._runner.cleanup())
            self._runner = None

    def requests(self, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)]

    def _record(self, request: web.Request) -> Seen:
        seen = Seen(
            server=f"fake {self.ip}:{self.port}",
            method=request.method,
            path=request.raw_path,
            authorization=request.headers.get("Authorization"),
        )
        self.seen.append(seen)
        return seen

    async def _page(self, request: web.Request) -> web.StreamResponse:
        seen = self._record(request)
        project = request.match_info["project"]
        if self.faults.get(project) == "slow":
            await asyncio.sleep(self.slow_seconds)
        if self.faults.get(project) == "malformed":
            seen.status = 200
            return web.Response(body=b'{"not": "an index"', content_type="application/json")
        if project in self.pages:
            return self._validated(request, seen, self.pages[project].encode(), "text/html")
        if self.faults.get(project) == "trickle":  # a byte every 0.2 s, for ever (nearly)
            resp = web.StreamResponse(headers={"Content-Type": "text/html"})
            await resp.prepare(request)
            for _ in range(600):
                await resp.write(b" ")
                await asyncio.sleep(0.2)
            return resp
        names = sorted(f for f in self.files if project_of(f) == project)
        if not names:
            seen.status = 404
            return web.Response(status=404, text="no such project")
        links = []
        for name in names:
            digest = hashlib.sha256(self.files[name]).hexdigest()
            if self.faults.get(name) == "badhash":
                digest = "0" * 64
            meta = ""
            if self.metadata and name.endswith(".whl"):
                meta_sha = hashlib.sha256(self._metadata(name)).hexdigest()
                meta = f' data-core-metadata="sha256={meta_sha}"'
            links.append(
                f'<a href="../../packages/{html.escape(name)}#sha256={digest}"{meta}>{name}</a><br>'
            )
        body = ("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n").encode()
        return self._validated(request, seen, body, "text/html")

    async def _list(self, request: web.Request) -> web.StreamResponse:
        seen = self._record(request)
        fault = self.faults.get("/simple/")
        if fault == "missing":
            seen.status = 404
            return web.Response(status=404, text="no project list here")
        if fault == "malformed":
            seen.status = 200
            return web.Response(body=b'{"meta": 1', content_type="application/json")
        names = sorted({project_of(f) for f in self.files}) + self.listed
        if "json" in request.headers.get("Accept", ""):
            doc = {"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in names]}
            body, kind = json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json"
        else:
            links = "".join(f'<a href="{html.escape(n)}/">{html.escape(n)}</a>\n' for n in names)
            body, kind = (
                f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode(),
                "text/html",
            )
        return self._validated(request, seen, body, kind)

    def _validated(
        self, request: web.Request, seen: Seen, body: bytes, kind: str
    ) -> web.StreamResponse:
        """``body``, or a 304 when the client's ``If-None-Match`` names it."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag}
        if self.cache_control:
            headers["Cache-Control"] = self.cache_control
        if request.headers.get("If-None-Match") == etag:
            seen.status = 304
            return web.Response(status=304, headers=headers)
        seen.status = 200
        return web.Response(body=body, headers={**headers, "Content-Type": kind})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        seen = self._record(request)
        name = request.match_info["filename"]
        if name in self.moved:
            seen.status = 302
            return web.Response(status=302, headers={"Location": self.moved[name]})
        data = self.files.get(name)
        if self.metadata and name.endswith(".whl.metadata") and name[:-9] in self.files:
            seen.status = 200
            return web.Response(body=self._metadata(name[:-9]))
        if data is None:
            seen.status = 404
            return web.Response(status=404)
        fault = self.faults.get(name)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        seen.status = 200
        if fault == "truncate":
            resp = web.StreamResponse(headers={"Content-Length": str(len(data))})
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return resp
        return web.Response(body=data, content_type="application/octet-stream")

    def _metadata(self, name: str) -> bytes:
        import io
        import zipfile

        with zipfile.ZipFile(io.BytesIO(self.files[name])) as zf:
            (path,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            return zf.read(path)
