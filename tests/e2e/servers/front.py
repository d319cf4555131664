"""A thin recording front for a third-party server that cannot log request headers.

It listens on the public address, records each request (path, Authorization, Proxy-Authorization)
and forwards it unchanged to the real server, whose answer (status, headers, body) it passes back
as is. The real server is still what answers.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from tests.e2e.servers.record import Seen
from tests.e2e.servers.web import ServerLoop

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
    }
)


class RecordingFront:
    def __init__(self, loop: ServerLoop, ip: str, backend: str, *, label: str) -> None:
        self.ip = ip
        self.backend = backend.rstrip("/")
        self._loop = loop
        self.seen_all: list[Seen] = []
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = loop.call(self._start())
        self.label = f"{label} {ip}:{self.port}"
        self.url = f"http://{ip}:{self.port}"

    async def _start(self) -> int:
        self._session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)
        runner = web.ServerRunner(web.Server(self._handle), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.ip, 0)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        seen = Seen.of(self.label, request.method, request.raw_path, request.headers)
        self.seen_all.append(seen)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.backend + request.raw_path,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            data = await upstream.read()
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            seen.status = upstream.status
            return web.Response(status=upstream.status, body=data, headers=out_headers)

    def seen(self, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen_all if s.path.startswith(prefix)]

    def close(self) -> None:
        async def _close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()

        self._loop.call(_close())
