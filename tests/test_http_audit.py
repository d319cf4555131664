"""Findings of the audit of kea.http/kea.auth against specs/auth.md, each against a real loopback
server that records what it received (or a real ``keyring`` executable)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from kea.auth.credentials import Credentials
from kea.auth.keyring import SubprocessKeyring
from kea.http.errors import HttpError, UnsupportedRedirect
from kea.http.response import Hop, Response
from tests.test_auth_keyring import calls, install_keyring
from tests.test_http_client import Server, client, make_settings, needs, run

SIG = "SIGSECRET0123"


def test_same_origin_redirect_to_a_signed_url_gets_no_ambient_credentials(
    tmp_path: Path,
) -> None:
    """Rule 10 beats rule 4: netrc credentials of a page do not follow a same-origin redirect to
    a pre-signed URL (GCS/S3 answer 400 to a signature plus an Authorization header)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/simple/pkg/":
            return await needs("u", "upw")(request)
        if request.path == "/pkg.whl":
            raise web.HTTPFound(f"/bucket/pkg.whl?X-Goog-Signature={SIG}&X-Goog-Credential=c")
        if "Authorization" in request.headers:
            return web.Response(status=400, text="signature and Authorization")
        return web.Response(body=b"wheel")

    async def scenario() -> None:
        async with Server(handler) as s:
            settings = make_settings(tmp_path, netrc="machine 127.0.0.1 login u password upw\n")
            async with client(settings) as c:
                page = await c.get(f"{s.url}/simple/pkg/")
                resp = await c.get(f"{s.url}/pkg.whl", purpose="file")
            assert page.status == 200
            assert resp.status == 200 and resp.body == b"wheel"
            assert [(x.path.split("?")[0], x.user) for x in s.seen] == [
                ("/simple/pkg/", "u"),
                ("/pkg.whl", "u"),
                ("/bucket/pkg.whl", None),
            ]
            assert resp.hops[-1].source == "none" and not resp.hops[-1].sent_credentials

    run(scenario())


def test_same_origin_redirect_to_a_signed_url_keeps_explicit_url_credentials(
    tmp_path: Path,
) -> None:
    """Credentials the user wrote into the URL are explicit, not ambient: rule 4 still holds."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/a/":
            raise web.HTTPFound(f"/b/?sig={SIG}")
        return await needs("u", "upw")(request)

    async def scenario() -> None:
        async with Server(handler) as s:
            host = s.url.removeprefix("http://")
            async with client(make_settings(tmp_path)) as c:
                resp = await c.get(f"http://u:upw@{host}/a/")
            assert resp.status == 200
            assert [x.user for x in s.seen] == ["u", "u"]

    run(scenario())


@pytest.mark.parametrize("location", ["http://[oops/x", "http://u:pw@127.0.0.2:notaport/x"])
def test_malformed_location_is_a_one_line_error(tmp_path: Path, location: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": location})

    async def scenario() -> None:
        async with Server(handler) as s:
            async with client(make_settings(tmp_path)) as c:
                with pytest.raises(UnsupportedRedirect) as e:
                    await c.get(f"{s.url}/simple/?token={SIG}")
            assert "\n" not in e.value.message
            assert SIG not in e.value.message and SIG not in repr(e.value)
            assert f"{s.url}/simple/" in e.value.message
            # it said "only http and https redirects are followed ('http' is not)"
            assert e.value.message.endswith("its host or port does not parse)"), e.value.message
            assert "pw" not in e.value.message
            assert len(s.seen) == 1

    run(scenario())


async def _raw_server(answer: bytes) -> tuple[asyncio.Server, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    "answer",
    [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"],
    ids=["status-line", "header"],
)
def test_malformed_response_is_a_redacted_kea_error(tmp_path: Path, answer: bytes) -> None:
    async def scenario() -> None:
        server, port = await _raw_server(answer)
        async with server:
            settings = make_settings(tmp_path, env={"KEA_HTTP_RETRIES": "0"})
            async with client(settings) as c:
                with pytest.raises(HttpError) as e:
                    await c.get(f"http://u:upw@127.0.0.1:{port}/f?X-Amz-Signature={SIG}")
        text = f"{e.value.message} {e.value.hint} {e.value!r}"
        assert "\n" not in e.value.message
        assert f"127.0.0.1:{port}" in e.value.message and "malformed" in e.value.message
        assert SIG not in text and "upw" not in text

    run(scenario())


def test_reprs_hide_tokens_and_signatures() -> None:
    token = Credentials("TOKEN123")  # a username alone is a token
    assert "TOKEN123" not in repr(token) and "TOKEN123" not in str(token)
    assert "alice" in repr(Credentials("alice", "pw")) and "pw" not in repr(
        Credentials("alice", "pw")
    )
    url = f"https://h.example/f.whl?X-Amz-Signature={SIG}"
    hop = Hop(url=url, status=200, source="none", sent_credentials=False)
    resp = Response(status=200, url=url, headers={"Set-Cookie": "s=COOKIESECRET"}, body=b"x")
    for obj in (hop, resp):
        assert SIG not in repr(obj) and "COOKIESECRET" not in repr(obj)
        assert "h.example/f.whl" in repr(obj)


def test_reprs_of_what_holds_credentials_show_none_of_them() -> None:
    from kea.auth.netrc import NetrcEntry
    from kea.auth.store import IndexAuth
    from kea.auth.urls import origin_of, split_userinfo
    from kea.http.proxy import Proxy
    from kea.settings import Index

    split = split_userinfo(f"https://bob:PW-URL@h.example/simple/?X-Amz-Signature={SIG}")
    assert split.password == "PW-URL"  # the secret is kept, for the request only
    entry = NetrcEntry("h.example", "bob", "PW-NETRC", "ACCOUNT-NETRC")
    index = IndexAuth(
        index=Index(url="https://h.example/simple/", name="corp"),
        url="https://h.example/simple/",
        root="https://h.example/simple/",
        origin=origin_of("https://h.example/simple/"),
        root_path="/simple/",
        url_user="bob",
        url_password="PW-URL",
        env_user="bob",
        env_password="PW-ENV",
    )
    proxy = Proxy(f"http://proxy.example:3128/?X-Amz-Signature={SIG}", Credentials("p", "PW-PROXY"))
    for obj in (split, entry, index, proxy):
        text = f"{obj!r} {obj}"
        for secret in ("PW-URL", "PW-NETRC", "ACCOUNT-NETRC", "PW-ENV", "PW-PROXY", SIG):
            assert secret not in text, (type(obj).__name__, text)
    assert "h.example" in repr(split) and "h.example" in repr(entry) and "corp" in repr(index)
    assert "proxy.example" in repr(proxy)


def test_keyring_lookup_survives_a_cancelled_first_asker(tmp_path: Path) -> None:
    """~50 requests share one keyring call; the first asker being cancelled (a sibling task
    failed) must neither cancel the others nor make them start a second call."""
    env, log = install_keyring(tmp_path, {"svc alice": "s3cret"})
    slow = tmp_path / "bin" / "keyring"
    slow.write_text(
        slow.read_text().replace("if key in answers:", "time.sleep(0.5)\nif key in answers:")
    )

    async def scenario() -> None:
        kr = SubprocessKeyring(env)
        first = asyncio.create_task(kr.get_password("svc", "alice"))
        await asyncio.sleep(0.05)
        others = [asyncio.create_task(kr.get_password("svc", "alice")) for _ in range(49)]
        await asyncio.sleep(0.05)
        first.cancel()
        results = await asyncio.gather(*others, return_exceptions=True)
        assert results == ["s3cret"] * 49, results[:3]
        assert first.cancelled()
        assert kr.calls == 1

    run(scenario())
    assert calls(log) == [["get", "svc", "alice"]]


def test_importing_the_client_does_not_import_aiohttp() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import kea.http.client, kea.http.response, kea.auth.store, kea.cli.auth_cmd\n"
        "print('heavy=' + ','.join(n for n in ('aiohttp', 'rich') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "heavy="
