"""The cases of specs/auth.md ("Cases every implementation must pass"), one function each.

Each case takes a ``World``, sets up servers/netrc/keyring/config, drives kea (``kea auth check``
or the client API through ``fetch_client.py``) and asserts what every server received: which
requests carried which user. ``test_auth_cases_e2e.py`` runs them at ``-v``;
``test_redaction_e2e.py`` runs them again at ``-vvv`` and scans all output for the case's secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tests.e2e.harness import Run, World, users_of
from tests.e2e.servers.record import Seen, describe
from tests.e2e.servers.web import links_page, ok, presigned, protected, redirect


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _no_traceback(run: Run) -> None:
    assert "Traceback" not in run.output, run


def _failed_cleanly(run: Run) -> None:
    """Exit ≠ 0 with an ``error:`` line and no traceback."""
    assert run.returncode != 0, run
    assert "error:" in run.stderr, run
    _no_traceback(run)


def _ok(run: Run) -> None:
    assert run.returncode == 0, run
    _no_traceback(run)


def _no_authorization(seen: list[Seen]) -> None:
    carried = [s for s in seen if s.authorization or s.proxy_authorization]
    assert not carried, "credentials were sent where none belong:\n" + describe(carried)


def _results(run: Run) -> list[dict[str, Any]]:
    assert isinstance(run.result, list), f"fetch_client printed no RESULT\n{run}"
    return run.result


# -- 1 ----------------------------------------------------------------------------------------


def case01_router_302_to_tls_upstream_netrc(w: World) -> None:
    """simpleindex http route 302 → pypiserver (TLS, htpasswd) on another host; netrc has it."""
    s = w.servers
    w.netrc(f"machine {s.pypi.ip} login {s.alice.name} password {s.alice.password}")
    router = s.router.url
    page = f"{router}/{s.PRIV_PROJECT}/"

    run = w.check(page, "--index-url", router + "/")
    _ok(run)
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
    _no_authorization(router_seen)
    # The hops are shown: the 302 from the router, the upstream, the credential source.
    assert s.pypi.netloc in run.stdout, run
    assert "302" in run.stdout and "200" in run.stdout, run
    assert f"netrc machine {s.pypi.ip}" in run.output, run

    # "install works": the page and the wheel it links to, through one client.
    mark_router = len(w.router_seen())
    fetched = w.fetch([{"url": page, "follow": True}], cli={"index_url": router + "/"})
    _ok(fetched)
    results = _results(fetched)
    files = [r for r in results if r["purpose"] == "file"]
    assert len(files) == 1 and files[0]["status"] == 200, results
    assert files[0]["sha256"] == _sha(s.priv_wheel.read_bytes()), results
    up = w.pypi_seen()
    assert any(x.path.startswith("/packages/") and x.status == 200 for x in up), describe(up)
    assert all(x.status == 200 for x in up), "no 401 round trip expected:\n" + describe(up)
    assert users_of(up) == [s.alice.name] * len(up), describe(up)
    _no_authorization(w.router_seen()[mark_router:])


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
    _ok(run)
    router_seen = w.router_seen()
    assert [x.status for x in router_seen] == [302], (
        "the retry must not go back to the router:\n" + describe(router_seen)
    )
    _no_authorization(router_seen)
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
    _ok(fetched)
    results = _results(fetched)
    shas = {r["sha256"] for r in results if r["purpose"] == "file" and r["status"] == 200}
    assert _sha(s.local_wheel.read_bytes()) in shas, results
    assert _sha(s.priv_wheel.read_bytes()) in shas, results
    router_seen = w.router_seen()
    _no_authorization(router_seen)
    assert any(x.path.endswith(".whl") and x.status == 200 for x in router_seen), describe(
        router_seen
    )
    up = w.pypi_seen()
    assert up and up[0].status == 200, describe(up)
    assert users_of(up) == [s.alice.name] * len(up), describe(up)


# -- 3 ----------------------------------------------------------------------------------------


def _presigned_setup(w: World, case: str) -> tuple[str, str, bytes]:
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
    return index, w.url(s.other, f"/{case}/simple/blob-pkg/"), wheel


def case03_index_userinfo_links_to_presigned_host(w: World) -> None:
    s = w.servers
    index, page, wheel = _presigned_setup(w, "c3")
    fetched = w.fetch([{"url": page, "follow": True}], cli={"index_url": index})
    _ok(fetched)
    results = _results(fetched)
    assert [r["status"] for r in results] == [200, 200], results
    assert results[1]["sha256"] == _sha(wheel)
    idx = w.seen(s.other, "/c3/")
    assert users_of(idx) == ["bob"] and idx[0].status == 200, describe(idx)
    blob = w.seen(s.files, "/c3/")
    assert len(blob) == 1 and blob[0].method == "GET", describe(blob)
    _no_authorization(blob)
    assert "X-Amz-Signature=" in blob[0].path  # the signed URL arrived intact


def case03b_presigned_url_gets_no_ambient_netrc(w: World) -> None:
    """Rule 10: a signed URL gets no ambient credentials even when netrc has its host."""
    s = w.servers
    intruder = w.new_user("nosy")
    w.netrc(f"machine {s.files.ip} login {intruder.name} password {intruder.password}")
    index, page, _wheel = _presigned_setup(w, "c3b")
    fetched = w.fetch([{"url": page, "follow": True}], cli={"index_url": index})
    _ok(fetched)
    blob = w.seen(s.files, "/c3b/")
    assert blob and blob[-1].status == 200, describe(blob)
    _no_authorization(blob)


# -- 4 ----------------------------------------------------------------------------------------


def case04_cross_origin_redirect_uses_targets_netrc_only(w: World) -> None:
    s = w.servers
    bob = w.new_user("bob")
    w.netrc(f"machine {s.pypi.ip} login {s.alice.name} password {s.alice.password}")
    target = f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/"
    w.route(
        s.other, "/c4/simple/priv-pkg/", protected({bob.name: bob.password}, redirect(302, target))
    )
    index = w.url(s.other, "/c4/simple/", userinfo=f"{bob.name}:{bob.password}")
    run = w.check(w.url(s.other, "/c4/simple/priv-pkg/"), "--index-url", index)
    _ok(run)
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
    _ok(run)
    assert users_of(w.seen(s.other, "/c5/")) == ["bob"], describe(w.seen(s.other, "/c5/"))
    other_port = w.seen(s.other2, "/c5/")
    assert [x.status for x in other_port] == [200], describe(other_port)
    _no_authorization(other_port)


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
    _ok(run)
    assert users_of(w.seen(s.mixed_tls, "/c6/simple/a/")) == ["bob"]
    http_a = w.seen(s.mixed_http, "/c6/a/")
    assert http_a and http_a[-1].status == 200, describe(http_a)
    _no_authorization(http_a)

    # (b) the http hop answers 401: a clear error, still nothing sent over http, no loop.
    plain_b = w.route(s.mixed_http, "/c6/b/pkg/", protected(users, ok("secret page")))
    w.route(s.mixed_tls, "/c6/simple/b/", protected(users, redirect(302, plain_b)))
    run = w.check(w.url(s.mixed_tls, "/c6/simple/b/"), "--index-url", index)
    _failed_cleanly(run)
    http_b = w.seen(s.mixed_http, "/c6/b/")
    assert 1 <= len(http_b) <= 2, describe(http_b)
    _no_authorization(http_b)
    assert plain_b in run.stderr, run  # the error names the http URL that answered 401
    assert "401" in run.stderr, run


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
    _ok(run)
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
    _ok(run)
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
    _ok(fetched)
    results = _results(fetched)
    assert [r["status"] for r in results] == [200, 200, 200], results
    assert all(r["sha256"] == _sha(wheel) for r in results), results
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
    _ok(run)
    red = w.seen(s.other, "/c10/")
    assert [x.status for x in red] == [302], describe(red)
    _no_authorization(red)
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
    index = w.url(s.other, "/c11/simple/")
    fetched = w.fetch(
        [{"url": w.url(s.other, "/c11/simple/blob-pkg/"), "follow": True}],
        cli={"index_url": index},
    )
    _ok(fetched)
    page = w.seen(s.other, "/c11/simple/")
    assert users_of(page) == [None, "erin"], (
        "netrc default: never proactive, used after the index's 401:\n" + describe(page)
    )
    assert [x.status for x in page] == [401, 200], describe(page)
    hop = w.seen(s.files, "/c11/")
    assert hop and hop[-1].status == 200, describe(hop)
    _no_authorization(hop)
    assert _results(fetched)[-1]["sha256"] == _sha(wheel)


# -- 12 ---------------------------------------------------------------------------------------


def case12_redirect_loop(w: World) -> None:
    s = w.servers
    a = w.url(s.other, "/c12/a")
    b = w.route(s.other, "/c12/b", redirect(302, a))
    w.route(s.other, "/c12/a", redirect(302, b))
    run = w.check(a, "--index-url", w.url(s.other, "/c12/"))
    _failed_cleanly(run)
    seen = w.seen(s.other, "/c12/")
    assert 10 <= len(seen) <= 11, "10 hops, then stop:\n" + describe(seen)
    assert "redirect" in run.stderr.lower(), run
    assert a in run.stderr and b in run.stderr, "the error lists the chain\n" + str(run)


# -- 13 ---------------------------------------------------------------------------------------


def case13_no_credentials_anywhere(w: World) -> None:
    s = w.servers
    page = f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/"
    run = w.check(page, "--index", f"corp={s.pypi.url}/simple/")
    _failed_cleanly(run)
    assert "needs credentials" in run.stderr and "401" in run.stderr, run
    assert page in run.stderr, run
    assert str(w.netrc_path) in run.stderr, "the hint names the netrc path kea read\n" + str(run)
    assert "KEA_INDEX_CORP_" in run.stderr, run
    assert "keyring" in run.stderr.lower(), run
    up = w.pypi_seen()
    assert 1 <= len(up) <= 2 and all(x.status == 401 for x in up), describe(up)
    _no_authorization(up)


# -- 14 ---------------------------------------------------------------------------------------


def case14_wrong_netrc_password(w: World) -> None:
    s = w.servers
    wrong_alice = w.new_user(s.alice.name)  # alice with a wrong (random) password
    hank = w.new_user("hank")
    wrong_hank = w.new_user("hank")
    w.netrc(
        f"machine {s.pypi.ip} login {wrong_alice.name} password {wrong_alice.password}\n"
        f"machine {s.other.ip} login {wrong_hank.name} password {wrong_hank.password}\n"
    )
    # (a) pypiserver answers 403 to wrong credentials.
    page = f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/"
    run = w.check(page, "--index-url", f"{s.pypi.url}/simple/")
    _failed_cleanly(run)
    assert "rejected" in run.stderr.lower() and "netrc" in run.stderr, run
    up = w.pypi_seen()
    assert 1 <= len(up) <= 2, describe(up)
    assert all(x.status in (401, 403) for x in up), describe(up)
    # (b) a server that answers 401 to wrong credentials: still final, never a loop.
    w.route(s.other, "/c14/simple/pkg/", protected({hank.name: hank.password}, ok("x")))
    run = w.check(w.url(s.other, "/c14/simple/pkg/"), "--index-url", w.url(s.other, "/c14/simple/"))
    _failed_cleanly(run)
    assert "rejected" in run.stderr.lower(), run
    seen = w.seen(s.other, "/c14/")
    assert 1 <= len(seen) <= 2, describe(seen)
    assert all(x.status == 401 for x in seen), describe(seen)


# -- 15 ---------------------------------------------------------------------------------------


def case15_keyring_username_only_index_url(w: World) -> None:
    s = w.servers
    w.keyring({(None, s.frank.name): s.frank.password})
    index = f"https://{s.frank.name}@{s.pypi.netloc}/simple/"
    run = w.check(
        f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/",
        "--index-url",
        index,
        "--keyring-provider",
        "subprocess",
    )
    _ok(run)
    up = w.pypi_seen()
    assert up and up[0].user == s.frank.name and up[0].status == 200, (
        "username-only URL: keyring first, no anonymous try:\n" + describe(up)
    )
    assert users_of(up) == [s.frank.name] * len(up), describe(up)
    calls = w.keyring_calls()
    assert len(calls) == 1, calls
    assert calls[0][0] == "get" and calls[0][2] == s.frank.name, calls
    assert s.pypi.netloc in calls[0][1], calls


# -- 16 ---------------------------------------------------------------------------------------


def case16_keyring_on_cross_origin_hop(w: World) -> None:
    s = w.servers
    w.keyring({(None, s.grace.name): s.grace.password})
    router = s.router.url
    run = w.check(
        f"{router}/{s.PRIV_PROJECT}/",
        "--index-url",
        router + "/",
        "--index",
        f"up=https://{s.grace.name}@{s.pypi.netloc}/simple/",
        "--keyring-provider",
        "subprocess",
    )
    _ok(run)
    _no_authorization(w.router_seen())
    up = w.pypi_seen()
    assert up and up[0].user == s.grace.name and up[0].status == 200, describe(up)
    assert users_of(up) == [s.grace.name] * len(up), describe(up)
    calls = w.keyring_calls()
    assert calls and all(c[0] == "get" and c[2] == s.grace.name for c in calls), calls
    assert len({tuple(c) for c in calls}) == len(calls), "keyring asked twice for one pair"


# -- 17 ---------------------------------------------------------------------------------------


def case17_index_env_credentials_win_over_url(w: World) -> None:
    s = w.servers
    wrong = w.new_user("wronguser")
    run = w.check(
        f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/",
        "--index",
        f"corp=https://{wrong.name}:{wrong.password}@{s.pypi.netloc}/simple/",
        env={"KEA_INDEX_CORP_USERNAME": s.alice.name, "KEA_INDEX_CORP_PASSWORD": s.alice.password},
    )
    _ok(run)
    up = w.pypi_seen()
    assert up and up[0].status == 200, describe(up)
    assert users_of(up) == [s.alice.name] * len(up), describe(up)
    assert "index 'corp' env" in run.output, run


# -- 18 ---------------------------------------------------------------------------------------


def case18_authenticate_always(w: World) -> None:
    s = w.servers
    ivy = w.new_user("ivy")
    # (a) a server that answers 200 to anonymous requests still gets the credentials.
    w.route(s.other, "/c18/a/simple/pkg/", ok("<html>public</html>", "text/html"))
    w.kea_toml(
        f"""
        [[index]]
        name = "gl"
        url = "{w.url(s.other, "/c18/a/simple/")}"
        authenticate = "always"
        """
    )
    run = w.check(
        w.url(s.other, "/c18/a/simple/pkg/"),
        env={"KEA_INDEX_GL_USERNAME": ivy.name, "KEA_INDEX_GL_PASSWORD": ivy.password},
    )
    _ok(run)
    seen = w.seen(s.other, "/c18/a/")
    assert users_of(seen) == ["ivy"], describe(seen)
    # (b) none configured → an error before any request.
    w.route(s.other, "/c18/b/simple/pkg/", ok("<html>public</html>", "text/html"))
    w.kea_toml(
        f"""
        [[index]]
        name = "gl"
        url = "{w.url(s.other, "/c18/b/simple/")}"
        authenticate = "always"
        """
    )
    run = w.check(w.url(s.other, "/c18/b/simple/pkg/"))
    _failed_cleanly(run)
    assert w.seen(s.other, "/c18/b/") == [], describe(w.seen(s.other, "/c18/b/"))


# -- 19 ---------------------------------------------------------------------------------------


def case19_two_indexes_one_host_different_credentials(w: World) -> None:
    s = w.servers
    u1, u2 = w.new_user("uone"), w.new_user("utwo")
    page = ok("<html></html>", "text/html")
    for name, user in (("one", u1), ("two", u2)):
        for pkg in ("pkg", "pkg2"):
            w.route(
                s.other, f"/c19/{name}/simple/{pkg}/", protected({user.name: user.password}, page)
            )
    fetched = w.fetch(
        [
            {"url": w.url(s.other, "/c19/one/simple/pkg/")},
            {"url": w.url(s.other, "/c19/two/simple/pkg/")},
            {"url": w.url(s.other, "/c19/one/simple/pkg2/")},
            {"url": w.url(s.other, "/c19/two/simple/pkg2/")},
        ],
        cli={
            "index": [
                "one=" + w.url(s.other, "/c19/one/simple/", f"{u1.name}:{u1.password}"),
                "two=" + w.url(s.other, "/c19/two/simple/", f"{u2.name}:{u2.password}"),
            ]
        },
    )
    _ok(fetched)
    one, two = w.seen(s.other, "/c19/one/"), w.seen(s.other, "/c19/two/")
    assert users_of(one) == ["uone", "uone"], describe(one)
    assert users_of(two) == ["utwo", "utwo"], describe(two)


# -- 20 ---------------------------------------------------------------------------------------


def case20_proxy_credentials_only_to_the_proxy(w: World) -> None:
    s = w.servers
    w.netrc(f"machine {s.pypi.ip} login {s.alice.name} password {s.alice.password}")
    p = s.proxy_user
    proxy = s.proxy.url(p.name, p.password)
    router = s.router.url
    run = w.check(
        f"{router}/{s.PRIV_PROJECT}/",
        "--index-url",
        router + "/",
        env={"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy},
    )
    _ok(run)
    through = w.proxy_seen()
    assert all(x.proxy_user == p.name for x in through if x.status != 407), describe(through)
    http_req = [x for x in through if x.path.startswith(router)]
    assert http_req and http_req[-1].status == 302, "http goes through the proxy:\n" + describe(
        through
    )
    _no_authorization([x for x in http_req if x.authorization])
    tunnels = [x for x in through if x.method == "CONNECT"]
    assert tunnels and tunnels[-1].path == s.pypi.netloc, describe(through)
    router_seen = w.router_seen()
    assert router_seen, "the router got nothing"
    _no_authorization(router_seen)
    up = w.pypi_seen()
    assert up and up[0].user == s.alice.name and up[0].status == 200, describe(up)
    assert all(x.proxy_authorization is None for x in up), describe(up)


# -- 21 ---------------------------------------------------------------------------------------


def case21_userinfo_that_looks_like_a_host(w: World) -> None:
    s = w.servers
    victim = w.new_user("victim")
    w.netrc(f"machine a.example login {victim.name} password {victim.password}")
    w.route(s.other, "/c21/simple/pkg/", ok("<html></html>", "text/html"))
    url = w.url(s.other, "/c21/simple/pkg/", userinfo="a.example:")
    run = w.check(url)
    _no_traceback(run)
    seen = w.seen(s.other, "/c21/")
    assert seen, "the request must go to the real host\n" + str(run)
    leaked = [x for x in seen if x.password == victim.password or x.user == victim.name]
    assert not leaked, "netrc of a.example sent to the real host:\n" + describe(leaked)


# -- 22 ---------------------------------------------------------------------------------------


def case22_file_location_is_an_error(w: World) -> None:
    s = w.servers
    marker = w.tmp / "not-for-kea.txt"
    content = "kea-e2e-local-file-" + w.prefix.strip("/")
    marker.write_text(content + "\n")
    w.route(s.other, "/c22/simple/pkg/", redirect(302, marker.as_uri()))
    w.route(s.other, "/c22/simple/ftp/", redirect(302, f"ftp://{s.files.ip}/pkg/"))
    for path in ("/c22/simple/pkg/", "/c22/simple/ftp/"):
        run = w.check(w.url(s.other, path), "--index-url", w.url(s.other, "/c22/simple/"))
        _failed_cleanly(run)
        assert content not in run.output, run
    seen = w.seen(s.other, "/c22/")
    assert [x.status for x in seen] == [302, 302], describe(seen)


# -- 23 ---------------------------------------------------------------------------------------


def case23_longest_index_prefix_wins(w: World) -> None:
    s = w.servers
    wheel = s.file_wheel.read_bytes()
    ua, ub = w.new_user("ua"), w.new_user("ub")
    uo, ui = w.new_user("uouter"), w.new_user("uinner")
    blob = ok(wheel, "application/octet-stream")
    name = s.file_wheel.name
    w.route(s.other, f"/c23/a/packages/{name}", protected({ua.name: ua.password}, blob))
    w.route(s.other, f"/c23/b/packages/{name}", protected({ub.name: ub.password}, blob))
    w.route(s.other, f"/c23n/inner/packages/{name}", protected({ui.name: ui.password}, blob))
    w.route(s.other, f"/c23n/packages/{name}", protected({uo.name: uo.password}, blob))
    fetched = w.fetch(
        [
            {"url": w.url(s.other, f"/c23/b/packages/{name}"), "purpose": "file"},
            {"url": w.url(s.other, f"/c23/a/packages/{name}"), "purpose": "file"},
            {"url": w.url(s.other, f"/c23n/inner/packages/{name}"), "purpose": "file"},
            {"url": w.url(s.other, f"/c23n/packages/{name}"), "purpose": "file"},
        ],
        cli={
            "index": [
                "a=" + w.url(s.other, "/c23/a/simple/", f"{ua.name}:{ua.password}"),
                "b=" + w.url(s.other, "/c23/b/simple/", f"{ub.name}:{ub.password}"),
                "outer=" + w.url(s.other, "/c23n/simple/", f"{uo.name}:{uo.password}"),
                "inner=" + w.url(s.other, "/c23n/inner/simple/", f"{ui.name}:{ui.password}"),
            ]
        },
    )
    _ok(fetched)
    assert users_of(w.seen(s.other, "/c23/b/")) == ["ub"], describe(w.seen(s.other, "/c23/b/"))
    assert users_of(w.seen(s.other, "/c23/a/")) == ["ua"], describe(w.seen(s.other, "/c23/a/"))
    inner = w.seen(s.other, "/c23n/inner/")
    assert users_of(inner) == ["uinner"], "longest prefix wins:\n" + describe(inner)
    outer = w.seen(s.other, "/c23n/packages/")
    assert users_of(outer) == ["uouter"], describe(outer)


CASES: dict[str, Callable[[World], None]] = {
    name.split("_", 1)[0]: fn
    for name, fn in sorted(globals().items())
    if name.startswith("case") and callable(fn)
}
