"""SSL_CERT_DIR and SSL_CLIENT_CERT against real TLS servers on loopback (trustme CAs).

``SSL_CERT_DIR`` is a directory of CA certificates under OpenSSL's hashed names (``<hash>.0``);
it replaces the system store. ``SSL_CLIENT_CERT`` is one PEM holding a client certificate and its
key, presented to servers that require one.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from kea.errors import KeaError
from kea.http.errors import TLSError
from tests.test_http_client import Server, client, make_settings, needs, run


def _server_ctx(ca: trustme.CA, host: str, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(ctx)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode())
    return ctx


def _hashed_dir(directory: Path, *cas: trustme.CA) -> Path:
    """A CA directory as OpenSSL reads it: each certificate under ``<subject hash>.0``."""
    directory.mkdir()
    for n, ca in enumerate(cas):
        pem = directory / f"ca{n}.pem"
        ca.cert_pem.write_to_path(str(pem))
        digest = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(pem)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (directory / f"{digest}.0").write_bytes(pem.read_bytes())
        pem.unlink()  # only the hashed name remains: OpenSSL must find it by hash
    return directory


async def _hello(request: web.Request) -> web.StreamResponse:
    return web.Response(text="hello", content_type="text/html")


def test_ssl_cert_dir_replaces_the_trust_store(tmp_path: Path) -> None:
    ca, other = trustme.CA(), trustme.CA()
    good = _hashed_dir(tmp_path / "good", ca)
    wrong = _hashed_dir(tmp_path / "wrong", other)

    async def scenario() -> None:
        async with Server(needs("u", "upw"), "127.0.0.2", _server_ctx(ca, "127.0.0.2")) as s:
            netrc = "machine 127.0.0.2 login u password upw\n"
            settings = make_settings(tmp_path, netrc=netrc, env={"SSL_CERT_DIR": str(good)})
            async with client(settings) as c:
                assert c.tls.ca_source == f"SSL_CERT_DIR={good}"
                resp = await c.get(f"{s.url}/simple/")
            assert resp.status == 200 and resp.body == b"hello u"
            assert [x.user for x in s.seen] == ["u"]

            # A directory holding another CA: verification fails, naming the host and the dir;
            # the request (and its credentials) never reaches the server.
            settings = make_settings(tmp_path, netrc=netrc, env={"SSL_CERT_DIR": str(wrong)})
            async with client(settings) as c:
                with pytest.raises(TLSError) as e:
                    await c.get(f"{s.url}/simple/")
            assert f"127.0.0.2:{s.port}" in e.value.message
            assert f"SSL_CERT_DIR={wrong}" in e.value.message
            assert "\n" not in e.value.message
            assert len(s.seen) == 1

    run(scenario())


def test_ssl_cert_dir_missing_is_a_usage_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, env={"SSL_CERT_DIR": str(tmp_path / "nope")})

    async def scenario() -> None:
        with pytest.raises(KeaError) as e:
            async with client(settings):
                pass
        assert f"SSL_CERT_DIR={tmp_path / 'nope'}: no such directory" == e.value.message

    run(scenario())


def _client_pem(ca: trustme.CA, path: Path) -> Path:
    cert = ca.issue_cert("kea-client@example.org")
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_ssl_client_cert_is_presented_to_a_server_that_requires_one(
    tmp_path: Path, tls12: bool
) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    ca_pem = tmp_path / "ca.pem"
    server_ca.cert_pem.write_to_path(str(ca_pem))
    good = _client_pem(client_ca, tmp_path / "client.pem")
    stranger = _client_pem(trustme.CA(), tmp_path / "stranger.pem")
    seen_certs: list[object] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        peer = transport.get_extra_info("peercert")
        seen_certs.append(peer)
        return web.Response(text="hello client", content_type="text/html")

    async def scenario() -> None:
        tls = _server_ctx(server_ca, "127.0.0.2", client_ca=client_ca)
        if tls12:  # the certificate is checked in the handshake, not after it
            tls.maximum_version = ssl.TLSVersion.TLSv1_2
        async with Server(handler, "127.0.0.2", tls) as s:
            env = {"SSL_CERT_FILE": str(ca_pem), "SSL_CLIENT_CERT": str(good)}
            async with client(make_settings(tmp_path, env=env)) as c:
                resp = await c.get(f"{s.url}/simple/")
            assert resp.status == 200 and resp.body == b"hello client"
            assert len(seen_certs) == 1 and seen_certs[0]  # the server saw our certificate

            for extra in ({}, {"SSL_CLIENT_CERT": str(stranger)}):
                env = {"SSL_CERT_FILE": str(ca_pem), **extra}
                async with client(make_settings(tmp_path, env=env)) as c:
                    with pytest.raises(KeaError) as e:
                        await c.get(f"{s.url}/simple/")
                message = e.value.message
                assert "\n" not in message, message
                assert f"127.0.0.2:{s.port}" in message, message
                assert "client certificate" in message, message
                assert e.value.hint and "SSL_CLIENT_CERT" in e.value.hint
            assert len(seen_certs) == 1  # no request got through without a trusted cert

    run(scenario())


def test_ssl_client_cert_unreadable_is_a_usage_error(tmp_path: Path) -> None:
    """The TLS context is built for the first https connection: an unreadable SSL_CLIENT_CERT
    is a one-line UsageError then, and the request never reaches the server."""
    bad = tmp_path / "client.pem"
    bad.write_text("not a pem\n")
    ca = trustme.CA()
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    env = {"SSL_CERT_FILE": str(ca_pem), "SSL_CLIENT_CERT": str(bad)}

    async def scenario() -> None:
        async with Server(_hello, "127.0.0.2", _server_ctx(ca, "127.0.0.2")) as s:
            async with client(make_settings(tmp_path, env=env)) as c:
                with pytest.raises(KeaError) as e:
                    await c.get(f"{s.url}/simple/")
            assert s.seen == []
        assert e.value.message.startswith(f"SSL_CLIENT_CERT={bad}: cannot load it")
        assert "\n" not in e.value.message

    run(scenario())


@pytest.mark.parametrize("var", ["SSL_CERT_FILE", "SSL_CLIENT_CERT"])
def test_a_missing_tls_file_is_a_usage_error_when_the_client_opens(
    tmp_path: Path, var: str
) -> None:
    missing = tmp_path / "nope.pem"
    settings = make_settings(tmp_path, env={var: str(missing)})

    async def scenario() -> None:
        with pytest.raises(KeaError) as e:
            async with client(settings):
                pass
        assert e.value.message == f"{var}={missing}: no such file"

    run(scenario())


def test_plain_http_never_builds_a_tls_context(tmp_path: Path) -> None:
    """Loading CAs is not cheap: an http index must not pay for it. A client certificate that
    cannot be read does not matter to a run that makes no TLS connection."""
    bad = tmp_path / "client.pem"
    bad.write_text("not a pem\n")

    async def scenario() -> None:
        async with Server(_hello, "127.0.0.1") as s:
            settings = make_settings(tmp_path, env={"SSL_CLIENT_CERT": str(bad)})
            async with client(settings) as c:
                resp = await c.get(f"{s.url}/simple/")
            assert resp.status == 200 and resp.body == b"hello"
            assert len(s.seen) == 1

    run(scenario())
