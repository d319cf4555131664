"""specs/auth.md cases 1–12: the router seed case and the redirect rules, one function each.

Each case takes a ``World``, sets up servers/netrc/config, drives kea (``kea auth check`` or the
client API through ``fetch_client.py``) and asserts what every server received: which requests
carried which user.
"""

from __future__ import annotations

from typing import NamedTuple

from tests.e2e.checks import (
    failed_cleanly,
    no_authorization,
    ok_run,
    results_of,
    sha,
)
from tests.e2e.harness import World, users_of
from tests.e2e.servers.record import describe
from tests.e2e.servers.web import links_page, ok, presigned, protected, redirect

# -- 1 ----------------------------------------------------------------------------------------


def case01_router_302_to_tls_upstream_netrc(w: World) -> None:
    """simpleindex http route 302 → pypiserver (TLS, htpasswd) on another host; netrc has it."""
    s = w.servers
    w.netrc(f"machine {s.pypi.ip} login {s.alice.name} password {s.alice.password}")
    router = s.router.url
    page = f"{router}/{s.PRIV_PROJECT}/"

    run = w.check(page, "--index-url", router + "/")
    ok_run(run)
    up = w.pypi_seen()
    assert up, "the upstream received no request\n" + str(run)
    first = up[0]
    assert first.path == f"/simple/{s.PRIV_PROJECT}/", describe(up)
    assert first.user == s.alice.name and first.status == 200, (
        "the upstream must get the netrc user on its FIRST request:\n" + describe(up)
    )
    assert users_of(up) == [s.alice.name] * len(up), describe(up)
    router_seen = w.router_seen()
    assert [x.status for x in router_seen] == [302], describe(router_seen)
    no_authorization(router_seen)
    # The hops are shown: the 302 from the router, the upstream, the credential source.
    assert s.pypi.netloc in run.stdout, run
    assert "302" in run.stdout and "200" in run.stdout, run
    assert f"netrc machine {s.pypi.ip}" in run.output, run

    # "install works": the page and the wheel it links to, through one client.
    mark_router = len(w.router_seen())
    fetched = w.fetch([{"url": page, "follow": True}], cli={"index_url": router + "/"})
    ok_run(fetched)
    results = results_of(fetched)
    files = [r for r in results if r["purpose"] == "file"]
    assert len(files) == 1 and files[0]["status"] == 200, results
    assert files[0]["sha256"] == sha(s.priv_wheel.read_bytes()), results
    up = w.pypi_seen()
    assert any(x.path.startswith("/packages/") and x.status == 200 for x in up), describe(up)
    assert all(x.status == 200 for x in up), "no 401 round trip expected:\n" + describe(up)
    assert users_of(up) == [s.alice.name] * len(up), describe(up)
    no_authorization(w.router_seen()[mark_router:])


def case01b_after_401_retry_goes_to_the_final_hop(w: World) -> None:
    """The seed issue's failure: after router 302 → upstream 401, the retry (with credentials
    found only reactively: netrc ``default`` for a configured index) goes to the upstream URL that
    answered 401 (rule 12), never back to the router."""
    s = w.servers
    w.netrc(f"default login {s.alice.name} password {s.alice.password}")
    router = s.router.url
    run = w.check(
        f"{router}/{s.PRIV_PROJECT}/",
        "--index-url",
        router + "/",
        "--index",
        f"up={s.pypi.url}/simple/",
    )
    ok_run(run)
    router_seen = w.router_seen()
    assert [x.status for x in router_seen] == [302], (
        "the retry must not go back to the router:\n" + describe(router_seen)
    )
    no_authorization(router_seen)
    up = w.pypi_seen()
    assert users_of(up) == [None, s.alice.name], describe(up)
    assert [x.status for x in up] == [401, 200], describe(up)


# -- 2 ----------------------------------------------------------------------------------------


def case02_router_path_and_http_routes_in_one_run(w: World) -> None:
    s = w.servers
    w.netrc(f"machine {s.pypi.ip} login {s.alice.name} password {s.alice.password}")
    router = s.router.url
    fetched = w.fetch(
        [
            {"url": f"{router}/{s.LOCAL_PROJECT}/", "follow": True},
            {"url": f"{router}/{s.PRIV_PROJECT}/", "follow": True},
        ],
        cli={"index_url": router + "/"},
    )
    ok_run(fetched)
    results = results_of(fetched)
    shas = {r["sha256"] for r in results if r["purpose"] == "file" and r["status"] == 200}
    assert sha(s.local_wheel.read_bytes()) in shas, results
    assert sha(s.priv_wheel.read_bytes()) in shas, results
    router_seen = w.router_seen()
    no_authorization(router_seen)
    assert any(x.path.endswith(".whl") and x.status == 200 for x in router_seen), describe(
        router_seen
    )
    up = w.pypi_seen()
    assert up and up[0].status == 200, describe(up)
    assert users_of(up) == [s.alice.name] * len(up), describe(up)


# -- 3 ----------------------------------------------------------------------------------------


class Presigned(NamedTuple):
    index_url: str  # the index URL, with bob's userinfo
    page: str  # blob-pkg's page (no userinfo)
    wheel: bytes
    user: str  # bob's name
    signature: str  # the X-Amz-Signature of the file's URL


def presigned_setup(w: World, case: str) -> Presigned:
    """An index page (bob) on 'other' linking to a signed URL on the pre-signed file host."""
    s = w.servers
    bob = w.new_user("bob")
    signature = "sig" + bob.password[-16:] + "f00d"
    credential = "AKIA" + bob.password[-8:].upper() + "/20240101/us-east-1/s3/aws4_request"
    w.secret(signature, credential)
    wheel = s.file_wheel.read_bytes()
    file_url = w.route(s.files, f"/{case}/{s.file_wheel.name}", presigned(wheel))
    file_url += (
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={credential}&X-Amz-Date=20240101T000000Z"
        f"&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )
    w.route(
        s.other,
        f"/{case}/simple/blob-pkg/",
        protected({bob.name: bob.password}, links_page([file_url])),
    )
    index = w.url(s.other, f"/{case}/simple/", userinfo=f"{bob.name}:{bob.password}")
    page = w.url(s.other, f"/{case}/simple/blob-pkg/")
    return Presigned(index, page, wheel, bob.name, signature)


def case03_index_userinfo_links_to_presigned_host(w: World) -> None:
    s = w.servers
    index, page, wheel, _, _ = presigned_setup(w, "c3")
    fetched = w.fetch([{"url": page, "follow": True}], cli={"index_url": index})
    ok_run(fetched)
    results = results_of(fetched)
    assert [r["status"] for r in results] == [200, 200], results
    assert results[1]["sha256"] == sha(wheel)
    idx = w.seen(s.other, "/c3/")
    assert users_of(idx) == ["bob"] and idx[0].status == 200, describe(idx)
    blob = w.seen(s.files, "/c3/")
    assert len(blob) == 1 and blob[0].method == "GET", describe(blob)
    no_authorization(blob)
    assert "X-Amz-Signature=" in blob[0].path  # the signed URL arrived intact


def case03b_presigned_url_gets_no_ambient_netrc(w: World) -> None:
    """Rule 10: a signed URL gets no ambient credentials even when netrc has its host."""
    s = w.servers
    intruder = w.new_user("nosy")
    w.netrc(f"machine {s.files.ip} login {intruder.name} password {intruder.password}")
    index, page, _, _, _ = presigned_setup(w, "c3b")
    fetched = w.fetch([{"url": page, "follow": True}], cli={"index_url": index})
    ok_run(fetched)
    blob = w.seen(s.files, "/c3b/")
    assert blob and blob[-1].status == 200, describe(blob)
    no_authorization(blob)


# -- 4 ----------------------------------------------------------------------------------------


def case04_cross_origin_redirect_uses_targets_netrc_only(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    mallory = w.new_user("mallory")
    # The FIRST matching machine entry wins, as in curl (Python's netrc module keeps the last).
    w.netrc(
        f"machine {s.pypi.ip} login {s.alice.name} password {s.alice.password}\n"
        f"machine {s.pypi.ip} login {mallory.name} password {mallory.password}\n"
    )
    target = f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/"
    w.route(
        s.other, "/c4/simple/priv-pkg/", protected({bob.name: bob.password}, redirect(302, target))
    )
    index = w.url(s.other, "/c4/simple/", userinfo=f"{bob.name}:{bob.password}")
    run = w.check(w.url(s.other, "/c4/simple/priv-pkg/"), "--index-url", index)
    ok_run(run)
    red = w.seen(s.other, "/c4/")
    assert users_of(red) == ["bob"] and red[0].status == 302, describe(red)
    up = w.pypi_seen()
    assert up and up[0].status == 200, describe(up)
    assert users_of(up) == [s.alice.name] * len(up), (
        "the upstream must see only its own netrc user:\n" + describe(up)
    )
    # -v says that the previous origin's credentials were dropped on the cross-origin hop.
    assert "dropped" in run.output and s.other.netloc in run.output, run


# -- 5 ----------------------------------------------------------------------------------------


def case05_same_host_other_port_is_cross_origin(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    target = w.route(s.other2, "/c5/pkg/", ok("<html></html>", "text/html"))
    w.route(s.other, "/c5/simple/pkg/", protected({bob.name: bob.password}, redirect(302, target)))
    index = w.url(s.other, "/c5/simple/", userinfo=f"{bob.name}:{bob.password}")
    run = w.check(w.url(s.other, "/c5/simple/pkg/"), "--index-url", index)
    ok_run(run)
    assert users_of(w.seen(s.other, "/c5/")) == ["bob"], describe(w.seen(s.other, "/c5/"))
    other_port = w.seen(s.other2, "/c5/")
    assert [x.status for x in other_port] == [200], describe(other_port)
    no_authorization(other_port)


# -- 6 ----------------------------------------------------------------------------------------


def case06_https_to_http_downgrade_sends_nothing(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    carol = w.new_user("carol")
    w.netrc(f"machine {s.mixed_http.ip} login {carol.name} password {carol.password}")
    users = {bob.name: bob.password, carol.name: carol.password}
    index = w.url(s.mixed_tls, "/c6/simple/", userinfo=f"{bob.name}:{bob.password}")

    # (a) the http hop answers anonymously: works, and nothing secret went over http.
    plain = w.route(s.mixed_http, "/c6/a/pkg/", ok("<html></html>", "text/html"))
    w.route(s.mixed_tls, "/c6/simple/a/", protected(users, redirect(302, plain)))
    run = w.check(w.url(s.mixed_tls, "/c6/simple/a/"), "--index-url", index)
    ok_run(run)
    assert users_of(w.seen(s.mixed_tls, "/c6/simple/a/")) == ["bob"]
    http_a = w.seen(s.mixed_http, "/c6/a/")
    assert http_a and http_a[-1].status == 200, describe(http_a)
    no_authorization(http_a)

    # (b) the http hop answers 401: a clear error, still nothing sent over http, no loop.
    plain_b = w.route(s.mixed_http, "/c6/b/pkg/", protected(users, ok("secret page")))
    w.route(s.mixed_tls, "/c6/simple/b/", protected(users, redirect(302, plain_b)))
    run = w.check(w.url(s.mixed_tls, "/c6/simple/b/"), "--index-url", index)
    failed_cleanly(run)
    http_b = w.seen(s.mixed_http, "/c6/b/")
    assert 1 <= len(http_b) <= 2, describe(http_b)
    no_authorization(http_b)
    assert plain_b in run.stderr, run  # the error names the http URL that answered 401
    assert "401" in run.stderr, run

    # (c) ...unless the user configured that exact http:// index: then its credentials go.
    dan = w.new_user("dan")
    plain_c = w.route(
        s.mixed_http,
        "/c6/c/simple/pkg/",
        protected({dan.name: dan.password}, ok("<html></html>", "text/html")),
    )
    w.route(s.mixed_tls, "/c6/simple/c/", protected(users, redirect(302, plain_c)))
    http_index = w.url(s.mixed_http, "/c6/c/simple/", userinfo=f"{dan.name}:{dan.password}")
    run = w.check(
        w.url(s.mixed_tls, "/c6/simple/c/"), "--index-url", index, "--index", f"lan={http_index}"
    )
    ok_run(run)
    http_c = w.seen(s.mixed_http, "/c6/c/")
    assert users_of(http_c) == ["dan"], describe(http_c)

    # (d) https -> http -> https: nothing over http, the index's own credentials on the
    # https hop after it (it was sent nothing, and failed with the downgrade's hint).
    back = w.route(s.mixed_tls, "/c6/simple/d-real/pkg/", protected(users, ok("<html></html>")))
    hop = w.route(s.mixed_http, "/c6/d/pkg/", redirect(302, back))
    w.route(s.mixed_tls, "/c6/simple/d/", protected(users, redirect(302, hop)))
    run = w.check(w.url(s.mixed_tls, "/c6/simple/d/"), "--index-url", index)
    ok_run(run)
    no_authorization(w.seen(s.mixed_http, "/c6/d/"))
    final = w.seen(s.mixed_tls, "/c6/simple/d-real/")
    assert users_of(final) == ["bob"], describe(final)


# -- 7 ----------------------------------------------------------------------------------------


def case07_same_origin_redirects_keep_credentials(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    users = {bob.name: bob.password}
    moved = w.route(s.other, "/moved-c7/pkg/", protected(users, ok("<html></html>", "text/html")))
    w.route(s.other, "/c7/simple/pkg/", protected(users, redirect(302, moved)))
    w.route(
        s.other,
        "/c7/simple/pkg",
        protected(users, redirect(301, w.url(s.other, "/c7/simple/pkg/"))),
    )
    index = w.url(s.other, "/c7/simple/", userinfo=f"{bob.name}:{bob.password}")
    run = w.check(w.url(s.other, "/c7/simple/pkg"), "--index-url", index)
    ok_run(run)
    seen = [x for x in w.seen(s.other, "/") if "c7" in x.path]
    assert [x.path[len(w.prefix) :] for x in seen] == [
        "/c7/simple/pkg",
        "/c7/simple/pkg/",
        "/moved-c7/pkg/",
    ], describe(seen)
    assert users_of(seen) == ["bob", "bob", "bob"], describe(seen)
    assert [x.status for x in seen] == [301, 302, 200], describe(seen)


# -- 8 ----------------------------------------------------------------------------------------


def case08_relative_location(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    users = {bob.name: bob.password}
    w.route(s.other, "/c8/simple/other/pkg/", protected(users, ok("<html></html>", "text/html")))
    w.route(s.other, "/c8/simple/pkg/", protected(users, redirect(302, "../other/pkg/")))
    index = w.url(s.other, "/c8/simple/", userinfo=f"{bob.name}:{bob.password}")
    run = w.check(w.url(s.other, "/c8/simple/pkg/"), "--index-url", index)
    ok_run(run)
    seen = w.seen(s.other, "/c8/")
    assert [x.path[len(w.prefix) :] for x in seen] == [
        "/c8/simple/pkg/",
        "/c8/simple/other/pkg/",
    ], describe(seen)
    assert users_of(seen) == ["bob", "bob"] and seen[-1].status == 200, describe(seen)


# -- 9 ----------------------------------------------------------------------------------------


def case09_303_307_308_on_file_downloads(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    users = {bob.name: bob.password}
    wheel = s.file_wheel.read_bytes()
    steps = []
    for status in (303, 307, 308):
        target = w.route(
            s.other,
            f"/c9/store/{status}/{s.file_wheel.name}",
            protected(users, ok(wheel, "application/octet-stream")),
        )
        w.route(
            s.other,
            f"/c9/files/{status}/{s.file_wheel.name}",
            protected(users, redirect(status, target)),
        )
        steps.append(
            {"url": w.url(s.other, f"/c9/files/{status}/{s.file_wheel.name}"), "purpose": "file"}
        )
    index = w.url(s.other, "/c9/simple/", userinfo=f"{bob.name}:{bob.password}")
    fetched = w.fetch(steps, cli={"index_url": index})
    ok_run(fetched)
    results = results_of(fetched)
    assert [r["status"] for r in results] == [200, 200, 200], results
    assert all(r["sha256"] == sha(wheel) for r in results), results
    seen = w.seen(s.other, "/c9/")
    assert len(seen) == 6, describe(seen)
    assert {x.method for x in seen} == {"GET"}, "file URLs get GET only:\n" + describe(seen)
    assert users_of(seen) == ["bob"] * 6, describe(seen)


# -- 10 ---------------------------------------------------------------------------------------


def case10_userinfo_in_location(w: World) -> None:
    s = w.servers
    dave = w.new_user("dave")
    target = w.route(
        s.files,
        "/c10/pkg/",
        protected({dave.name: dave.password}, ok("<html></html>", "text/html")),
    )
    with_userinfo = target.replace("https://", f"https://{dave.name}:{dave.password}@", 1)
    w.route(s.other, "/c10/simple/pkg/", redirect(302, with_userinfo))
    run = w.check(w.url(s.other, "/c10/simple/pkg/"), "--index-url", w.url(s.other, "/c10/simple/"))
    ok_run(run)
    red = w.seen(s.other, "/c10/")
    assert [x.status for x in red] == [302], describe(red)
    no_authorization(red)
    hop = w.seen(s.files, "/c10/")
    assert users_of(hop) == ["dave"] and hop[0].status == 200, describe(hop)
    assert dave.password not in run.output, "the Location's password was printed"


# -- 11 ---------------------------------------------------------------------------------------


def case11_netrc_default_only_after_401_and_never_after_redirect(w: World) -> None:
    s = w.servers
    erin = w.new_user("erin")
    w.netrc(f"default login {erin.name} password {erin.password}")
    wheel = s.file_wheel.read_bytes()
    blob = w.route(s.files, f"/c11/{s.file_wheel.name}", presigned(wheel))
    w.route(s.other, f"/c11/files/{s.file_wheel.name}", redirect(302, blob))
    w.route(
        s.other,
        "/c11/simple/blob-pkg/",
        protected({erin.name: erin.password}, links_page([f"../../files/{s.file_wheel.name}"])),
    )
    w.route(s.other, "/c11/simple/next-pkg/", protected({erin.name: erin.password}, ok("<a/>")))
    index = w.url(s.other, "/c11/simple/")
    fetched = w.fetch(
        [
            {"url": w.url(s.other, "/c11/simple/blob-pkg/"), "follow": True},
            {"url": w.url(s.other, "/c11/simple/next-pkg/")},
        ],
        cli={"index_url": index},
    )
    ok_run(fetched)
    page = w.seen(s.other, "/c11/simple/blob-pkg/")
    assert users_of(page) == [None, "erin"], (
        "netrc default: never proactive, used after the index's 401:\n" + describe(page)
    )
    assert [x.status for x in page] == [401, 200], describe(page)
    # Rule 9: what succeeded is cached for the run: the next page gets it on its first request.
    following = w.seen(s.other, "/c11/simple/next-pkg/")
    assert users_of(following) == ["erin"], describe(following)
    hop = w.seen(s.files, "/c11/")
    assert hop and hop[-1].status == 200, describe(hop)
    no_authorization(hop)
    files = [r for r in results_of(fetched) if r["purpose"] == "file"]
    assert [r["sha256"] for r in files] == [sha(wheel)], files


# -- 12 ---------------------------------------------------------------------------------------


def case12_redirect_loop(w: World) -> None:
    s = w.servers
    a = w.url(s.other, "/c12/a")
    b = w.route(s.other, "/c12/b", redirect(302, a))
    w.route(s.other, "/c12/a", redirect(302, b))
    run = w.check(a, "--index-url", w.url(s.other, "/c12/"))
    failed_cleanly(run)
    seen = w.seen(s.other, "/c12/")
    # "at most 10 hops" where a hop is "one request/response of a redirect chain".
    assert 2 <= len(seen) <= 10, "at most 10 hops, then stop:\n" + describe(seen)
    assert "redirect" in run.stderr.lower(), run
    assert a in run.stderr and b in run.stderr, "the error lists the chain\n" + str(run)
