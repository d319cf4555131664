"""Proxy and redirect routes in front of a real pypiserver (TLS, basic auth) and a public host.

The protected upstream is pypiserver behind gunicorn TLS (``tests.e2e.servers.pypi``); only kea
serve holds its credentials (from ``${ENV}`` references). The public upstream is a recording
host that also carries ``priv-pkg`` with a higher version: that one must never be served.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import User, token
from tests.e2e.servers.pypi import PypiServer, write_htpasswd
from tests.e2e.servers.record import describe
from tests.e2e.servers.tls import Tls
from tests.e2e.servers.web import ServerLoop
from tests.serve.conftest import Private, Wheels
from tests.serve.harness import CLIENTS, Installer, KeaServe, has_module, http_get
from tests.serve.upstream import FakeUpstream


def write_bcrypt_htpasswd(path: Path, users: dict[str, str]) -> None:
    """htpasswd entries in bcrypt (``htpasswd -B``); apr1 when the bcrypt backend is missing."""
    from passlib.apache import HtpasswdFile

    scheme = "bcrypt" if has_module("bcrypt") else "apr_md5_crypt"
    ht = HtpasswdFile(str(path), new=True, default_scheme=scheme)
    for user, password in users.items():
        ht.set_password(user, password)
    ht.save()


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


@dataclass
class ProxySetup:
    serve: KeaServe
    public: FakeUpstream
    private: Private
    carol: User  # kea serve's own user, allowed on the private route
    dave: User  # kea serve's own user, not allowed on the private route

    def index(self, user: User) -> str:
        return f"http://{user.name}:{user.password}@{self.serve.host}:{self.serve.port}/simple/"


def proxy_config(
    public_url: str, private_url: str, *, mode: str = "proxy", first_routes: str = ""
) -> str:
    """The public catch-all and the private route; ``first_routes`` (TOML: routes, upstreams)
    come before them."""
    return f"""
private = ["priv-*"]

[server]
cache-dir = "cache"
page-ttl = 0
upstream-retries = 0
upstream-timeout = 5

[auth]
htpasswd = "htpasswd"

[[upstream]]
name = "public"
url = "{public_url}/simple"

[[upstream]]
name = "corp"
url = "{private_url}/simple"
username = "${{CORP_USER}}"
password = "${{CORP_PASSWORD}}"
{first_routes}
# The public catch-all comes first on purpose: private names must still never reach it.
[[route]]
name = "pypi"
match = "*"
upstream = "public"

[[route]]
name = "corp"
prefix = "priv-"
upstream = "corp"
mode = "{mode}"
private = true
read = ["carol"]
"""


def public_only(public_url: str, server: str = "") -> str:
    """kea serve in front of the one public upstream (``server``: more ``[server]`` lines)."""
    return f"""
[server]
cache-dir = "cache"
{server}
[[upstream]]
name = "public"
url = "{public_url}/simple"

[[route]]
name = "pypi"
match = "*"
upstream = "public"
"""


def start_proxy(
    root: Path, loop: ServerLoop, tls: Tls, wheels: Wheels, private: Private, first_routes: str = ""
) -> ProxySetup:
    """kea serve (``proxy_config``) in front of a recording public host (``priv-pkg`` 9.0 and
    ``pub-pkg``) and the private pypiserver; its users carol (bcrypt) and dave (apr1)."""
    public = FakeUpstream(loop, "127.0.0.3")
    public.add(wheels.priv_public)
    public.add(wheels.pub)
    carol, dave = User("carol", token("pw-carol-")), User("dave", token("pw-dave-"))
    workdir = root / "serve"
    workdir.mkdir()
    write_bcrypt_htpasswd(workdir / "htpasswd", {carol.name: carol.password})
    # dave's entry is apr1 (Apache's MD5): both schemes verify
    from passlib.apache import HtpasswdFile

    ht = HtpasswdFile(str(workdir / "htpasswd"), default_scheme="apr_md5_crypt")
    ht.set_password(dave.name, dave.password)
    ht.save()
    serve = KeaServe(
        workdir,
        proxy_config(public.url, private.server.url, first_routes=first_routes),
        ip="127.0.0.5",
        env={
            "CORP_USER": private.serve_user.name,
            "CORP_PASSWORD": private.serve_user.password,
            "SSL_CERT_FILE": str(tls.ca_pem),
        },
    )
    return ProxySetup(serve, public, private, carol, dave)


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    loop: ServerLoop,
    tls: Tls,
    wheels: Wheels,
    private: Private,
) -> Iterator[ProxySetup]:
    setup = start_proxy(tmp_path_factory.mktemp("serve-proxy"), loop, tls, wheels, private)
    yield setup
    setup.serve.stop()
    setup.public.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_private_package_through_the_proxy(
    client: str, setup: ProxySetup, tmp_path: Path, wheels: Wheels
) -> None:
    pypi = setup.private.server
    mark_pypi, mark_serve = pypi.mark(), setup.serve.mark()
    installer = Installer(tmp_path)
    result, venv = installer.install(client, setup.index(setup.carol), "priv-pkg")
    assert result.returncode == 0, result.output
    # the private 1.0, never the public 9.0
    assert installer.version_of(venv, "priv_pkg") == "1.0"
    assert not any("priv" in s.path for s in setup.public.seen), describe(setup.public.seen)

    # kea serve: the client authenticated as carol, nothing failed
    seen = setup.serve.access(mark_serve)
    assert any(a.path == "/simple/priv-pkg/" and a.user == "carol" for a in seen), seen
    # 206: uv reads wheel metadata with range requests once the file is cached
    assert all(a.status in (200, 206) for a in seen), seen
    # pypiserver: only kea serve's credentials, never the client's
    upstream = pypi.seen(mark_pypi)
    assert any(s.path == "/simple/priv-pkg/" for s in upstream), describe(upstream)
    assert all(s.user == setup.private.serve_user.name for s in upstream), describe(upstream)
    assert all(s.status in (200, 304) for s in upstream), describe(upstream)
    # the client never saw the upstream
    assert pypi.netloc not in result.output
    assert setup.private.serve_user.password not in setup.serve.text()


def test_public_package_gets_no_private_credentials(setup: ProxySetup, tmp_path: Path) -> None:
    installer = Installer(tmp_path)
    result, venv = installer.install("kea", setup.index(setup.dave), "pub-pkg")
    assert result.returncode == 0, result.output
    assert installer.version_of(venv, "pub_pkg") == "1.0"
    got = setup.public.requests("/simple/pub-pkg/") + setup.public.requests("/packages/pub")
    assert got and all(s.authorization is None for s in got), describe(got)


def test_client_auth_401_and_403(setup: ProxySetup) -> None:
    serve = setup.serve
    entries = dict(
        line.split(":", 1) for line in (serve.workdir / "htpasswd").read_text().splitlines()
    )
    assert entries["dave"].startswith("$apr1$")
    if has_module("bcrypt"):  # carol's entry is bcrypt: kea serve verifies both schemes
        assert entries["carol"].startswith("$2")
    status, headers, body = http_get(serve.index + "priv-pkg/")
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="kea"'
    wrong = User("carol", "not-her-password")
    status, headers, _ = http_get(serve.index + "priv-pkg/", {"Authorization": wrong.header})
    assert status == 401
    status, _, body = http_get(serve.index + "priv-pkg/", {"Authorization": setup.dave.header})
    assert status == 403 and b"dave" in body
    # public routes need nothing
    assert http_get(serve.index + "pub-pkg/")[0] == 200
    # a private file cannot be fetched through the public route's /files/ path
    status, _, _ = http_get(
        serve.url + "/files/pypi/priv-pkg/priv_pkg-9.0-py3-none-any.whl",
        {"Authorization": setup.carol.header},
    )
    assert status == 404
    assert not any("priv" in s.path for s in setup.public.seen)


def test_another_upstreams_links_never_carry_the_private_upstreams_credentials(
    setup: ProxySetup, wheels: Wheels
) -> None:
    """The public upstream's page for ``lure`` links to the private upstream's file: once
    straight (dropped: a page lists only its project's files, as pip reads it) and once
    through a file of ``lure`` that redirects there (followed, with the public route's
    credentials: none). kea serve chose credentials by the URL's origin, so anyone could read
    a private package through a public page (found by a black-box audit)."""
    pypi, serve = setup.private.server, setup.serve
    private_file = f"{pypi.url}/packages/{wheels.priv.name}"
    setup.public.moved["lure-1.0-py3-none-any.whl"] = private_file
    setup.public.pages["lure"] = (
        f'<html><body><a href="{private_file}">{wheels.priv.name}</a>\n'
        '<a href="../../packages/lure-1.0-py3-none-any.whl">lure-1.0-py3-none-any.whl</a>\n'
        '<a href="file:///etc/lure-2.0-py3-none-any.whl">x</a></body></html>\n'
    )
    mark = pypi.mark()
    status, _, body = http_get(serve.index + "lure/")
    assert status == 200
    assert wheels.priv.name.encode() not in body and b"lure-2.0" not in body, body
    assert b"lure-1.0-py3-none-any.whl" in body
    status, _, _ = http_get(f"{serve.url}/files/pypi/lure/{wheels.priv.name}")
    assert status == 404
    status, _, _ = http_get(f"{serve.url}/files/pypi/lure/lure-1.0-py3-none-any.whl")
    assert status == 502
    seen = pypi.seen(mark)
    assert seen and all(s.user is None for s in seen), describe(seen)
    assert setup.private.serve_user.password not in serve.text()


def test_a_file_not_everyone_may_read_is_neither_shared_nor_cached_for_all(
    setup: ProxySetup, wheels: Wheels
) -> None:
    """A private file went out as ``public, max-age=31536000, immutable``: a reverse proxy in
    front of kea serve handed it to anonymous clients. And the file bodies were one store for
    every route, found by sha256: a public page listing a file with a private file's sha256
    was answered with the private body. (Both found by a black-box audit.)"""
    serve = setup.serve
    private = f"{serve.url}/files/corp/priv-pkg/{wheels.priv.name}"
    for _ in range(2):  # from the upstream, then from kea serve's cache
        status, headers, body = http_get(private, {"Authorization": setup.carol.header})
        assert status == 200 and body == wheels.priv.read_bytes()
        assert headers["Cache-Control"] == "private, max-age=31536000, immutable"
        assert headers["Vary"] == "Authorization"
    status, headers, _ = http_get(f"{serve.url}/files/pypi/pub-pkg/{wheels.pub.name}")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"

    digest = hashlib.sha256(wheels.priv.read_bytes()).hexdigest()
    setup.public.pages["dedup"] = (
        '<html><body><a href="../../packages/dedup-1.0-py3-none-any.whl#sha256='
        f'{digest}">dedup-1.0-py3-none-any.whl</a></body></html>\n'
    )
    status, _, body = http_get(f"{serve.url}/files/pypi/dedup/dedup-1.0-py3-none-any.whl")
    assert status == 404, status  # the public upstream has no such file
    assert body != wheels.priv.read_bytes()


def test_a_file_the_upstream_replaced_is_fetched_again(setup: ProxySetup, tmp_path: Path) -> None:
    """The page lists the new file's sha256; kea serve kept serving the body it had cached
    under that file name, which pip then refused as a hash mismatch (found by a black-box
    audit)."""
    from tests.e2e.wheels import build_wheel

    serve = setup.serve
    old = build_wheel(tmp_path / "old", "swap-pkg", "1.0")
    new = build_wheel(tmp_path / "new", "swap-pkg", "1.0", requires=("pub-pkg",))
    assert old.name == new.name and old.read_bytes() != new.read_bytes()
    url = f"{serve.url}/files/pypi/swap-pkg/{old.name}"
    setup.public.add(old)
    assert http_get(serve.index + "swap-pkg/")[0] == 200
    assert http_get(url)[2] == old.read_bytes()
    setup.public.add(new)  # same name, other bytes
    status, _, page = http_get(serve.index + "swap-pkg/")  # page-ttl = 0: fetched again
    assert status == 200 and hashlib.sha256(new.read_bytes()).hexdigest().encode() in page
    status, _, body = http_get(url)
    assert status == 200 and body == new.read_bytes()


def test_a_client_leaving_before_the_upstream_answers_fails_no_other(
    setup: ProxySetup, tmp_path: Path
) -> None:
    """The first request of a file went away while the upstream was slow; the requests waiting
    on its fetch all got 500 (found by a black-box audit). Now the file is fetched all the
    same: the second client gets it, and it is cached."""
    import socket
    import threading

    from tests.e2e.wheels import build_wheel

    serve = setup.serve
    wheel = build_wheel(tmp_path, "slow-pkg", "1.0")
    setup.public.add(wheel)
    setup.public.faults[wheel.name] = "slow"
    setup.public.slow_seconds = 1.0
    try:
        assert http_get(serve.index + "slow-pkg/")[0] == 200
        target = f"/files/pypi/slow-pkg/{wheel.name}"
        with socket.create_connection((serve.host, serve.port), timeout=10) as first:
            first.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            got: list[tuple[int, bytes]] = []
            second = threading.Thread(
                target=lambda: got.append(http_get(serve.url + target)[::2]), daemon=True
            )
            time.sleep(0.2)
            second.start()
            time.sleep(0.2)
        # the first client is gone (closed) while the upstream still waits
        second.join(timeout=30)
        assert got == [(200, wheel.read_bytes())]
        assert len(setup.public.requests(f"/packages/{wheel.name}")) == 1
        assert http_get(serve.url + target)[2] == wheel.read_bytes()  # from the cache now
        assert len(setup.public.requests(f"/packages/{wheel.name}")) == 1
        assert "internal error" not in serve.text()
    finally:
        del setup.public.faults[wheel.name]


def test_a_cache_kea_serve_cannot_write_costs_the_saving_not_the_answer(
    setup: ProxySetup,
) -> None:
    """A page that could not be saved was a 500 for the client (found by a black-box audit,
    with a cache directory kea serve could not write to); now the answer goes out and the log
    says what could not be kept."""
    serve = setup.serve
    pages = serve.workdir / "cache" / "pages-v1" / "pypi"
    aside = pages.with_name("pypi.aside")
    if pages.exists():
        pages.rename(aside)
    pages.write_text("in the way\n")  # every save of this route's pages now fails
    try:
        status, _, body = http_get(serve.index + "pub-pkg/")
        assert status == 200 and b"pub_pkg-1.0" in body
        assert "cannot write to the cache" in serve.text()
    finally:
        pages.unlink()
        if aside.exists():
            aside.rename(pages)


def test_an_upstream_page_over_max_page_size_is_refused(
    tmp_path: Path, loop: ServerLoop, wheels: Wheels
) -> None:
    """A page of any size was read whole (1.5 GB took RSS to 3 GB) and parsed on the event
    loop (found by a black-box audit): now a page over max-page-size is a 502 once that many
    bytes arrived, and the server answers others meanwhile."""
    public = FakeUpstream(loop, "127.0.0.3")
    public.add(wheels.pub)
    public.pages["huge"] = "<html><body><!--" + "x" * 200_000 + "--></body></html>\n"
    config = public_only(public.url, "max-page-size = 65536")
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.7")
    try:
        status, _, body = http_get(serve.index + "huge/")
        assert status == 502 and b"over 65536 bytes" in body, body
        assert http_get(serve.index + "pub-pkg/")[0] == 200
        assert "internal error" not in serve.text()
    finally:
        serve.stop()
        public.stop()


def test_after_a_restart_the_page_on_disk_decides_which_body_is_current(
    tmp_path: Path, loop: ServerLoop
) -> None:
    """Found reviewing 24ecfdf: the replaced-file check read only the page in the worker's
    memory, so a worker started after the page was refreshed served the old body by its
    pointer. And a page kept on disk before pages were filtered listed a file of another
    project until the upstream's page changed."""
    import json

    from tests.e2e.wheels import build_wheel

    public = FakeUpstream(loop, "127.0.0.3")
    old = build_wheel(tmp_path / "old", "swap-pkg", "1.0")
    new = build_wheel(tmp_path / "new", "swap-pkg", "1.0", requires=("pub-pkg",))
    public.add(old)
    config = public_only(public.url, "page-ttl = 0")
    workdir = tmp_path / "serve"
    url = "/files/pypi/swap-pkg/" + old.name
    serve = KeaServe(workdir, config, ip="127.0.0.8")
    try:
        assert http_get(serve.index + "swap-pkg/")[0] == 200
        assert http_get(serve.url + url)[2] == old.read_bytes()  # its pointer: the old body
        public.add(new)
        assert http_get(serve.index + "swap-pkg/")[0] == 200  # the new page, on disk
    finally:
        serve.stop()
    saved = workdir / "cache" / "pages-v1" / "pypi" / "swap-pkg.json"
    doc = json.loads(saved.read_text())
    doc["files"].append({**doc["files"][0], "filename": "other_pkg-1.0-py3-none-any.whl"})
    saved.write_text(json.dumps(doc))  # as a page kept before the filter could be
    serve = KeaServe(workdir, config, ip="127.0.0.8")
    try:
        assert http_get(serve.url + url)[2] == new.read_bytes()
        status, _, page = http_get(serve.index + "swap-pkg/")
        assert status == 200 and b"other_pkg" not in page
        assert http_get(serve.url + "/files/pypi/swap-pkg/other_pkg-1.0-py3-none-any.whl")[0] == 404
    finally:
        serve.stop()
        public.stop()


def test_a_file_is_served_when_the_cache_cannot_keep_it(setup: ProxySetup, tmp_path: Path) -> None:
    """Found reviewing faaa8ea: a cache kea serve cannot write to still made file requests
    fail (the fetch lock's directory, the body's temporary file: 500 or 503). Now the file is
    streamed from the upstream, checked against its hash, and not kept."""
    from tests.e2e.wheels import build_wheel

    serve = setup.serve
    wheel = build_wheel(tmp_path, "nokeep-pkg", "1.0")
    setup.public.add(wheel)
    cache = serve.workdir / "cache"
    moved = []
    for name in ("files-v2", "locks"):
        place = cache / name
        if place.exists():
            place.rename(place.with_name(name + ".aside"))
            moved.append(place)
        place.write_text("in the way\n")
    try:
        url = f"{serve.url}/files/pypi/nokeep-pkg/{wheel.name}"
        assert http_get(serve.index + "nokeep-pkg/")[0] == 200
        for _ in range(2):  # not kept: fetched again, and served again
            status, _, body = http_get(url)
            assert status == 200 and body == wheel.read_bytes()
        assert len(setup.public.requests(f"/packages/{wheel.name}")) == 2
        assert "cannot write to the cache" in serve.text()
        assert "internal error" not in serve.text()
    finally:
        for name in ("files-v2", "locks"):
            (cache / name).unlink()
        for place in moved:
            place.with_name(place.name + ".aside").rename(place)


def test_a_page_trickling_in_times_out_as_a_whole(tmp_path: Path, loop: ServerLoop) -> None:
    """upstream-timeout bounded each read, so a page sent a byte at a time held its client for
    as long as the upstream liked, then answered 502 (found by a black-box audit)."""
    public = FakeUpstream(loop, "127.0.0.3")
    public.faults["slowpoke"] = "trickle"
    config = public_only(
        public.url,
        "upstream-timeout = 1\nupstream-connect-timeout = 1\nupstream-retries = 0",
    )
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.9")
    try:
        start = time.monotonic()
        status, _, body = http_get(serve.index + "slowpoke/")
        assert status == 504 and b"timed out" in body, (status, body)
        assert time.monotonic() - start < 10
    finally:
        serve.stop()
        public.stop()


def test_metrics(setup: ProxySetup) -> None:
    http_get(setup.serve.index + "pub-pkg/")
    status, headers, body = http_get(setup.serve.url + "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'kea_serve_requests_total{route="pypi",status="200"}' in text
    assert 'kea_serve_upstream_latency_seconds_count{upstream="public"}' in text
    assert "kea_serve_cache_bytes_total" in text


def test_private_name_with_upstream_down_is_502_never_public(
    tmp_path: Path, loop: ServerLoop, wheels: Wheels
) -> None:
    public = FakeUpstream(loop, "127.0.0.3")
    public.add(wheels.priv_public)
    down = f"http://127.0.0.6:{free_port('127.0.0.6')}"
    (tmp_path / "serve").mkdir()
    write_htpasswd(tmp_path / "serve" / "htpasswd", {"carol": "pw"})
    secret = token("pw-corp-")
    serve = KeaServe(
        tmp_path / "serve",
        proxy_config(public.url, down),
        ip="127.0.0.5",
        env={"CORP_USER": "svc", "CORP_PASSWORD": secret},
    )
    try:
        auth = {"Authorization": User("carol", "pw").header}
        status, _, body = http_get(serve.index + "priv-pkg/", auth)
        assert status == 502
        text = body.decode()
        assert text.count("\n") == 1 and text.startswith("upstream corp unreachable")
        status, _, _ = http_get(
            serve.url + "/files/corp/priv-pkg/priv_pkg-1.0-py3-none-any.whl", auth
        )
        assert status == 502
        assert public.seen == []  # never a fall-through to the public route
        assert secret not in serve.text() and "Traceback" not in serve.text()
    finally:
        serve.stop()
        public.stop()


def test_second_install_from_cache_with_upstream_stopped(
    tmp_path: Path, tls: Tls, wheels: Wheels, loop: ServerLoop
) -> None:
    svc = User("svc", token("pw-svc-"))
    pypi = PypiServer(
        tmp_path / "pypi",
        "127.0.0.7",
        tls=tls,
        users={svc.name: svc.password},
        packages=wheels.private_dir,
    )
    public = FakeUpstream(loop, "127.0.0.3")
    (tmp_path / "serve").mkdir()
    write_htpasswd(tmp_path / "serve" / "htpasswd", {"carol": "pw"})
    serve = KeaServe(
        tmp_path / "serve",
        proxy_config(public.url, pypi.url),
        ip="127.0.0.5",
        env={
            "CORP_USER": svc.name,
            "CORP_PASSWORD": svc.password,
            "SSL_CERT_FILE": str(tls.ca_pem),
        },
    )
    try:
        index = f"http://carol:pw@{serve.host}:{serve.port}/simple/"
        installer = Installer(tmp_path / "clients")
        result, _ = installer.install("pip", index, "priv-pkg")
        assert result.returncode == 0, result.output
        fetched = [s.path for s in pypi.seen()]
        assert "/simple/priv-pkg/" in fetched
        assert any(p.startswith("/packages/priv_pkg-1.0") for p in fetched), fetched
        pypi.stop()
        mark = serve.mark()
        for client in ("uv", "kea"):
            result, venv = installer.install(client, index, "priv-pkg")
            assert result.returncode == 0, (client, result.output)
            assert installer.version_of(venv, "priv_pkg") == "1.0"
        seen = serve.access(mark)
        assert seen and all(a.status in (200, 206) for a in seen), seen
        status, headers, _ = http_get(
            serve.index + "priv-pkg/", {"Authorization": User("carol", "pw").header}
        )
        assert status == 200 and "Stale" in headers.get("Warning", "")
    finally:
        serve.stop()
        pypi.stop()
        public.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_redirect_mode_with_the_clients_netrc(
    client: str, tmp_path: Path, tls: Tls, private: Private, loop: ServerLoop
) -> None:
    public = FakeUpstream(loop, "127.0.0.3")
    config = (
        proxy_config(public.url, private.server.url, mode="redirect")
        .replace('read = ["carol"]\n', "")
        .replace('[auth]\nhtpasswd = "htpasswd"\n', "")
        .replace('username = "${CORP_USER}"\npassword = "${CORP_PASSWORD}"\n', "")
    )
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.5")
    try:
        installer = Installer(tmp_path / "client", {"SSL_CERT_FILE": str(tls.ca_pem)})
        bob = private.client_user
        netrc = installer.home / ".netrc"
        netrc.write_text(f"machine {private.server.ip} login {bob.name} password {bob.password}\n")
        netrc.chmod(0o600)
        mark_pypi = private.server.mark()
        args = ("--cert", str(tls.ca_pem)) if client == "pip" else ()
        result, venv = installer.install(client, serve.index, "priv-pkg", args=args)
        assert result.returncode == 0, result.output
        assert installer.version_of(venv, "priv_pkg") == "1.0"
        seen = serve.access()
        assert [(a.path, a.status) for a in seen] == [("/simple/priv-pkg/", 302)]
        status, headers, _ = http_get(serve.index + "priv-pkg/")
        assert (status, headers["Location"]) == (302, f"{private.server.url}/simple/priv-pkg/")
        upstream = private.server.seen(mark_pypi)
        authed = [s for s in upstream if s.authorization]
        assert authed and all(s.user == bob.name for s in authed), describe(upstream)
        assert any(s.path.startswith("/packages/priv_pkg") and s.status == 200 for s in upstream)
        assert public.seen == []
    finally:
        serve.stop()
        public.stop()


@pytest.mark.parametrize("source", ["netrc", "token-file"])
def test_upstream_credentials_from_netrc_or_token_file(
    source: str, tmp_path: Path, tls: Tls, private: Private
) -> None:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    user = private.serve_user
    if source == "netrc":
        (workdir / "upstream.netrc").write_text(
            f"machine {private.server.ip} login {user.name} password {user.password}\n"
        )
        creds = 'netrc = "upstream.netrc"'
    else:
        (workdir / "corp-token").write_text(user.password + "\n")
        creds = f'username = "{user.name}"\ntoken-file = "corp-token"'
    config = f"""
[server]
cache-dir = "cache"
[[upstream]]
name = "corp"
url = "{private.server.url}/simple"
{creds}
[[route]]
match = "*"
upstream = "corp"
"""
    assert user.password not in config
    serve = KeaServe(workdir, config, ip="127.0.0.5", env={"SSL_CERT_FILE": str(tls.ca_pem)})
    try:
        mark = private.server.mark()
        status, _, body = http_get(serve.index + "priv-pkg/")
        assert status == 200 and b"/files/corp/priv-pkg/priv_pkg-1.0-py3-none-any.whl" in body
        seen = private.server.seen(mark)
        assert seen and all(s.user == user.name and s.status == 200 for s in seen), describe(seen)
        assert user.password not in serve.text()
    finally:
        serve.stop()
