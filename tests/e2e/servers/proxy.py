"""A forward proxy that requires ``Proxy-Authorization`` and records what it was asked.

``CONNECT host:port`` opens a tunnel (for https); an absolute-form request
(``GET http://host:port/path``) is forwarded to the origin with the proxy headers removed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import urlsplit

from tests.e2e.servers.record import Seen, decode_basic
from tests.e2e.servers.web import ServerLoop


class ForwardProxy:
    def __init__(self, loop: ServerLoop, ip: str, users: Mapping[str, str]) -> None:
        self.ip = ip
        self.users = dict(users)
        self.seen_all: list[Seen] = []
        self._loop = loop
        self._server: asyncio.Server | None = None
        self.port = loop.call(self._start())
        self.label = f"proxy {ip}:{self.port}"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"http://{auth}{self.ip}:{self.port}"

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._client, self.ip, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers: list[tuple[str, str]] = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers.append((name.strip(), value.strip()))
            lower = {k.lower(): v for k, v in headers}
            seen = Seen.of(self.label, method, target, lower)
            self.seen_all.append(seen)
            user, password = decode_basic(seen.proxy_authorization)
            length = int(lower.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            if user is None or self.users.get(user) != password:
                seen.status = 407
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="proxy"\r\n'
                    b"Content-Length: 0\r\n\r\n"
                )
                await writer.drain()
                continue
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                seen.status = 200
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await _pipe_both(reader, writer, up_reader, up_writer)
                return
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                seen.status = 400
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            out = [f"{method} {path} HTTP/1.1"]
            for name, value in headers:
                if name.lower() in ("proxy-authorization", "proxy-connection", "connection"):
                    continue
                out.append(f"{name}: {value}")
            out.append("Connection: close")
            up_writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
            await up_writer.drain()
            response = await up_reader.read()
            with contextlib.suppress(ValueError, IndexError):
                seen.status = int(response.split(b" ", 2)[1])
            up_writer.close()
            writer.write(response)
            await writer.drain()
            return

    def seen(self) -> list[Seen]:
        return list(self.seen_all)

    def close(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()

        self._loop.call(_close())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
