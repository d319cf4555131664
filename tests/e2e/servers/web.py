"""Our own small servers (aiohttp.web), run on one background event loop.

``ScriptHost`` is a real HTTP(S) server on one loopback IP whose routes each test registers
(redirectors, protected pages, a pre-signed file host, ...). It records every request it gets.
Only cases that no third-party server expresses use it.
"""

from __future__ import annotations

import asyncio
import base64
import html
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from tests.e2e.servers.record import Seen

T = TypeVar("T")


class ServerLoop:
    """An asyncio loop in a daemon thread; servers live here while the tests block on kea."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Seen], Reply]


# -- reply builders ---------------------------------------------------------------------------


def ok(body: bytes | str = b"ok", content_type: str = "text/plain") -> Handler:
    data = body.encode() if isinstance(body, str) else body

    def handler(seen: Seen) -> Reply:
        return Reply(200, data, {"Content-Type": content_type})

    return handler


def links_page(hrefs: Iterable[str], title: str = "links") -> Handler:
    """A PEP 503 page whose anchors are ``hrefs`` (text = last path segment)."""
    anchors = []
    for href in hrefs:
        text = href.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        anchors.append(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br>')
    page = (
        "<!DOCTYPE html><html><head><title>"
        + html.escape(title)
        + "</title></head><body>\n"
        + "\n".join(anchors)
        + "\n</body></html>\n"
    )
    return ok(page, "text/html")


def redirect(status: int, location: str | None) -> Handler:
    def handler(seen: Seen) -> Reply:
        headers = {"Location": location} if location is not None else {}
        return Reply(status, b"", headers)

    return handler


def protected(users: Mapping[str, str], inner: Handler, *, wrong_status: int = 401) -> Handler:
    """401 (with a Basic challenge) without credentials, ``wrong_status`` for wrong ones."""

    def handler(seen: Seen) -> Reply:
        challenge = {"WWW-Authenticate": 'Basic realm="kea-e2e"'}
        if not seen.authorization:
            return Reply(401, b"needs credentials", challenge)
        if seen.user is None or users.get(seen.user) != seen.password:
            return Reply(wrong_status, b"bad credentials", challenge if wrong_status == 401 else {})
        return inner(seen)

    return handler


def presigned(body: bytes) -> Handler:
    """A pre-signed blob host: any Authorization header → 400, like S3/GCS/Azure."""

    def handler(seen: Seen) -> Reply:
        if seen.authorization is not None:
            return Reply(400, b"Only one auth mechanism allowed", {"Content-Type": "text/xml"})
        return Reply(200, body, {"Content-Type": "application/octet-stream"})

    return handler


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- the scripted host ------------------------------------------------------------------------


class ScriptHost:
    """A real HTTP(S) server on ``ip`` (ephemeral port) with per-test routes, recording all."""

    def __init__(
        self, loop: ServerLoop, ip: str, *, tls: ssl.SSLContext | None, label: str
    ) -> None:
        self.ip = ip
        self.tls = tls
        self._loop = loop
        self._routes: dict[str, Handler] = {}
        self._prefix_routes: dict[str, Handler] = {}
        self.seen_all: list[Seen] = []
        self._runner: web.ServerRunner | None = None
        self.port = loop.call(self._start())
        self.label = f"{label} {ip}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """``scheme://ip:port`` (no trailing slash)."""
        return f"{self.scheme}://{self.ip}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.ip}:{self.port}"

    async def _start(self) -> int:
        server = web.Server(self._handle)
        runner = web.ServerRunner(server, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.ip, 0, ssl_context=self.tls)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        seen = Seen.of(self.label, request.method, request.raw_path, request.headers)
        self.seen_all.append(seen)
        await request.read()
        path = request.raw_path.split("?", 1)[0]
        handler = self._routes.get(path)
        if handler is None:
            best = ""
            for prefix, h in self._prefix_routes.items():
                if path.startswith(prefix) and len(prefix) > len(best):
                    best, handler = prefix, h
        reply = handler(seen) if handler else Reply(404, b"not found")
        seen.status = reply.status
        if request.method == "HEAD":
            return web.Response(status=reply.status, headers=reply.headers)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    def route(self, path: str, handler: Handler) -> str:
        """Serve ``handler`` at ``path`` (exact; a trailing ``*`` makes it a prefix). → full URL."""
        if path.endswith("*"):
            self._prefix_routes[path[:-1]] = handler
            return self.url + path[:-1]
        self._routes[path] = handler
        return self.url + path

    def drop_routes(self, prefix: str) -> None:
        for table in (self._routes, self._prefix_routes):
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]

    def seen(self, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen_all if s.path.startswith(prefix)]

    def close(self) -> None:
        if self._runner is not None:
            self._loop.call(self._runner.cleanup())
