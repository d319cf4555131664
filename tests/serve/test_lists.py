"""``/simple/``, the project list, over every kind of route.

kea serve here (test_proxy's setup, with more routes first) has a directory route, a deny route,
a redirect route for one exact name, a public catch-all proxy route (a recording upstream) and a
private proxy route in front of a real pypiserver (TLS, basic auth, credentials only kea serve
holds). The public upstream also lists
names that other routes answer for (a private one, a denied one, a local one) and a few that are
not project names: the list must show each name under the route that serves it, or not at all.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import User
from tests.e2e.servers.tls import Tls
from tests.e2e.servers.web import ServerLoop
from tests.serve.conftest import Private, Wheels
from tests.serve.harness import KeaServe, http_get
from tests.serve.test_proxy import public_only, start_proxy
from tests.serve.upstream import FakeUpstream

JSON = "application/vnd.pypi.simple.v1+json"
STALE = '110 kea-serve "Response is Stale"'


@dataclass
class Lists:
    serve: KeaServe
    public: FakeUpstream
    private: Private
    carol: User  # may read the private route

    def names(self, user: User | None = None, accept: str = JSON) -> tuple[int, list[str], dict]:
        headers = {"Accept": accept}
        if user is not None:
            headers["Authorization"] = user.header
        status, got, body = http_get(self.serve.index, headers)
        if status != 200:
            return status, [], got
        if accept == JSON:
            return status, [p["name"] for p in json.loads(body)["projects"]], got
        return status, re.findall(r'<a href="/simple/([^/"]+)/">', body.decode()), got


# Before the public catch-all and the private route of test_proxy's setup.
FIRST_ROUTES = """
[[upstream]]
name = "elsewhere"
url = "http://127.0.0.1:9/simple/{{project}}/"

[[route]]
name = "local"
match = "local-*"
directory = "{local_dir}"

[[route]]
name = "blocked"
match = "evil-pkg"
deny = true

[[route]]
name = "ext"
match = "ext-pkg"
upstream = "elsewhere"
mode = "redirect"
"""


@pytest.fixture(scope="module")
def lists(
    tmp_path_factory: pytest.TempPathFactory,
    loop: ServerLoop,
    tls: Tls,
    wheels: Wheels,
    private: Private,
) -> Iterator[Lists]:
    root = tmp_path_factory.mktemp("serve-lists")
    routes = FIRST_ROUTES.format(local_dir=wheels.local_dir)
    setup = start_proxy(root, loop, tls, wheels, private, first_routes=routes)
    # The public host has priv-pkg (private: never listed from there) and pub-pkg; its list
    # adds other routes' names, a name to normalise and names that are not project names.
    setup.public.listed = ["Evil_Pkg", "local-pkg", "Ext.Pkg", "Some_Thing", "bad name", "<x>"]
    setup.public.listed.append("a" * 200)
    yield Lists(setup.serve, setup.public, private, setup.carol)
    setup.serve.stop()
    setup.public.stop()


PUBLIC_VIEW = ["ext-pkg", "local-app", "local-pkg", "pub-pkg", "some-thing"]


def test_each_route_lists_what_it_serves(lists: Lists) -> None:
    for accept in (JSON, "text/html"):
        status, names, _ = lists.names(accept=accept)
        assert (status, names) == (200, PUBLIC_VIEW), accept
    # carol may read the private route: its upstream's list adds priv-pkg
    status, names, _ = lists.names(lists.carol)
    assert (status, names) == (200, sorted([*PUBLIC_VIEW, "priv-pkg"]))


def test_every_listed_name_is_served_and_denied_ones_are_not_listed(lists: Lists) -> None:
    _, names, _ = lists.names(lists.carol)
    auth = {"Authorization": lists.carol.header}
    served = {name: http_get(lists.serve.index + f"{name}/", auth)[0] for name in names}
    # 302: the redirect route's name; 404: a name the public upstream lists but has no page for
    assert served == {
        "ext-pkg": 302,
        "local-app": 200,
        "local-pkg": 200,
        "priv-pkg": 200,
        "pub-pkg": 200,
        "some-thing": 404,
    }
    assert http_get(lists.serve.index + "evil-pkg/")[0] == 403


def test_the_private_list_is_fetched_with_kea_serves_credentials_only(lists: Lists) -> None:
    mark = lists.private.server.mark()
    lists.names(lists.carol)
    seen = [s for s in lists.private.server.seen(mark) if s.path.rstrip("/") == "/simple"]
    assert seen, "pypiserver's project list was not asked for"
    for s in seen:
        assert s.authorization is not None
        user, _, password = b64decode(s.authorization.split()[1]).decode().partition(":")
        assert (user, password) == (
            lists.private.serve_user.name,
            lists.private.serve_user.password,
        )
    # clients who may not read the private route never cause a fetch of its list
    mark = lists.private.server.mark()
    assert lists.names()[0] == 200
    assert not [s for s in lists.private.server.seen(mark) if s.path.rstrip("/") == "/simple"]
    # the public upstream got no credentials
    assert all(s.authorization is None for s in lists.public.requests("/simple/"))


def test_a_stale_list_is_revalidated_then_served_stale_while_the_upstream_is_down(
    lists: Lists,
) -> None:
    lists.names()
    before = len(lists.public.requests("/simple/"))
    assert lists.names()[1] == PUBLIC_VIEW
    again = lists.public.requests("/simple/")[before:]
    # page-ttl is 0: each list is revalidated, and the unchanged one answered 304
    assert [(s.path, s.status) for s in again] == [("/simple/", 304)]
    lists.public.stop()
    try:
        status, names, headers = lists.names()
        assert (status, names) == (200, PUBLIC_VIEW)
        assert headers.get("Warning") == STALE
    finally:
        lists.public.start()
    metrics = http_get(lists.serve.url + "/metrics")[2].decode()
    assert re.search(r'^kea_serve_cache_hits_total\{kind="stale-list"\} [1-9]', metrics, re.M)
    assert "upstream public unreachable" in lists.serve.text()
    assert "; serving the cached list" in lists.serve.text()
    status, names, headers = lists.names()
    assert (status, names, headers.get("Warning")) == (200, PUBLIC_VIEW, None)


def test_without_a_cached_list_an_unreachable_upstream_fails_the_list(
    tmp_path: Path, loop: ServerLoop, wheels: Wheels
) -> None:
    public = FakeUpstream(loop, "127.0.0.3")
    public.add(wheels.pub)
    config = public_only(public.url, "page-ttl = 0\nupstream-retries = 0\nupstream-timeout = 5")
    public.stop()
    serve = KeaServe(tmp_path / "serve", config, ip="127.0.0.5")
    try:
        status, _, body = http_get(serve.index, {"Accept": JSON})
        # the upstream's name and why, never where it is
        assert (status, body) == (
            502,
            b"upstream public unreachable: cannot connect to the upstream: Connection refused\n",
        )
        public.start()
        # no list of its own (404): no names from it, not an error
        public.faults["/simple/"] = "missing"
        assert json.loads(http_get(serve.index, {"Accept": JSON})[2])["projects"] == []
        public.faults["/simple/"] = "malformed"
        status, _, body = http_get(serve.index, {"Accept": JSON})
        assert (status, body.decode().strip()) == (
            502,
            "upstream public sent a malformed project list",
        )
        del public.faults["/simple/"]
        doc = json.loads(http_get(serve.index, {"Accept": JSON})[2])
        assert [p["name"] for p in doc["projects"]] == ["pub-pkg"]
    finally:
        serve.stop()
        public.stop()
