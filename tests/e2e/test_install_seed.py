"""The seed case and its neighbours as real installs: ``kea venv`` then ``kea pip install``.

Same real servers as the auth suite (simpleindex router, pypiserver behind TLS with htpasswd,
a pre-signed file host), each test with its own HOME, netrc, cache and venv. What every server
received is asserted, not just kea's exit code; then the venv's own python imports the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.cases_redirects import presigned_setup
from tests.e2e.checks import failed_cleanly, no_authorization, ok_run
from tests.e2e.harness import Servers, World, users_of
from tests.e2e.install_harness import PRIVATE, PUBLIC, InstallWorld, SeedServers
from tests.e2e.servers.record import Seen, describe

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def seed(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedServers]:
    s = SeedServers(tmp_path_factory.mktemp("e2e-seed"), servers)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def make_iworld(servers: Servers, tmp_path: Path) -> Iterator[Callable[[int], InstallWorld]]:
    made: list[World] = []

    def make(verbosity: int = 1) -> InstallWorld:
        world = InstallWorld(servers, tmp_path / f"world{len(made)}", verbosity=verbosity)
        made.append(world)
        world.make_venv()
        return world

    yield make
    for world in made:
        world.cleanup()


def first_request_per_path(seen: list[Seen]) -> dict[str, Seen]:
    firsts: dict[str, Seen] = {}
    for s in seen:
        firsts.setdefault(s.path.split("?", 1)[0], s)
    return firsts


def seed_install(w: InstallWorld, seed: SeedServers) -> None:
    """Spec cases 1 and 2 as an install: acme-private (upstream, via the router's 302) and its
    dependency acme-public (the router's local ``path`` route), credentials from netrc only."""
    s = w.servers
    w.netrc(f"machine {seed.pypi.ip} login {s.alice.name} password {s.alice.password}")
    up_mark = seed.pypi.mark()
    router_mark = len(seed.router.front.seen_all)

    run = w.install(PRIVATE, "--index-url", seed.index_url)
    ok_run(run)
    assert f" + {PRIVATE}==1.0" in run.stderr and f" + {PUBLIC}==2.0" in run.stderr, run

    imported = w.python(
        "import acme_private, acme_public; print(acme_private.MESSAGE, acme_public.VERSION)"
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "hello from private 2.0\n"
    wanted = {"acme_private-1.0.dist-info", "acme_public-2.0.dist-info"}
    assert wanted <= set(w.installed()), w.installed()
    installer = w.venv_path.glob("lib/python3*/site-packages/acme_private-1.0.dist-info/INSTALLER")
    assert [p.read_text().strip() for p in installer] == ["kea"]

    # The router: a 302 for the private project, the public page and wheel from its path route,
    # and never a credential.
    router_seen = seed.router.front.seen_all[router_mark:]
    no_authorization(router_seen)
    statuses = {(x.path.split("?", 1)[0], x.status) for x in router_seen}
    assert (f"/{PRIVATE}/", 302) in statuses, describe(router_seen)
    assert (f"/{PUBLIC}/", 200) in statuses, describe(router_seen)
    wheel_path = f"/{PUBLIC}/{seed.public_wheel.name}"
    assert any(p == wheel_path and st in (200, 206) for p, st in statuses), describe(router_seen)
    assert not any(x.path.startswith("/simple/") for x in router_seen), describe(router_seen)

    # The upstream: the netrc user on the FIRST request for every URL (no 401 round trip), and
    # on every request after it; the page and the wheel were both fetched from it.
    up = seed.pypi.seen(up_mark)
    assert up, "the upstream received no request\n" + str(run)
    firsts = first_request_per_path(up)
    assert f"/simple/{PRIVATE}/" in firsts, describe(up)
    assert f"/packages/{seed.private_wheel.name}" in firsts, describe(up)
    late = [x for x in firsts.values() if x.user != s.alice.name or x.status not in (200, 206)]
    assert not late, "each URL's first request must carry the netrc user:\n" + describe(up)
    assert users_of(up) == [s.alice.name] * len(up), describe(up)
    assert all(x.status in (200, 206) for x in up), describe(up)
    assert not any(x.path.startswith(f"/simple/{PUBLIC}") for x in up), (
        "the public project is the router's own; nothing should ask the upstream for it\n"
        + describe(up)
    )


# -- (a) cases 1 + 2 ---------------------------------------------------------------------------


def test_seed_install_router_path_route_and_302_to_protected_upstream(
    seed: SeedServers, make_iworld: Callable[[int], InstallWorld]
) -> None:
    seed_install(make_iworld(1), seed)


# -- (b) case 3 --------------------------------------------------------------------------------


def test_install_index_userinfo_links_to_presigned_file_host(
    make_iworld: Callable[[int], InstallWorld],
) -> None:
    w = make_iworld(1)
    s = w.servers
    index, _, _, bob, signature = presigned_setup(w, "c3i")

    run = w.install("blob-pkg", "--index-url", index)
    ok_run(run)
    assert " + blob-pkg==3.0" in run.stderr, run
    imported = w.python("import blob_pkg; print(blob_pkg.__version__)")
    assert imported.returncode == 0 and imported.stdout == "3.0\n", imported.stderr

    idx = w.seen(s.other, "/c3i/")
    assert idx and users_of(idx) == [bob] * len(idx), describe(idx)
    assert idx[0].status == 200, "the index's first request carries bob:\n" + describe(idx)
    blob = w.seen(s.files, "/c3i/")
    assert blob, "the file host was never asked for the wheel\n" + str(run)
    no_authorization(blob)
    assert all(x.status == 200 for x in blob), describe(blob)
    assert all(f"X-Amz-Signature={signature}" in x.path for x in blob), describe(blob)


# -- (c) case 13 -------------------------------------------------------------------------------


def test_install_without_credentials_fails_naming_url_and_sources(
    seed: SeedServers, make_iworld: Callable[[int], InstallWorld]
) -> None:
    w = make_iworld(1)
    up_mark = seed.pypi.mark()
    router_mark = len(seed.router.front.seen_all)

    run = w.install(PRIVATE, "--index-url", seed.index_url)
    failed_cleanly(run)
    assert run.returncode == 1, run
    page = f"{seed.pypi.url}/simple/{PRIVATE}/"
    assert page in run.stderr, "the error names the URL that wanted credentials\n" + str(run)
    assert "401" in run.stderr, run
    assert str(w.netrc_path) in run.stderr, "the hint names the netrc path kea read\n" + str(run)
    assert "keyring" in run.stderr.lower(), run
    assert "KEA_INDEX_" in run.stderr, run
    assert w.installed() == [], w.installed()
    assert "+ " not in run.stderr, run

    up = seed.pypi.seen(up_mark)
    assert up and all(x.status == 401 for x in up), describe(up)
    assert len(up) == 1, "nothing found after the 401, so nothing to retry with\n" + describe(up)
    no_authorization(up)
    no_authorization(seed.router.front.seen_all[router_mark:])


# -- (d) case 24 on (a) ------------------------------------------------------------------------


def test_seed_install_at_vvv_shows_no_secret(
    seed: SeedServers, make_iworld: Callable[[int], InstallWorld]
) -> None:
    w = make_iworld(3)
    seed_install(w, seed)
    install_runs = [r for r in w.runs if r.args[:2] == ["pip", "install"]]
    assert install_runs and seed.pypi.netloc in install_runs[-1].output, (
        "-vvv should show the hops it made\n" + str(install_runs[-1:])
    )
    assert w.secrets
    leaks = w.leaks()
    assert not leaks, "secrets in kea's output at -vvv:\n" + "\n".join(leaks)
