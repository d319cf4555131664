"""Issue 6's "Bad input", end to end: each a one-line error or warning, never a traceback.

TLS failure (naming the host and the CA source), a malformed netrc (warn, go on), a keyring that
hangs (time-out, warn, go on), a redirect without Location, malformed URLs and unknown schemes.
"""

from __future__ import annotations

import time

import pytest
import trustme

from tests.e2e.checks import failed_cleanly, no_traceback, ok_run
from tests.e2e.harness import World, users_of
from tests.e2e.servers.record import describe
from tests.e2e.servers.web import ok, protected, redirect

pytestmark = pytest.mark.e2e


def test_tls_failure_names_host_and_ca_source(world: World) -> None:
    s = world.servers
    stranger = world.tmp / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    run = world.check(
        f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/", env={"SSL_CERT_FILE": str(stranger)}
    )
    failed_cleanly(run)
    error = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, run
    assert s.pypi.ip in error[0], "the TLS error names the host\n" + str(run)
    assert "SSL_CERT_FILE" in run.stderr or str(stranger) in run.stderr, (
        "the TLS error names the CA source in use\n" + str(run)
    )
    assert world.pypi_seen() == [], "no HTTP request can have reached the server"


def test_malformed_netrc_warns_once_and_goes_on(world: World) -> None:
    s = world.servers
    world.netrc('machine "unterminated\nlogin\n')
    world.route(s.other, "/bad1/simple/pkg/", ok("<html></html>", "text/html"))
    run = world.check(world.url(s.other, "/bad1/simple/pkg/"))
    ok_run(run)
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "netrc" in warnings[0], run


def test_unreadable_netrc_warns_and_goes_on(world: World) -> None:
    s = world.servers
    world.netrc_path.mkdir()  # a directory where the netrc file should be
    world.route(s.other, "/bad2/simple/pkg/", ok("<html></html>", "text/html"))
    run = world.check(world.url(s.other, "/bad2/simple/pkg/"))
    ok_run(run)
    assert "warning:" in run.stderr and "netrc" in run.stderr, run


def test_hanging_keyring_times_out_warns_and_goes_on(world: World) -> None:
    s = world.servers
    token = "tok" + world.prefix.strip("/").replace("-", "")
    world.keyring({}, hang=True)
    world.route(s.other, "/bad3/simple/pkg/", protected({token: ""}, ok("<html></html>")))
    started = time.monotonic()
    run = world.check(
        world.url(s.other, "/bad3/simple/pkg/"),
        "--index-url",
        world.url(s.other, "/bad3/simple/", userinfo=token),
        "--keyring-provider",
        "subprocess",
        env={"KEA_KEYRING_TIMEOUT": "1"},
    )
    elapsed = time.monotonic() - started
    ok_run(run)
    assert elapsed < 20, f"kea waited {elapsed:.1f}s for a hanging keyring"
    assert "warning:" in run.stderr and "keyring" in run.stderr, run
    seen = world.seen(s.other, "/bad3/")
    assert users_of(seen) == [token], describe(seen)
    assert len(world.keyring_calls()) == 1, world.keyring_calls()


def test_redirect_without_location(world: World) -> None:
    s = world.servers
    url = world.route(s.other, "/bad4/simple/pkg/", redirect(302, None))
    run = world.check(url)
    failed_cleanly(run)
    assert url in run.stderr and "302" in run.stderr and "Location" in run.stderr, run
    assert len(world.seen(s.other, "/bad4/")) == 1


@pytest.mark.parametrize(
    "url",
    ["https://[::1", "ftp://127.0.0.4/simple/", "not a url", "https://user:pw-bad5@/simple/"],
)
def test_malformed_urls(world: World, url: str) -> None:
    world.secret("pw-bad5")
    run = world.check(url)
    failed_cleanly(run)
    assert len([line for line in run.stderr.splitlines() if line.startswith("error:")]) == 1
    no_traceback(run)
    assert not world.leaks(), world.leaks()
