"""The subprocess keyring: a real ``keyring`` executable on PATH that logs its calls."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from kea.auth.keyring import SubprocessKeyring
from kea.auth.store import CredentialStore
from kea.settings import load_settings
from tests.test_http_client import Server, make_settings

SCRIPT = """#!{python}
import json, sys, time
log = {log!r}
with open(log, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
answers = {answers!r}
args = sys.argv[1:]
if args[:2] == ["--mode", "creds"]:
    key = "creds " + args[3]
else:
    key = args[1] + " " + args[2]
if {hang!r}:
    time.sleep(30)
if key in answers:
    print(answers[key])
    sys.exit(0)
sys.exit(1)
"""


def install_keyring(
    tmp_path: Path, answers: dict[str, str], hang: bool = False
) -> tuple[dict[str, str], Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = tmp_path / "keyring.log"
    script = bindir / "keyring"
    script.write_text(
        SCRIPT.format(python=sys.executable, log=str(log), answers=answers, hang=hang)
    )
    script.chmod(0o755)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return env, log


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_once_per_service_and_user_even_concurrently(tmp_path: Path) -> None:
    env, log = install_keyring(tmp_path, {"svc alice": "kpw"})
    kr = SubprocessKeyring(env)

    async def scenario() -> list[str | None]:
        return list(
            await asyncio.gather(
                *[kr.get_password("svc", "alice") for _ in range(5)],
                kr.get_password("svc", "nobody"),
                kr.get_password("svc", "nobody"),
            )
        )

    results = asyncio.run(scenario())
    assert results == ["kpw"] * 5 + [None, None]
    assert sorted(map(tuple, calls(log))) == [("get", "svc", "alice"), ("get", "svc", "nobody")]
    assert kr.calls == 2


def test_creds_mode_for_no_username(tmp_path: Path) -> None:
    env, log = install_keyring(tmp_path, {"creds svc": "u1\nsecret1"})
    kr = SubprocessKeyring(env)
    creds = asyncio.run(kr.get_credentials("svc"))
    assert creds is not None and (creds.username, creds.password) == ("u1", "secret1")
    assert calls(log) == [["--mode", "creds", "get", "svc"]]


def test_hanging_keyring_times_out_warns_and_is_not_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, log = install_keyring(tmp_path, {"svc alice": "kpw"}, hang=True)
    kr = SubprocessKeyring(env, timeout=0.5)

    async def scenario() -> tuple[str | None, str | None]:
        first = await kr.get_password("svc", "alice")
        second = await kr.get_password("svc2", "bob")
        return first, second

    assert asyncio.run(scenario()) == (None, None)
    assert len(calls(log)) == 1
    err = capsys.readouterr().err
    assert "keyring did not answer within 0.5s" in err
    assert not kr.available


def test_missing_executable_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kr = SubprocessKeyring({"PATH": str(tmp_path / "empty")})
    assert asyncio.run(kr.get_password("svc", "u")) is None
    assert "no `keyring` executable on PATH" in capsys.readouterr().err


def test_username_only_index_asks_keyring_first(tmp_path: Path) -> None:
    """Case 15 in small: index URL with a username only; keyring gives the password; one call."""

    async def handler(request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(b"tok-user:from-keyring").decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        return web.Response(text="ok")

    async def scenario() -> None:
        from kea.http.client import HttpClient

        async with Server(handler, host="127.0.0.2") as s:
            index = f"http://tok-user@127.0.0.2:{s.port}/simple"
            env, log = install_keyring(tmp_path, {f"{s.url}/simple tok-user": "from-keyring"})
            settings = make_settings(
                tmp_path, cli={"index_url": index, "keyring_provider": "subprocess"}, env=env
            )
            async with HttpClient(settings, backoff_base=0.01) as c:
                a = await c.get(f"{s.url}/simple/a/")
                b = await c.get(f"{s.url}/simple/b/")
            assert (a.status, b.status) == (200, 200)
            assert [x.user for x in s.seen] == ["tok-user", "tok-user"]  # first request each
            assert calls(log) == [["get", f"{s.url}/simple", "tok-user"]]
            assert a.hops[0].source == "keyring"

    asyncio.run(scenario())


def test_keyring_on_cross_origin_hop_uses_target_index_username(tmp_path: Path) -> None:
    """Case 16 in small: router → other origin that is a configured index with a username."""

    async def upstream_handler(request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(b"up:kr-pw").decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        return web.Response(text="ok")

    async def scenario() -> None:
        from kea.http.client import HttpClient

        async with Server(upstream_handler, host="127.0.0.3") as up:

            async def router(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(f"{up.url}/simple{request.path}")

            async with Server(router, host="127.0.0.2") as r:
                env, log = install_keyring(tmp_path, {f"127.0.0.3:{up.port} up": "kr-pw"})
                settings = make_settings(
                    tmp_path,
                    cli={
                        "index_url": f"{r.url}/",
                        "index": [f"up=http://up@127.0.0.3:{up.port}/simple"],
                        "keyring_provider": "subprocess",
                    },
                    env=env,
                )
                async with HttpClient(settings, backoff_base=0.01) as c:
                    resp = await c.get(f"{r.url}/pkg/")
            assert resp.status == 200
            assert [x.user for x in r.seen] == [None]
            assert [x.user for x in up.seen] == ["up"]
            # Asked with the index URL first, then host:port, with the index's username.
            assert calls(log) == [
                ["get", f"{up.url}/simple", "up"],
                ["get", f"127.0.0.3:{up.port}", "up"],
            ]

    asyncio.run(scenario())


def test_keyring_off_means_never_called(tmp_path: Path) -> None:
    env, log = install_keyring(tmp_path, {"x y": "z"})
    settings = load_settings(
        cli={"index_url": "https://y@h.example/simple"},
        env={"HOME": str(tmp_path), "KEA_NO_CONFIG": "1", **env},
        cwd=tmp_path,
    )
    store = CredentialStore(settings)
    d = asyncio.run(store.reactive("https://h.example/simple/p/"))
    assert d.credentials is not None and d.credentials.password is None  # a token, as written
    assert calls(log) == []
