"""Audit of ``kea serve``'s security boundaries, each probed through a real server.

Dependency confusion (every spelling of a private name, HTML and JSON, /files/ URLs), traversal
and symlinks out of a directory route, upload abuse, and what a client can learn about an upstream
(credentials, redirects) from pages, error bodies and headers.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.harness import User, token
from tests.e2e.servers.web import ServerLoop
from tests.e2e.wheels import build_wheel
from tests.serve.conftest import Wheels
from tests.serve.harness import (
    KeaServe,
    eventually,
    http_get,
    listeners,
    process_tree,
    raw_request,
)
from tests.serve.upstream import FakeUpstream

JSON = "application/vnd.pypi.simple.v1+json"


async def _serve(app: web.Application, ip: str) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``ip`` at an ephemeral port: (its runner, for cleanup; the port)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, ip, 0).start()
    return runner, int(runner.addresses[0][1])


@dataclass
class Audit:
    serve: KeaServe
    public: FakeUpstream
    carol: User
    private_dir: Path
    public_dir: Path
    dave: User

    def auth(self, user: User | None = None) -> dict[str, str]:
        user = user or self.carol
        raw = f"{user.name}:{user.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture(scope="module")
def audit(
    tmp_path_factory: pytest.TempPathFactory, loop: ServerLoop, wheels: Wheels
) -> Iterator[Audit]:
    root = tmp_path_factory.mktemp("serve-audit")
    public = FakeUpstream(loop, "127.0.0.11")
    public.add(wheels.priv_public)  # priv-pkg 9.0 on the public upstream: never served
    public.add(wheels.pub)
    private_dir = root / "private"
    build_wheel(private_dir, "priv-pkg", "1.0")
    public_dir = root / "public-local"
    # a public directory route that (wrongly) also holds a private name's file
    build_wheel(public_dir, "loc-pkg", "1.0")
    build_wheel(public_dir, "priv-pkg", "8.0")
    workdir = root / "serve"
    workdir.mkdir()
    carol = User("carol", token("pw-carol-"))
    dave = User("dave", token("pw-dave-"))  # known, may write nowhere
    (workdir / "tokens").write_text(f"carol {carol.password}\ndave {dave.password}\n")
    config = f"""
private = ["priv_*"]

[server]
cache-dir = "cache"
upstream-retries = 0
upstream-timeout = 5
max-upload-size = 200000

[auth]
tokens-file = "tokens"

[[route]]
name = "pubdir"
prefix = "loc-"
directory = "{public_dir}"

# the public catch-all comes before the private route on purpose
[[route]]
name = "pypi"
match = "*"
upstream = "public"

[[route]]
name = "corp"
match = "PRIV.*"
directory = "{private_dir}"
private = true
read = ["carol"]
write = ["carol"]

[[upstream]]
name = "public"
url = "{public.url}/simple"
"""
    serve = KeaServe(workdir, config, ip="127.0.0.12")
    yield Audit(serve, public, carol, private_dir, public_dir, dave)
    serve.stop()
    public.stop()


PRIVATE_SPELLINGS = (
    "priv-pkg",
    "priv_pkg",
    "priv.pkg",
    "Priv-Pkg",
    "PRIV__PKG",
    "priv-._pkg",
    "priv%2Dpkg",
    "priv%5Fpkg",
    "%70riv-pkg",
    "priv%252Dpkg",
)


@pytest.mark.parametrize("spelling", PRIVATE_SPELLINGS)
@pytest.mark.parametrize("accept", [None, JSON, "text/html"])
@pytest.mark.parametrize("authed", [False, True])
def test_private_name_is_never_looked_up_or_served_publicly(
    audit: Audit, spelling: str, accept: str | None, authed: bool
) -> None:
    headers = dict(audit.auth()) if authed else {}
    if accept:
        headers["Accept"] = accept
    url = audit.serve.index + spelling + "/"
    for _ in range(3):  # follow the redirects to the normalised name
        status, got, body = http_get(url, headers)
        if status != 301:
            break
        assert got["Location"].startswith("/simple/")
        url = audit.serve.url + got["Location"]
    # Neither public version, as a file name or as a JSON version (a bare "9.0" would also match
    # the seconds of an upload-time such as 05:59:19.010572Z).
    for leak in (b"priv_pkg-9.0", b"priv_pkg-8.0", b'"9.0"', b'"8.0"'):
        assert leak not in body, (spelling, leak, body)
    if status == 200:
        assert authed and b"priv_pkg-1.0" in body
        assert "/files/corp/priv-pkg/" in body.decode()
    else:
        assert status in (400, 401), (spelling, status, body)
    assert not [s for s in audit.public.seen if "priv" in s.path.lower()]


@pytest.mark.parametrize("route", ["pypi", "pubdir", "corp"])
@pytest.mark.parametrize("project", ["priv-pkg", "priv_pkg", "Priv-Pkg", "priv%2Dpkg", "pub-pkg"])
@pytest.mark.parametrize("version", ["9.0", "8.0"])
def test_private_files_never_come_from_a_public_route(
    audit: Audit, route: str, project: str, version: str
) -> None:
    target = f"/files/{route}/{project}/priv_pkg-{version}-py3-none-any.whl"
    for headers in ({}, audit.auth()):
        status, got, body = http_get(audit.serve.url + target, headers)
        assert status in (400, 401, 404), (target, status)
        assert not body.startswith(b"PK")
        assert "Location" not in got
    assert not [s for s in audit.public.seen if "priv" in s.path.lower()]


def test_project_list_hides_private_names_on_public_routes(audit: Audit) -> None:
    for headers in ({}, audit.auth()):
        status, _, body = http_get(audit.serve.index, {**headers, "Accept": JSON})
        assert status == 200
        names = [p["name"] for p in json.loads(body)["projects"]]
        assert "loc-pkg" in names
        private = [n for n in names if n.replace("_", "-").replace(".", "-").lower() == "priv-pkg"]
        assert private == (["priv-pkg"] if headers else [])  # from the private route, to carol


def test_symlinks_out_of_a_directory_route_are_not_served(audit: Audit, tmp_path: Path) -> None:
    outside = build_wheel(tmp_path / "outside", "loc-secret", "1.0")
    os.symlink(outside, audit.public_dir / outside.name)
    (audit.public_dir / "loc-linkdir").symlink_to(outside.parent, target_is_directory=True)
    status, _, body = http_get(audit.serve.index + "loc-secret/")
    assert status == 404, body
    status, _, body = http_get(audit.serve.url + f"/files/pubdir/loc-secret/{outside.name}")
    assert status == 404 and not body.startswith(b"PK")


@pytest.mark.parametrize(
    "target",
    [
        "/files/pubdir/loc-pkg/..%2F..%2Fserve%2Fkea-serve.toml",
        "/files/pubdir/loc-pkg/%252e%252e%252fkea-serve.toml",
        "/files/pubdir/loc-pkg/..\\..\\kea-serve.toml",
        "/files/pubdir/loc-pkg/x%00.whl",
        "/files/pubdir/%2e%2e/tokens",
        "/files/pubdir/loc-pkg/.%2e/tokens",
        "/files/..%2Fcorp/priv-pkg/priv_pkg-1.0-py3-none-any.whl",
        "/files/pubdir/loc-pkg/loc_pkg-1.0-py3-none-any.whl/..",
        "/simple/loc-pkg%00/",
        "/simple/%2e%2e/",
    ],
)
def test_traversal_variants(audit: Audit, target: str) -> None:
    status, body = raw_request(audit.serve.host, audit.serve.port, target)
    assert status in (400, 404), (target, status)
    assert b"tokens" not in body or status == 404
    assert audit.carol.password.encode() not in body
    assert not body.startswith(b"PK") and b"Traceback" not in body


def _multipart(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    boundary = "kea-audit-boundary"
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
        out += v.encode() + b"\r\n"
    if file is not None:
        name, data = file
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content";'
            f' filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def _post(audit: Audit, body: bytes, ctype: str) -> tuple[int, bytes]:
    status, _, answer = http_get(
        audit.serve.url + "/",
        {**audit.auth(), "Content-Type": ctype},
        method="POST",
        data=body,
    )
    return status, answer


def test_upload_abuse(audit: Audit, tmp_path: Path) -> None:
    w = build_wheel(tmp_path / "up", "priv-pkg", "2.0")
    fields = {":action": "file_upload", "name": "priv-pkg", "version": "2.0"}
    # a path in the file name
    for bad in ("../priv_pkg-2.0-py3-none-any.whl", "sub/priv_pkg-2.0-py3-none-any.whl"):
        status, answer = _post(audit, *_multipart(fields, (bad, w.read_bytes())))
        assert status == 400, answer
    # oversized
    big = b"x" * 300_000
    status, answer = _post(audit, *_multipart(fields, (w.name, big)))
    assert status == 413, answer
    # a file that is not a wheel at all
    status, _ = _post(audit, *_multipart(fields, (w.name, b"not a zip")))
    assert status == 400
    # good, then the same name again: 409, and the first upload is intact
    status, answer = _post(audit, *_multipart(fields, (w.name, w.read_bytes())))
    assert status == 200, answer
    other = build_wheel(tmp_path / "up2", "priv-pkg", "2.0", module_text="X = 1\n")
    status, _ = _post(audit, *_multipart(fields, (w.name, other.read_bytes())))
    assert status == 409
    assert (audit.private_dir / w.name).read_bytes() == w.read_bytes()
    assert not list(audit.private_dir.glob(".tmp-*"))
    assert not list((audit.serve.workdir / "cache" / "uploads-tmp").glob(".tmp-*"))


def test_an_oversized_form_field_is_refused_without_reading_it_all(audit: Audit) -> None:
    """A field is bounded while it is read: the server answers before the client sent it all."""
    boundary = "kea-audit-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\n').encode()
    declared = 64 * 1024 * 1024
    auth = audit.auth()["Authorization"]
    with socket.create_connection((audit.serve.host, audit.serve.port), timeout=10) as s:
        s.sendall(
            (
                f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + declared}\r\nConnection: close\r\n\r\n"
            ).encode()
            + head
        )
        chunk = b"y" * 65536
        sent = 0
        s.settimeout(0.2)
        answer = b""
        deadline = time.monotonic() + 20
        while sent < 8 * 1024 * 1024 and time.monotonic() < deadline:
            try:
                s.sendall(chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
        s.settimeout(10)
        try:
            while data := s.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413")), answer[:200]
    assert b"Traceback" not in answer


def test_tokens_bearer_and_basic_and_401_403(audit: Audit) -> None:
    url = audit.serve.index + "priv-pkg/"
    status, got, _ = http_get(url)
    assert status == 401 and got["WWW-Authenticate"].startswith("Basic realm=")
    assert got["Server"] == "kea-serve"  # no Python/aiohttp versions for a scanner
    assert http_get(url, {"Authorization": f"Bearer {audit.carol.password}"})[0] == 200
    assert http_get(url, {"Authorization": f"Bearer {audit.carol.password}x"})[0] == 401
    assert http_get(url, {"Authorization": "Bearer "})[0] == 401
    assert http_get(url, {"Authorization": "Basic !!!"})[0] == 401
    tok = base64.b64encode(f"__token__:{audit.carol.password}".encode()).decode()
    assert http_get(url, {"Authorization": f"Basic {tok}"})[0] == 200
    wrong = base64.b64encode(f"mallory:{audit.carol.password}".encode()).decode()
    assert http_get(url, {"Authorization": f"Basic {wrong}"})[0] == 401
    # the upstream never sees any client credentials
    assert all(s.authorization is None for s in audit.public.seen)


# -- upstream redirects and what leaks from an upstream ---------------------------------------


@dataclass
class Hop:
    """A file host the upstream redirects file downloads to; records Authorization."""

    loop: ServerLoop
    data: dict[str, bytes]
    seen: list[tuple[str, str | None]]
    port: int = 0

    def __post_init__(self) -> None:
        self.port = self.loop.call(self._start())

    async def _start(self) -> int:
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            self.seen.append((request.path_qs, request.headers.get("Authorization")))
            body = self.data.get(request.match_info["name"])
            if body is None:
                return web.Response(status=404)
            return web.Response(body=body)

        app.router.add_get("/blob/{name}", handle)
        self._runner, port = await _serve(app, "127.0.0.14")
        return port

    def stop(self) -> None:
        self.loop.call(self._runner.cleanup())


def _wheel_link(whl: Path) -> str:
    """An upstream page's anchor for ``whl`` under ``/packages/``, with its sha256."""
    import hashlib

    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    return f'<a href="/packages/{whl.name}#sha256={digest}">{whl.name}</a>'


_SVC = 'username = "svc"\npassword = "${UP_PASSWORD}"'


def _serve_proxy(tmp_path: Path, url: str, ip: str, secret: str, *args: str) -> KeaServe:
    """kea serve on ``ip``, at ``-vvv``, proxying every name to the upstream at ``url`` as user
    svc with the password ``secret`` (``_proxy_config``); ``args``: more command-line options."""
    config = _proxy_config(url)
    return KeaServe(
        tmp_path / "serve", config, ip=ip, env={"UP_PASSWORD": secret}, args=["-vvv", *args]
    )


def _proxy_config(url: str, credentials: str = _SVC, name: str = "up") -> str:
    """A kea-serve.toml proxying every name to one upstream, ``name`` at ``url``, with
    ``credentials`` (TOML lines of its table; by default user svc with the password from
    ``UP_PASSWORD``), and no retries."""
    return f"""
[server]
cache-dir = "cache"
upstream-retries = 0

[[upstream]]
name = "{name}"
url = "{url}"
{credentials}

[[route]]
match = "*"
upstream = "{name}"
"""


def test_upstream_redirects_never_reach_the_client_nor_carry_credentials(
    tmp_path: Path, loop: ServerLoop
) -> None:
    """The upstream (basic auth) answers its file URL with a 302 to a signed URL on another
    host: kea serve follows it itself, without the upstream's credentials on the other host, and
    the client sees neither the Location, the signature, nor the upstream's password."""
    w = build_wheel(tmp_path / "w", "hop-pkg", "1.0")
    seen: list[tuple[str, str | None]] = []
    hop = Hop(loop, {w.name: w.read_bytes()}, seen)
    secret = token("up-secret-")
    signature = token("sig-")
    up_seen: list[tuple[str, str | None]] = []

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        body = _wheel_link(w)

        async def page(request: web.Request) -> web.StreamResponse:
            up_seen.append((request.path_qs, request.headers.get("Authorization")))
            return web.Response(text=body, content_type="text/html")

        async def file(request: web.Request) -> web.StreamResponse:
            up_seen.append((request.path_qs, request.headers.get("Authorization")))
            loc = f"http://127.0.0.14:{hop.port}/blob/{w.name}?X-Amz-Signature={signature}"
            return web.Response(status=302, headers={"Location": loc})

        async def broken(request: web.Request) -> web.StreamResponse:
            return web.Response(status=302, headers={"Location": f"http://u:{secret}@[::"})

        app.router.add_get("/simple/hop-pkg/", page)
        app.router.add_get("/simple/bad-pkg/", broken)
        app.router.add_get("/packages/{name}", file)
        return await _serve(app, "127.0.0.13")

    runner, port = loop.call(start())
    serve = _serve_proxy(tmp_path, f"http://127.0.0.13:{port}/simple", "127.0.0.15", secret)
    try:
        status, headers, body = http_get(serve.index + "hop-pkg/")
        assert status == 200 and f"/files/up/hop-pkg/{w.name}" in body.decode()
        assert "127.0.0.13" not in body.decode()
        status, headers, data = http_get(serve.url + f"/files/up/hop-pkg/{w.name}")
        assert status == 200 and data == w.read_bytes()
        assert "Location" not in headers
        assert all(signature not in v and secret not in v for v in headers.values())
        # the upstream got kea serve's credentials; the other host got none
        assert up_seen and all(a is not None and a.startswith("Basic ") for _, a in up_seen)
        assert seen and all(a is None for _, a in seen)
        status, headers, body = http_get(serve.index + "bad-pkg/")
        assert status == 502 and body.count(b"\n") == 1
        for text in (body.decode(), json.dumps(headers), serve.text()):
            assert secret not in text and signature not in text
        status, _, metrics = http_get(serve.url + "/metrics")
        assert status == 200 and secret.encode() not in metrics
    finally:
        serve.stop()
        loop.call(runner.cleanup())
        hop.stop()
    log = serve.text()
    assert secret not in log and signature not in log
    assert base64.b64encode(f"svc:{secret}".encode()).decode() not in log


def test_a_secret_in_an_upstream_url_is_refused(tmp_path: Path) -> None:
    """A redirect route hands its upstream URL to every client: a token in its query would
    leak, so the config refuses credentials anywhere in an upstream URL."""
    from kea.errors import UsageError
    from kea.serve.config import parse_config

    data = {
        "upstream": [{"name": "u", "url": "https://host/simple/?token=abcdef123456"}],
        "route": [{"match": "*", "upstream": "u", "mode": "redirect"}],
    }
    with pytest.raises(UsageError) as info:
        parse_config(data, tmp_path / "kea-serve.toml", {})
    assert "abcdef123456" not in str(info.value)
    assert "upstream[1].url" in str(info.value)


def test_proxy_passes_through_yanked_requires_python_and_pep700(
    tmp_path: Path, loop: ServerLoop
) -> None:
    """An upstream PEP 691 page's yanked reason, requires-python, size and upload-time reach the
    client in both formats, under kea serve's own /files/ URLs."""
    digest = "ab" * 32
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "meta-pkg",
        "versions": ["1.0", "2.0"],
        "files": [
            {
                "filename": "meta_pkg-1.0-py3-none-any.whl",
                "url": "https://files.example/meta_pkg-1.0-py3-none-any.whl",
                "hashes": {"sha256": digest},
                "requires-python": ">=3.8",
                "yanked": "broken build",
                "size": 1234,
                "upload-time": "2024-01-02T03:04:05.000000Z",
            },
            {
                "filename": "meta_pkg-2.0.tar.gz",
                "url": "https://files.example/meta_pkg-2.0.tar.gz",
                "hashes": {"sha256": "cd" * 32},
                "size": 99,
            },
        ],
    }

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()

        async def page(request: web.Request) -> web.StreamResponse:
            return web.Response(
                body=json.dumps(doc).encode(),
                content_type="application/vnd.pypi.simple.v1+json",
            )

        app.router.add_get("/simple/meta-pkg/", page)
        return await _serve(app, "127.0.0.16")

    runner, port = loop.call(start())
    config = f"""
[server]
cache-dir = "cache"

[[upstream]]
name = "up"
url = "http://127.0.0.16:{port}/simple"

[[route]]
match = "*"
upstream = "up"
"""
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.17")
    try:
        status, headers, body = http_get(serve.index + "meta-pkg/", {"Accept": JSON})
        assert status == 200 and headers["Content-Type"] == JSON
        got = json.loads(body)
        assert got["versions"] == ["1.0", "2.0"]
        first, second = got["files"]
        assert first["url"] == "/files/up/meta-pkg/meta_pkg-1.0-py3-none-any.whl"
        assert first["yanked"] == "broken build" and first["requires-python"] == ">=3.8"
        assert first["size"] == 1234 and first["upload-time"] == "2024-01-02T03:04:05.000000Z"
        assert first["hashes"] == {"sha256": digest}
        assert second.get("yanked", False) is False and second["size"] == 99
        status, _, body = http_get(serve.index + "meta-pkg/", {"Accept": "text/html"})
        page = body.decode()
        assert status == 200 and "files.example" not in page
        assert 'data-yanked="broken build"' in page
        assert 'data-requires-python="&gt;=3.8"' in page
        assert f'href="/files/up/meta-pkg/meta_pkg-1.0-py3-none-any.whl#sha256={digest}"' in page
    finally:
        serve.stop()
        loop.call(runner.cleanup())


def test_an_upstream_refusing_credentials_tells_the_client_nothing_about_them(
    tmp_path: Path, loop: ServerLoop
) -> None:
    """A 401 from the upstream is a 502 to the client; which file the credentials came from
    (a server-side path) is for the operator's log only."""

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()

        async def page(request: web.Request) -> web.StreamResponse:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})

        app.router.add_get("/simple/{name}/", page)
        return await _serve(app, "127.0.0.18")

    runner, port = loop.call(start())
    secret = token("nrc-")
    netrc = tmp_path / "secret-dir" / "server-netrc"
    netrc.parent.mkdir()
    netrc.write_text(f"machine 127.0.0.18 login svc password {secret}\n")
    config = _proxy_config(f"http://127.0.0.18:{port}/simple", f'netrc = "{netrc}"')
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.19", args=["-vvv"])
    try:
        status, headers, body = http_get(serve.index + "any-pkg/")
        assert status == 502, body
        text = body.decode()
        assert "refused kea serve's credentials" in text
        assert "secret-dir" not in text and secret not in text
        assert "WWW-Authenticate" not in headers
        time.sleep(0.1)
        assert "secret-dir" in serve.text()  # the operator learns where they came from
    finally:
        serve.stop()
        loop.call(runner.cleanup())
    assert secret not in serve.text()


def test_unknown_htpasswd_users_cost_as_much_as_known_ones(tmp_path: Path) -> None:
    """A wrong password for an unknown user takes as long as for a known one (bcrypt runs
    either way), so response times do not tell which user names exist."""
    import asyncio

    from passlib.apache import HtpasswdFile

    from kea.serve.clientauth import ClientAuth

    if not __import__("importlib").util.find_spec("bcrypt"):
        pytest.skip("bcrypt is not installed")
    path = tmp_path / "htpasswd"
    ht = HtpasswdFile(str(path), new=True, default_scheme="bcrypt")
    ht.set_password("alice", "right")
    ht.save()
    auth = ClientAuth(path, None)

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def cost(user: str) -> float:
        best = float("inf")
        for i in range(3):
            start = time.perf_counter()
            found, presented = asyncio.run(auth.identify(basic(user, f"wrong{i}")))
            best = min(best, time.perf_counter() - start)
            assert found is None and presented
        return best

    assert asyncio.run(auth.identify(basic("alice", "right")))[0] == "alice"
    known, unknown = cost("alice"), cost("nobody")
    assert unknown > known * 0.3, (known, unknown)


def test_an_upload_from_a_user_who_may_write_nowhere_is_403_before_the_body(audit: Audit) -> None:
    """The answer comes before the (large) body is read: no temp file, no waiting for it."""
    auth = audit.auth(audit.dave)["Authorization"]
    with socket.create_connection((audit.serve.host, audit.serve.port), timeout=10) as s:
        s.sendall(
            (
                f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {100 * 1024 * 1024}\r\nConnection: close\r\n\r\n--b\r\n"
            ).encode()
        )
        s.settimeout(5)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b"dave" in answer


def _sdist(out: Path, filename: str, name: str, version: str) -> Path:
    import io
    import tarfile

    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    top = filename[: -len(".tar.gz")]
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as tf:
        for member, data in ((f"{top}/PKG-INFO", pkg_info), (f"{top}/setup.py", b"")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_an_sdist_whose_pkg_info_disagrees_is_400(audit: Audit, tmp_path: Path) -> None:
    fields = {":action": "file_upload", "name": "priv-pkg", "version": "3.0"}
    for name, version in (("other-pkg", "3.0"), ("priv-pkg", "3.1")):
        bad = _sdist(tmp_path / name / version, "priv_pkg-3.0.tar.gz", name, version)
        status, answer = _post(audit, *_multipart(fields, (bad.name, bad.read_bytes())))
        assert status == 400 and b"does not match its metadata" in answer, answer
    status, answer = _post(audit, *_multipart(fields, ("priv_pkg-3.0.tar.gz", b"\x1f\x8bjunk")))
    assert status == 400, answer
    assert not (audit.private_dir / "priv_pkg-3.0.tar.gz").exists()
    good = _sdist(tmp_path / "good", "priv_pkg-3.0.tar.gz", "Priv.Pkg", "3.0")
    status, answer = _post(audit, *_multipart(fields, (good.name, good.read_bytes())))
    assert status == 200, answer
    assert (audit.private_dir / good.name).read_bytes() == good.read_bytes()


def test_an_unreachable_upstream_is_named_not_located(tmp_path: Path) -> None:
    """Clients learn which upstream failed and why, never its URL (the operator's log has it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.23", 0))
        port = s.getsockname()[1]
    config = _proxy_config(f"http://127.0.0.23:{port}/internal/simple", "", name="corp")
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.24")
    try:
        for target in ("/simple/any-pkg/", "/files/corp/any-pkg/any_pkg-1.0.tar.gz"):
            status, _, body = http_get(serve.url + target)
            text = body.decode()
            assert status == 502 and text.startswith("upstream corp unreachable"), text
            assert "127.0.0.23" not in text and "/internal/" not in text
            assert "refused" in text.lower()
        time.sleep(0.1)
        assert f"127.0.0.23:{port}" in serve.text()
    finally:
        serve.stop()


def test_a_corrupt_local_metadata_cache_entry_is_detected(tmp_path: Path) -> None:
    """METADATA extracted from a local wheel is cached; a cache entry that rotted (or was
    tampered with) is never advertised or served: it is extracted again from the wheel."""
    import hashlib
    import zipfile

    w = build_wheel(tmp_path / "pk", "meta-rot", "1.0", requires=("dep-a>=1",))
    with zipfile.ZipFile(w) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        real = zf.read(name)
    config = f"""
[server]
cache-dir = "{tmp_path / "cache"}"

[[route]]
name = "local"
match = "*"
directory = "{tmp_path / "pk"}"
"""

    def fetch() -> tuple[str, bytes]:
        serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.25")
        try:
            status, _, body = http_get(serve.index + "meta-rot/", {"Accept": JSON})
            assert status == 200
            (f,) = json.loads(body)["files"]
            status, _, meta = http_get(serve.url + f["url"] + ".metadata")
            assert status == 200
            return f["core-metadata"]["sha256"], meta
        finally:
            serve.stop()

    digest, meta = fetch()
    assert meta == real and digest == hashlib.sha256(real).hexdigest()
    (entry,) = [p for p in (tmp_path / "cache" / "metadata-v1").rglob("*") if p.is_file()]
    entry.write_bytes(entry.read_bytes().replace(b"dep-a", b"evil"))
    digest, meta = fetch()
    assert meta == real and digest == hashlib.sha256(real).hexdigest()


def test_the_normalising_redirect_keeps_the_query_as_sent(audit: Audit) -> None:
    for query in ("a=%26b%3Dc", "a=%0d%0aSet-Cookie:x=1"):
        status, got, _ = http_get(f"{audit.serve.index}Loc_Pkg/?{query}")
        assert status == 301 and got["Location"] == f"/simple/loc-pkg/?{query}"
        assert "Set-Cookie" not in got


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_a_replaced_worker_proxies_with_the_upstreams_secret_and_never_shows_it(
    tmp_path: Path, loop: ServerLoop
) -> None:
    """A worker started in place of a dead one gets the config's text and the environment its
    ``${UP_PASSWORD}`` comes from, not the secret itself: it fetches from the upstream with
    the credentials, and nothing the server writes (at -vvv) or answers shows them."""
    w = build_wheel(tmp_path / "w", "swap-pkg", "1.0")
    secret = token("swap-secret-")
    want = "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()
    refused: list[str] = []

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        body = _wheel_link(w)

        @web.middleware
        async def basic(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.headers.get("Authorization") != want:
                refused.append(request.path)
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="u"'})
            return await handler(request)

        async def page(request: web.Request) -> web.StreamResponse:
            return web.Response(
                text=body, content_type="text/html", headers={"Cache-Control": "max-age=0"}
            )

        async def file(request: web.Request) -> web.StreamResponse:
            return web.Response(body=w.read_bytes())

        app.middlewares.append(basic)
        app.router.add_get("/simple/swap-pkg/", page)
        app.router.add_get("/packages/{name}", file)
        return await _serve(app, "127.0.0.21")

    runner, port = loop.call(start())
    serve = _serve_proxy(
        tmp_path, f"http://127.0.0.21:{port}/simple", "127.0.0.22", secret, "--workers", "2"
    )
    try:
        first = serve.proc.pid
        [victim] = process_tree(first) - {first}
        os.kill(victim, signal.SIGKILL)
        assert eventually(lambda: victim not in process_tree(first))
        assert eventually(lambda: len(process_tree(first)) == 2 and listeners(serve.port) == 2)
        for _ in range(20):  # about half reach the new worker; each page is fetched anew
            status, _, body = http_get(serve.index + "swap-pkg/")
            assert status == 200 and f"/files/up/swap-pkg/{w.name}" in body.decode()
            status, headers, data = http_get(f"{serve.url}/files/up/swap-pkg/{w.name}")
            assert status == 200 and data == w.read_bytes()
            assert all(secret not in v for v in headers.values())
        assert refused == []  # every upstream request carried the credentials
        status, _, metrics = http_get(serve.url + "/metrics")
        assert status == 200 and secret.encode() not in metrics
    finally:
        serve.stop()
        loop.call(runner.cleanup())
    log = serve.text()
    assert "another starts in" in log and "worker 1 started" in log
    assert secret not in log and want.split()[1] not in log
