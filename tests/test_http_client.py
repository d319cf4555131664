"""kea.http against real aiohttp.web servers on 127.0.0.x ephemeral ports.

Each test asserts what the servers received: which request carried which credentials.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from kea.http.client import HttpClient
from kea.http.errors import (
    CredentialsNeeded,
    CredentialsRejected,
    MissingLocation,
    NotFound,
    ServerError,
    TLSError,
    TooManyRedirects,
    UnsupportedRedirect,
)
from kea.settings import Settings, load_settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str  # path and query
    user: str | None
    password: str | None
    headers: dict[str, str]


class Server:
    """A recording aiohttp.web server on one loopback address and an ephemeral port."""

    def __init__(
        self, handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ):
        self.handler = handler
        self.host = host
        self.tls = tls
        self.seen: list[Seen] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def __aenter__(self) -> Server:
        async def record(request: web.Request) -> web.StreamResponse:
            user = password = None
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            self.seen.append(
                Seen(request.method, request.path_qs, user, password, dict(request.headers))
            )
            return await self.handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.tls)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def make_settings(
    tmp_path: Path,
    netrc: str = "",
    cli: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    netrc_path = tmp_path / "netrc"
    netrc_path.write_text(netrc)
    full = {"HOME": str(tmp_path), "NETRC": str(netrc_path), "KEA_NO_CONFIG": "1"}
    full.update(env or {})
    return load_settings(cli=cli or {}, env=full, cwd=tmp_path)


def client(settings: Settings) -> HttpClient:
    return HttpClient(settings, backoff_base=0.01)


def ok(text: str = "ok") -> web.Response:
    return web.Response(text=text, content_type="text/html")


def needs(user: str, password: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        return ok(f"hello {user}")

    return handler


# -- redirects and credentials ---------------------------------------------------------------


def test_same_origin_redirect_keeps_url_credentials(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/simple/pkg":
            raise web.HTTPMovedPermanently("/simple/pkg/")
        return await needs("alice", "pw1")(request)

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                host = s.url.replace("http://", "")
                resp = await c.get(f"http://alice:pw1@{host}/simple/pkg", purpose="page")
            assert resp.status == 200 and resp.body == b"hello alice"
            assert resp.url == f"{s.url}/simple/pkg/"  # final URL, userinfo removed
            assert [(x.path, x.user) for x in s.seen] == [
                ("/simple/pkg", "alice"),
                ("/simple/pkg/", "alice"),
            ]
            assert [h.source for h in resp.hops] == ["url", "url"]

    run(scenario())


def test_cross_origin_drops_credentials_and_uses_netrc_of_new_host(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(needs("up-user", "up-pw"), host="127.0.0.3") as upstream:

            async def router(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"{upstream.url}/simple/pkg/")

            async with Server(router, host="127.0.0.2") as r:
                settings = make_settings(
                    tmp_path,
                    netrc="machine 127.0.0.3 login up-user password up-pw\n",
                    cli={"index_url": f"http://router:rpw@127.0.0.2:{r.port}/simple"},
                )
                async with client(settings) as c:
                    resp = await c.get(
                        f"http://router:rpw@127.0.0.2:{r.port}/simple/pkg/",
                        headers={"Cookie": "session=abc"},
                    )
            assert resp.status == 200
            assert [x.user for x in r.seen] == ["router"]
            # The upstream got its own netrc user on the FIRST request, nothing of the router's.
            assert [(x.user, x.password) for x in upstream.seen] == [("up-user", "up-pw")]
            assert "Cookie" not in upstream.seen[0].headers
            assert r.seen[0].headers.get("Cookie") == "session=abc"
            last = resp.hops[-1]
            assert last.origin_changed and last.dropped == f"http://127.0.0.2:{r.port}"
            assert last.source == "netrc machine 127.0.0.3"

    run(scenario())


def test_same_host_other_port_is_cross_origin(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(lambda r: _ok_async(), host="127.0.0.2") as other:

            async def first(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"{other.url}/x")

            async with Server(first, host="127.0.0.2") as s, client(make_settings(tmp_path)) as c:
                resp = await c.get(f"http://u:secret@127.0.0.2:{s.port}/start")
            assert resp.status == 200
            assert s.seen[0].user == "u"
            assert other.seen[0].user is None and "Authorization" not in other.seen[0].headers

    run(scenario())


async def _ok_async() -> web.Response:
    return ok()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses_are_followed_with_get(tmp_path: Path, status: int) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/start":
            return web.Response(status=status, headers={"Location": "/end"})
        return ok("end")

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                resp = await c.get(f"{s.url}/start", purpose="file")
            assert resp.body == b"end"
            assert [(x.method, x.path) for x in s.seen] == [("GET", "/start"), ("GET", "/end")]
            assert [h.status for h in resp.hops] == [status, 200]

    run(scenario())


def test_relative_location_resolved_against_current_url(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/simple/pkg/":
            return web.Response(status=302, headers={"Location": "../other/pkg/"})
        return ok("other")

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                resp = await c.get(f"{s.url}/simple/pkg/")
            assert resp.url == f"{s.url}/simple/other/pkg/"
            assert [x.path for x in s.seen] == ["/simple/pkg/", "/simple/other/pkg/"]

    run(scenario())


def test_redirect_loop_stops_after_ten_hops(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/loop?token=s3cr3t-tok"})

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                with pytest.raises(TooManyRedirects) as e:
                    await c.get(f"{s.url}/loop?token=s3cr3t-tok")
            assert len(s.seen) == 10  # ten hops (requests), the tenth still a redirect: stop
            assert "s3cr3t-tok" not in e.value.message
            assert "too many redirects" in e.value.message
            assert len(e.value.hops) == 10

    run(scenario())


def test_redirect_without_location_and_to_file_url(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/noloc":
            return web.Response(status=302)
        return web.Response(status=302, headers={"Location": "file:///etc/passwd"})

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                with pytest.raises(MissingLocation) as e1:
                    await c.get(f"{s.url}/noloc")
                with pytest.raises(UnsupportedRedirect) as e2:
                    await c.get(f"{s.url}/file")
            assert "without a Location" in e1.value.message and "/noloc" in e1.value.message
            assert "file:///etc/passwd" in e2.value.message
            assert "root:" not in e2.value.message  # nothing was read

    run(scenario())


def test_location_userinfo_used_for_that_hop_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(needs("hop", "hoppw"), host="127.0.0.3") as target:

            async def redirector(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"http://hop:hoppw@127.0.0.3:{target.port}/f")

            async with (
                Server(redirector, host="127.0.0.2") as r,
                client(make_settings(tmp_path)) as c,
            ):
                resp = await c.get(f"{r.url}/start")
                again = await c.get(f"http://127.0.0.3:{target.port}/f")
            assert resp.status == 200
            assert [x.user for x in target.seen] == ["hop", None]  # not cached for later
            assert again.status == 401
            assert all("hoppw" not in h.url for h in resp.hops)

    run(scenario())


# -- 401 handling ----------------------------------------------------------------------------


def test_401_retried_once_to_the_url_that_answered_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(needs("d", "dpw"), host="127.0.0.3") as index:

            async def router(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"{index.url}/simple/pkg/")

            async with Server(router, host="127.0.0.2") as r:
                settings = make_settings(
                    tmp_path,
                    netrc="default login d password dpw\n",
                    cli={"index_url": f"{index.url}/simple"},
                )
                async with client(settings) as c:
                    resp = await c.get(f"{r.url}/pkg/")
                    # The success is cached: the next page of the index gets them up front.
                    second = await c.get(f"{index.url}/simple/other/")
            assert resp.status == 200 and second.status == 200
            assert len(r.seen) == 1 and r.seen[0].user is None  # the router never sees them
            assert [(x.path, x.user) for x in index.seen] == [
                ("/simple/pkg/", None),
                ("/simple/pkg/", "d"),
                ("/simple/other/", "d"),
            ]
            assert [(h.status, h.source, h.retry) for h in resp.hops] == [
                (302, "none", False),
                (401, "none", False),
                (200, "netrc default", True),
            ]
            assert second.hops[0].source == "cache"

    run(scenario())


def test_wrong_credentials_rejected_without_looping(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(needs("bob", "right"), host="127.0.0.2") as s:
            settings = make_settings(
                tmp_path, netrc="machine 127.0.0.2 login bob password wrong-pw\n"
            )
            async with client(settings) as c:
                resp = await c.get(f"{s.url}/simple/pkg/")
            assert resp.status == 401
            assert len(s.seen) == 1  # credentials were sent and rejected: final
            with pytest.raises(CredentialsRejected) as e:
                resp.raise_for_status()
            assert "netrc machine 127.0.0.2" in e.value.message
            assert "rejected" in e.value.message
            assert "wrong-pw" not in e.value.message + (e.value.hint or "")

    run(scenario())


def test_401_without_credentials_anywhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(needs("x", "y"), host="127.0.0.2") as s:
            async with client(make_settings(tmp_path)) as c:
                resp = await c.get(f"{s.url}/simple/pkg/")
            assert len(s.seen) == 1
            with pytest.raises(CredentialsNeeded) as e:
                resp.raise_for_status()
            assert e.value.message == f"{s.url}/simple/pkg/ needs credentials (401 Unauthorized)"
            assert e.value.hint and str(tmp_path / "netrc") in e.value.hint
            assert "keyring (off" in e.value.hint

    run(scenario())


# -- retries ---------------------------------------------------------------------------------


def test_503_retried_with_backoff_then_success(tmp_path: Path) -> None:
    count = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal count
        count += 1
        if count <= 2:
            return web.Response(status=503)
        return ok("finally")

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                resp = await c.get(f"{s.url}/x")
            assert resp.body == b"finally"
            assert len(s.seen) == 3
            assert resp.hops[0].attempts == 3

    run(scenario())


def test_retry_after_is_honoured_and_retries_are_bounded(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "1"})

    async def scenario() -> None:
        settings = make_settings(tmp_path, env={"KEA_HTTP_RETRIES": "1"})
        async with Server(handler) as s:
            async with client(settings) as c:
                start = time.monotonic()
                resp = await c.get(f"{s.url}/x")
                elapsed = time.monotonic() - start
            assert len(s.seen) == 2  # one try + KEA_HTTP_RETRIES=1
            assert elapsed >= 0.9  # waited as the server asked, not the 0.01s backoff
            with pytest.raises(ServerError) as e:
                resp.raise_for_status()
            assert "429" in e.value.message

    run(scenario())


def test_connect_refused_is_a_clean_error(tmp_path: Path) -> None:
    from kea.http.errors import ConnectError

    async def scenario() -> None:
        async with Server(lambda r: _ok_async()) as s:
            port = s.port
        async with client(make_settings(tmp_path, env={"KEA_HTTP_RETRIES": "1"})) as c:
            with pytest.raises(ConnectError) as e:
                await c.get(f"http://u:pw-secret@127.0.0.1:{port}/simple/")
        assert "cannot connect to http://127.0.0.1" in e.value.message
        assert "pw-secret" not in e.value.message

    run(scenario())


# -- range reads, streams, 404 ---------------------------------------------------------------


def test_range_get_and_stream(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1024

    async def handler(request: web.Request) -> web.StreamResponse:
        rng = request.headers.get("Range")
        if rng == "bytes=-100":
            return web.Response(
                status=206,
                body=payload[-100:],
                headers={"Content-Range": f"bytes {len(payload) - 100}-{len(payload) - 1}/*"},
            )
        if request.path == "/missing":
            return web.Response(status=404)
        return web.Response(body=payload, content_type="application/octet-stream")

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                tail = await c.get(
                    f"{s.url}/f.whl", headers={"Range": "bytes=-100"}, purpose="metadata"
                )
                chunks = []
                async with c.stream(f"{s.url}/f.whl", purpose="file") as st:
                    st.raise_for_status()
                    assert st.status == 200 and st.content_length == len(payload)
                    async for chunk in st.iter_chunks(4096):
                        chunks.append(chunk)
                missing = await c.get(f"{s.url}/missing")
            assert tail.status == 206 and tail.body == payload[-100:]
            assert b"".join(chunks) == payload
            assert [x.method for x in s.seen] == ["GET", "GET", "GET"]  # never HEAD
            assert s.seen[1].headers.get("Accept-Encoding") == "identity"
            with pytest.raises(NotFound):
                missing.raise_for_status()

    run(scenario())


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_ctx(ca: trustme.CA, *hosts: str) -> ssl.SSLContext:
    cert = ca.issue_cert(*hosts)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def test_https_to_http_downgrade_sends_nothing(tmp_path: Path, ca: trustme.CA) -> None:
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))

    async def scenario() -> None:
        async with Server(needs("h", "hpw"), host="127.0.0.3") as plain:

            async def secure(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"http://127.0.0.3:{plain.port}/simple/pkg/")

            tls = _server_ctx(ca, "127.0.0.2")
            async with Server(secure, host="127.0.0.2", tls=tls) as s:
                settings = make_settings(
                    tmp_path,
                    netrc="machine 127.0.0.3 login h password hpw\n"
                    "machine 127.0.0.2 login s password spw\n",
                    env={"SSL_CERT_FILE": str(ca_pem)},
                )
                async with client(settings) as c:
                    resp = await c.get(f"{s.url}/simple/pkg/")
            assert s.seen[0].user == "s"  # https: netrc sent
            assert len(plain.seen) == 1 and plain.seen[0].user is None  # http after https: none
            assert resp.status == 401
            with pytest.raises(CredentialsNeeded) as e:
                resp.raise_for_status()
            assert e.value.hint and "over http after a redirect from https" in e.value.hint

    run(scenario())


def test_tls_failure_names_host_and_ca_source(tmp_path: Path, ca: trustme.CA) -> None:
    other = trustme.CA()
    other_pem = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(other_pem))

    async def scenario() -> None:
        async with Server(lambda r: _ok_async(), "127.0.0.2", _server_ctx(ca, "127.0.0.2")) as s:
            settings = make_settings(tmp_path, env={"SSL_CERT_FILE": str(other_pem)})
            async with client(settings) as c:
                with pytest.raises(TLSError) as e:
                    await c.get(f"{s.url}/simple/")
            assert f"127.0.0.2:{s.port}" in e.value.message
            assert f"SSL_CERT_FILE={other_pem}" in e.value.message
            assert s.seen == []
            # --allow-insecure-host skips the check for that host only.
            insecure = make_settings(
                tmp_path,
                env={"SSL_CERT_FILE": str(other_pem)},
                cli={"allow_insecure_host": ["127.0.0.2"]},
            )
            async with client(insecure) as c:
                resp = await c.get(f"{s.url}/simple/")
            assert resp.status == 200

    run(scenario())


# -- proxies ---------------------------------------------------------------------------------


class RecordingProxy:
    """A minimal forward proxy for http:// targets: records each request head and answers
    itself (407 without the expected Proxy-Authorization)."""

    def __init__(self, expected: str) -> None:
        self.expected = expected
        self.heads: list[dict[str, str]] = []
        self.lines: list[str] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> RecordingProxy:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            line, *rest = head.split("\r\n")
            headers = {}
            for h in rest:
                if ":" in h:
                    k, v = h.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            self.lines.append(line)
            self.heads.append(headers)
            if headers.get("proxy-authorization") != self.expected:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            elif line.startswith("CONNECT "):
                host, _, port = line.split()[1].rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()

                async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    try:
                        while data := await r.read(65536):
                            w.write(data)
                            await w.drain()
                    except (ConnectionError, asyncio.CancelledError):
                        pass
                    finally:
                        w.close()

                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
                return
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nproxy"
                )
            await writer.drain()
            writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.4", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def test_proxy_credentials_go_to_the_proxy_only(tmp_path: Path) -> None:
    expected = "Basic " + base64.b64encode(b"pu:ppw").decode()

    async def scenario() -> None:
        async with RecordingProxy(expected) as proxy, Server(lambda r: _ok_async()) as origin:
            env = {"HTTP_PROXY": f"http://pu:ppw@127.0.0.4:{proxy.port}"}
            settings = make_settings(
                tmp_path, netrc="machine 127.0.0.9 login ou password opw\n", env=env
            )
            async with client(settings) as c:
                resp = await c.get("http://127.0.0.9:1/simple/")
            assert resp.body == b"proxy"
            assert proxy.lines == ["GET http://127.0.0.9:1/simple/ HTTP/1.1"]
            assert proxy.heads[0]["proxy-authorization"] == expected
            # NO_PROXY: straight to the origin, which never sees Proxy-Authorization.
            settings = make_settings(tmp_path, env={**env, "NO_PROXY": "127.0.0.1"})
            async with client(settings) as c:
                direct = await c.get(f"{origin.url}/simple/")
            assert direct.status == 200
            assert "Proxy-Authorization" not in origin.seen[0].headers
            assert len(proxy.lines) == 1

    run(scenario())


def test_a_proxy_refusing_an_http_request_is_named_with_a_hint(tmp_path: Path) -> None:
    """Its 407 is the response to the request itself (not to a CONNECT): the error names the
    proxy and where its credentials came from, as for https."""
    from kea.http.errors import ProxyError

    async def scenario() -> None:
        async with RecordingProxy("Basic right") as proxy:
            env = {"HTTP_PROXY": f"http://pu:WRONG-PW@127.0.0.4:{proxy.port}"}
            async with client(make_settings(tmp_path, env=env)) as c:
                resp = await c.get("http://127.0.0.9:1/simple/")
            assert resp.status == 407
            error = resp.error
            assert isinstance(error, ProxyError)
            assert error.message == (
                f"proxy http://127.0.0.4:{proxy.port} refused "
                "http://127.0.0.9:1/simple/ (407 Proxy Authentication Required)"
            )
            assert error.hint == "check the credentials in HTTP_PROXY"

    run(scenario())


def test_https_through_connect_proxy(tmp_path: Path, ca: trustme.CA) -> None:
    expected = "Basic " + base64.b64encode(b"pu:ppw").decode()
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))

    async def scenario() -> None:
        tls = _server_ctx(ca, "127.0.0.2")
        async with (
            RecordingProxy(expected) as proxy,
            Server(needs("ou", "opw"), "127.0.0.2", tls) as origin,
        ):
            env = {
                "HTTPS_PROXY": f"http://pu:ppw@127.0.0.4:{proxy.port}",
                "SSL_CERT_FILE": str(ca_pem),
            }
            settings = make_settings(
                tmp_path, netrc="machine 127.0.0.2 login ou password opw\n", env=env
            )
            async with client(settings) as c:
                resp = await c.get(f"{origin.url}/simple/")
            assert resp.status == 200
            assert proxy.lines == [f"CONNECT 127.0.0.2:{origin.port} HTTP/1.1"]
            assert proxy.heads[0]["proxy-authorization"] == expected
            assert "authorization" not in proxy.heads[0]  # the origin's secret stays in the tunnel
            assert origin.seen[0].user == "ou"
            assert "Proxy-Authorization" not in origin.seen[0].headers

    run(scenario())


def test_offline_refuses_the_network(tmp_path: Path) -> None:
    from kea.http.errors import OfflineError

    async def scenario() -> None:
        async with Server(lambda r: _ok_async()) as s:
            settings = make_settings(tmp_path, cli={"offline": True})
            async with client(settings) as c:
                with pytest.raises(OfflineError):
                    await c.get(f"{s.url}/simple/")
            assert s.seen == []

    run(scenario())


def test_hop_logging_and_many_concurrent_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    async def scenario() -> None:
        async with Server(needs("up", "uppw"), host="127.0.0.3") as up:

            async def router(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"{up.url}{request.path}")

            async with Server(router, host="127.0.0.2") as r:
                settings = make_settings(
                    tmp_path, netrc="machine 127.0.0.3 login up password uppw\n"
                )
                host = r.url.replace("http://", "")
                with caplog.at_level(logging.DEBUG, logger="kea"):
                    async with client(settings) as c:
                        resps = await asyncio.gather(
                            *[c.get(f"http://ru:rpw@{host}/p{i}/") for i in range(50)]
                        )
            assert all(x.status == 200 for x in resps)
            assert len(up.seen) == 50 and all(x.user == "up" for x in up.seen)
            assert all(x.user == "ru" for x in r.seen)
            text = caplog.text
            assert f"dropped credentials of {r.url}" in text
            assert "credentials: netrc machine 127.0.0.3" in text
            assert "rpw" not in text and "uppw" not in text

    run(scenario())


def test_max_bytes_stops_reading_a_body_that_grows_past_it(tmp_path: Path) -> None:
    """Without a Content-Length (chunked), the limit is met as the pieces arrive: the server
    below would send 64 MiB, and the client stops after 1 MiB."""
    from kea.http.errors import TooLarge

    sent: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if request.path == "/small":
            await resp.write(b"x" * 1000)
        else:
            try:
                for _ in range(256):
                    await resp.write(b"x" * 256 * 1024)
                    sent.append(1)
            except (ConnectionError, RuntimeError):
                pass
        await resp.write_eof()
        return resp

    async def scenario() -> None:
        async with Server(handler) as s, client(make_settings(tmp_path)) as c:
            small = await c.get(f"{s.url}/small", max_bytes=1 << 20)
            assert small.body == b"x" * 1000
            with pytest.raises(TooLarge, match=r"larger than 1048576 bytes"):
                await c.get(f"{s.url}/big", max_bytes=1 << 20)
        assert len(sent) < 256

    run(scenario())
