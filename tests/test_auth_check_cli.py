"""``kea auth check URL`` as a user runs it: a subprocess against real loopback servers."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path

from aiohttp import web

from tests.test_http_client import Server


async def kea(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    netrc = tmp_path / "netrc"
    if not netrc.exists():
        netrc.write_text("")
    full = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "NETRC": str(netrc),
        "KEA_NO_CONFIG": "1",
        "KEA_HTTP_RETRIES": "0",
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kea",
        "auth",
        "check",
        *args,
        env=full,
        cwd=str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def protected(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Authorization") != basic("up-user", "up-s3cret"):
        return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
    return web.json_response(
        {"meta": {"api-version": "1.0"}, "files": []},
        content_type="application/vnd.pypi.simple.v1+json",
    )


def test_seed_case_router_redirect_to_protected_upstream(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(protected, host="127.0.0.3") as up:

            async def router(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"{up.url}/simple{request.path}")

            async with Server(router, host="127.0.0.2") as r:
                (tmp_path / "netrc").write_text(
                    "machine 127.0.0.3 login up-user password up-s3cret\n"
                )
                code, out, err = await kea(tmp_path, f"{r.url}/pkg/", "-v")
            assert code == 0, err
            lines = out.splitlines()
            assert lines[0] == f"GET {r.url}/pkg/"
            assert lines[1] == f"hop 1: 302 {r.url}/pkg/ | credentials: none"
            assert lines[2] == (
                f"hop 2: 200 {up.url}/simple/pkg/ | origin changed to {up.url}"
                " | credentials: netrc machine 127.0.0.3"
            )
            assert lines[3].startswith("final: 200 OK, content type application/vnd.pypi")
            assert [x.user for x in up.seen] == ["up-user"]  # on its first request
            assert [x.user for x in r.seen] == [None]
            assert "up-s3cret" not in out + err
            assert "Accept" in up.seen[0].headers
            assert "application/vnd.pypi.simple.v1+json" in up.seen[0].headers["Accept"]

    asyncio.run(scenario())


def test_401_without_credentials_exits_1_naming_where_kea_looked(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(protected, host="127.0.0.2") as up:
            code, out, err = await kea(tmp_path, f"{up.url}/simple/pkg/")
        assert code == 1
        assert "hop 1: 401" in out
        err_lines = err.splitlines()
        assert f"error: {up.url}/simple/pkg/ needs credentials (401 Unauthorized)" in err_lines
        hint = next(line for line in err_lines if line.startswith("hint:"))
        assert "the URL" in hint and "KEA_INDEX_<NAME>_*" in hint
        assert str(tmp_path / "netrc") in hint and "keyring (off" in hint

    asyncio.run(scenario())


def test_url_under_configured_index_gets_its_credentials(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Server(protected, host="127.0.0.2") as up:
            code, out, err = await kea(
                tmp_path,
                f"{up.url}/simple/pkg/",
                "--index",
                f"corp={up.url}/simple",
                env={"KEA_INDEX_CORP_USERNAME": "up-user", "KEA_INDEX_CORP_PASSWORD": "up-s3cret"},
            )
        assert code == 0, err
        assert "credentials: index 'corp' env" in out
        assert [x.user for x in up.seen] == ["up-user"]

    asyncio.run(scenario())


def test_nothing_secret_at_vvv(tmp_path: Path) -> None:
    """Userinfo, netrc password, Location userinfo and a signature never reach the terminal."""
    sig = "SIGabc123secret"

    async def scenario() -> None:
        async with Server(protected, host="127.0.0.3") as up:

            async def router(request: web.Request) -> web.StreamResponse:
                if request.path == "/pkg/":
                    raise web.HTTPFound(f"/hop?X-Amz-Signature={sig}")
                raise web.HTTPFound(f"http://loc-user:loc-pw-9@127.0.0.3:{up.port}/simple/pkg/")

            async with Server(router, host="127.0.0.2") as r:
                (tmp_path / "netrc").write_text("machine 127.0.0.2 login rt password router-pw-7\n")
                code, out, err = await kea(
                    tmp_path, f"http://idx:idx-pw-5@127.0.0.2:{r.port}/pkg/", "-vvv"
                )
            assert code == 1  # loc-user's credentials are rejected by the upstream
            assert "rejected the credentials from url" in err
            both = out + err
            for secret in ("idx-pw-5", "router-pw-7", "loc-pw-9", sig, "up-s3cret"):
                assert secret not in both, secret
            for user, pw in (("idx", "idx-pw-5"), ("loc-user", "loc-pw-9")):
                assert base64.b64encode(f"{user}:{pw}".encode()).decode() not in both
            assert "DEBUG kea.http" in err  # -vvv really logged the hops

    asyncio.run(scenario())
