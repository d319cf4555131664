"""A small PEP 503/691 index on loopback (aiohttp.web) that records every request it gets.

Serves ``/simple/<project>/`` (HTML, or JSON when asked and enabled), ``/files/<wheel>`` with
optional ``Range`` support, ``/files/<wheel>.metadata`` (PEP 658) when enabled, ETag/304 and a
configurable Cache-Control, optional Basic auth, and arbitrary canned responses per path.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    sent: int = 0


def wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return zf.read(name)
    raise AssertionError(f"no METADATA in {path}")


@dataclass
class IndexServer:
    wheels: list[Path] = field(default_factory=list)
    json_api: bool = False
    metadata: bool = True
    ranges: bool = True
    hashes: bool = True
    auth: tuple[str, str] | None = None
    cache_control: str | None = None
    etag: bool = True
    canned: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    wrong_hash: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: Any = None

    async def __aenter__(self) -> IndexServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    # -- helpers for assertions ------------------------------------------------------------
    def paths(self, method: str = "GET") -> list[str]:
        return [s.path for s in self.seen if s.method == method]

    def methods(self) -> set[str]:
        return {s.method for s in self.seen}

    # -- the app ---------------------------------------------------------------------------
    def _projects(self) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for w in self.wheels:
            name = re.sub(r"[-_.]+", "-", w.name.split("-", 1)[0]).lower()
            out.setdefault(name, []).append(w)
        return out

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path_qs, dict(request.headers))
        self.seen.append(seen)
        resp = self._respond(request)
        seen.status = resp.status
        seen.sent = len(resp.body) if isinstance(resp.body, bytes) else 0
        return resp

    def _respond(self, request: web.Request) -> web.Response:
        if self.auth is not None:
            want = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if request.headers.get("Authorization") != want:
                return web.Response(
                    status=401, headers={"WWW-Authenticate": 'Basic realm="idx"'}, text="no"
                )
        if request.path in self.canned:
            status, headers, body = self.canned[request.path]
            return web.Response(status=status, headers=headers, body=body)
        m = re.fullmatch(r"/simple/([^/]+)/", request.path)
        if m:
            return self._page(request, m.group(1))
        m = re.fullmatch(r"/files/([^/]+)", request.path)
        if m:
            return self._file(request, m.group(1))
        return web.Response(status=404, text="not found")

    def _page(self, request: web.Request, name: str) -> web.Response:
        files = self._projects().get(name)
        if files is None:
            headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
            return web.Response(status=404, text="no such project", headers=headers)
        want_json = self.json_api and "vnd.pypi.simple.v1+json" in request.headers.get("Accept", "")
        if want_json:
            body = json.dumps(
                {
                    "meta": {"api-version": "1.1"},
                    "name": name,
                    "files": [
                        {
                            "filename": w.name,
                            "url": f"../../files/{w.name}",
                            "hashes": {"sha256": self._sha(w)} if self.hashes else {},
                            "core-metadata": (
                                {"sha256": hashlib.sha256(wheel_metadata(w)).hexdigest()}
                                if self.metadata
                                else False
                            ),
                            "size": w.stat().st_size,
                        }
                        for w in files
                    ],
                }
            ).encode()
            ctype = "application/vnd.pypi.simple.v1+json"
        else:
            rows = []
            for w in files:
                href = f"../../files/{w.name}"
                if self.hashes:
                    href += f"#sha256={self._sha(w)}"
                attrs = f'href="{html.escape(href)}"'
                if self.metadata:
                    meta_sha = hashlib.sha256(wheel_metadata(w)).hexdigest()
                    attrs += f' data-core-metadata="sha256={meta_sha}"'
                rows.append(f"<a {attrs}>{html.escape(w.name)}</a><br/>")
            body = (
                "<!DOCTYPE html><html><body><h1>Links for "
                + name
                + "</h1>\n"
                + "\n".join(rows)
                + "</body></html>"
            ).encode()
            ctype = "text/html"
        headers = {"Content-Type": ctype}
        if self.cache_control:
            headers["Cache-Control"] = self.cache_control
        if self.etag:
            tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers["ETag"] = tag
            if request.headers.get("If-None-Match") == tag:
                return web.Response(status=304, headers=headers)
        return web.Response(status=200, headers=headers, body=body)

    def _sha(self, w: Path) -> str:
        if w.name in self.wrong_hash:
            return "0" * 64
        return hashlib.sha256(w.read_bytes()).hexdigest()

    def _file(self, request: web.Request, filename: str) -> web.Response:
        if filename.endswith(".metadata"):
            wheel = next((w for w in self.wheels if w.name + ".metadata" == filename), None)
            if wheel is None or not self.metadata:
                return web.Response(status=404, text="no metadata")
            return web.Response(body=wheel_metadata(wheel), content_type="binary/octet-stream")
        wheel = next((w for w in self.wheels if w.name == filename), None)
        if wheel is None:
            return web.Response(status=404, text="no file")
        data = wheel.read_bytes()
        rng = request.headers.get("Range")
        if rng and self.ranges:
            total = len(data)
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m:
                return web.Response(status=416)
            if m.group(1) == "":
                n = int(m.group(2))
                start, end = max(0, total - n), total - 1
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else total - 1, total - 1)
            if start > end:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
            return web.Response(
                status=206,
                body=data[start : end + 1],
                headers={
                    "Content-Range": f"bytes {start}-{end}/{total}",
                    "Content-Type": "application/octet-stream",
                },
            )
        return web.Response(body=data, content_type="application/octet-stream")
