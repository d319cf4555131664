"""specs/auth.md cases 13–23: credential sources, rejections, keyring, env, proxies, prefixes."""

from __future__ import annotations

from tests.e2e.checks import (
    failed_cleanly,
    no_authorization,
    no_traceback,
    ok_run,
)
from tests.e2e.harness import User, World, users_of
from tests.e2e.servers.record import describe
from tests.e2e.servers.web import ok, protected, redirect


def indexes_on_other(w: World, **indexes: tuple[str, User]) -> dict[str, list[str]]:
    """The ``cli`` of a fetch: named indexes on the ``other`` host, each at a path with its
    user's credentials in its URL."""
    return {
        "index": [
            f"{name}=" + w.url(w.servers.other, path, f"{user.name}:{user.password}")
            for name, (path, user) in indexes.items()
        ]
    }


# -- 13 ---------------------------------------------------------------------------------------


def case13_no_credentials_anywhere(w: World) -> None:
    s = w.servers
    page = f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/"
    run = w.check(page, "--index", f"corp={s.pypi.url}/simple/")
    failed_cleanly(run)
    assert "needs credentials" in run.stderr and "401" in run.stderr, run
    assert page in run.stderr, run
    assert str(w.netrc_path) in run.stderr, "the hint names the netrc path kea read\n" + str(run)
    assert "KEA_INDEX_CORP_" in run.stderr, run
    assert "keyring" in run.stderr.lower(), run
    up = w.pypi_seen()
    # Nothing found after the 401, so nothing to retry with: one request.
    assert len(up) == 1 and up[0].status == 401, describe(up)
    no_authorization(up)


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
    failed_cleanly(run)
    assert "rejected" in run.stderr.lower() and "netrc" in run.stderr, run
    up = w.pypi_seen()
    assert 1 <= len(up) <= 2, describe(up)
    assert all(x.status in (401, 403) for x in up), describe(up)
    # (b) a server that answers 401 to wrong credentials: still final, never a loop.
    w.route(s.other, "/c14/simple/pkg/", protected({hank.name: hank.password}, ok("x")))
    run = w.check(w.url(s.other, "/c14/simple/pkg/"), "--index-url", w.url(s.other, "/c14/simple/"))
    failed_cleanly(run)
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
    ok_run(run)
    up = w.pypi_seen()
    assert up and up[0].user == s.frank.name and up[0].status == 200, (
        "username-only URL: keyring first, no anonymous try:\n" + describe(up)
    )
    assert users_of(up) == [s.frank.name] * len(up), describe(up)
    calls = w.keyring_calls()
    assert len(calls) == 1, calls
    assert calls[0][0] == "get" and calls[0][2] == s.frank.name, calls
    assert s.pypi.netloc in calls[0][1], calls


def case15b_username_only_url_is_a_token_without_keyring(w: World) -> None:
    """``https://TOKEN@host/`` with keyring off: sent once as ``TOKEN:``, no anonymous try, and
    printed as ``****@``."""
    s = w.servers
    tok = w.new_user("tok").password.replace("pw-tok-", "glpat-")
    w.secret(tok)
    w.route(s.other, "/c15b/simple/pkg/", protected({tok: ""}, ok("<html></html>", "text/html")))
    index = w.url(s.other, "/c15b/simple/", userinfo=tok)
    run = w.check(w.url(s.other, "/c15b/simple/pkg/"), "--index-url", index)
    ok_run(run)
    seen = w.seen(s.other, "/c15b/")
    assert len(seen) == 1 and seen[0].status == 200, describe(seen)
    assert seen[0].user == tok and seen[0].password == "", describe(seen)
    assert tok not in run.output, "a username-only userinfo may be a token: print it as ****@"


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
    ok_run(run)
    no_authorization(w.router_seen())
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
    # Explicit beats ambient: a netrc entry for the same host must not win either.
    w.netrc(f"machine {s.pypi.ip} login {s.frank.name} password {s.frank.password}")
    run = w.check(
        f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/",
        "--index",
        f"corp=https://{wrong.name}:{wrong.password}@{s.pypi.netloc}/simple/",
        env={"KEA_INDEX_CORP_USERNAME": s.alice.name, "KEA_INDEX_CORP_PASSWORD": s.alice.password},
    )
    ok_run(run)
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
    ok_run(run)
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
    failed_cleanly(run)
    assert w.seen(s.other, "/c18/b/") == [], describe(w.seen(s.other, "/c18/b/"))
    # (c) "always" lets keyring answer without a known username (username and password).
    jay = w.new_user("jay")
    w.keyring({}, creds=(jay.name, jay.password))
    w.route(s.other, "/c18/c/simple/pkg/", ok("<html>public</html>", "text/html"))
    w.kea_toml(
        f"""
        keyring-provider = "subprocess"

        [[index]]
        name = "gl"
        url = "{w.url(s.other, "/c18/c/simple/")}"
        authenticate = "always"
        """
    )
    run = w.check(w.url(s.other, "/c18/c/simple/pkg/"))
    ok_run(run)
    seen = w.seen(s.other, "/c18/c/")
    assert users_of(seen) == ["jay"] and seen[0].password == jay.password, describe(seen)
    calls = w.keyring_calls()
    assert len(calls) == len({tuple(c) for c in calls}) >= 1, calls


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
        cli=indexes_on_other(w, one=("/c19/one/simple/", u1), two=("/c19/two/simple/", u2)),
    )
    ok_run(fetched)
    one, two = w.seen(s.other, "/c19/one/"), w.seen(s.other, "/c19/two/")
    assert users_of(one) == ["uone", "uone"], describe(one)
    assert users_of(two) == ["utwo", "utwo"], describe(two)


def case19b_one_index_never_lends_its_credentials_to_another(w: World) -> None:
    """Index a's root (``/c19b``) holds index b's (``/c19b/b``), and a's password is the one
    that worked last on the host: b's pages and files, and a URL under no index that b could
    link, get nothing from the run's cache; a same-origin redirect from a's area into b's gets
    b's (none), while one that leaves both roots keeps a's, as case 7's path move does."""
    s = w.servers
    ua = w.new_user("ua")
    page = ok("<html></html>", "text/html")
    only_a = {ua.name: ua.password}
    moved = w.route(s.other, "/c19b-moved/pkg/", protected(only_a, page))
    w.route(s.other, "/c19b/simple/pkg/", protected(only_a, page))
    w.route(s.other, "/c19b/simple/moving/", protected(only_a, redirect(302, moved)))
    b_page = w.route(s.other, "/c19b/b/simple/pkg/", page)
    w.route(s.other, "/c19b/simple/jump/", protected(only_a, redirect(302, b_page)))
    b_file = w.route(s.other, "/c19b/b/files/x.whl", ok(b"PK", "application/octet-stream"))
    loose = w.route(s.other, "/c19b-files/x.whl", ok(b"PK", "application/octet-stream"))
    fetched = w.fetch(
        [
            {"url": w.url(s.other, "/c19b/simple/pkg/")},
            {"url": w.url(s.other, "/c19b/simple/moving/")},
            {"url": b_page},
            {"url": b_file, "purpose": "file"},
            {"url": loose, "purpose": "file"},
            {"url": w.url(s.other, "/c19b/simple/jump/")},
        ],
        cli={
            "index": [
                "a=" + w.url(s.other, "/c19b/simple/", f"{ua.name}:{ua.password}"),
                "b=" + w.url(s.other, "/c19b/b/simple/"),
            ]
        },
    )
    ok_run(fetched)
    a_side = w.seen(s.other, "/c19b/simple/") + w.seen(s.other, "/c19b-moved/")
    assert users_of(a_side) == ["ua"] * 4, describe(a_side)
    b_side = w.seen(s.other, "/c19b/b/") + w.seen(s.other, "/c19b-files/")
    assert len(b_side) == 4, describe(b_side)
    no_authorization(b_side)


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
    ok_run(run)
    through = w.proxy_seen()
    assert all(x.proxy_user == p.name for x in through if x.status != 407), describe(through)
    http_req = [x for x in through if x.path.startswith(router)]
    assert http_req and http_req[-1].status == 302, "http goes through the proxy:\n" + describe(
        through
    )
    assert all(x.authorization is None for x in http_req), describe(http_req)
    tunnels = [x for x in through if x.method == "CONNECT"]
    assert tunnels and tunnels[-1].path == s.pypi.netloc, describe(through)
    router_seen = w.router_seen()
    assert router_seen, "the router got nothing"
    no_authorization(router_seen)
    up = w.pypi_seen()
    assert up and up[0].user == s.alice.name and up[0].status == 200, describe(up)
    assert all(x.proxy_authorization is None for x in up), describe(up)
    # Lower-case variables are read too.
    before = len(w.proxy_seen())
    run = w.check(f"{s.pypi.url}/simple/{s.PRIV_PROJECT}/", env={"https_proxy": proxy})
    ok_run(run)
    tunnels = [x for x in w.proxy_seen()[before:] if x.method == "CONNECT"]
    assert tunnels and tunnels[-1].proxy_user == p.name, describe(w.proxy_seen())


# -- 21 ---------------------------------------------------------------------------------------


def case21_userinfo_that_looks_like_a_host(w: World) -> None:
    s = w.servers
    victim = w.new_user("victim")
    w.netrc(f"machine a.example login {victim.name} password {victim.password}")
    w.route(s.other, "/c21/simple/pkg/", ok("<html></html>", "text/html"))
    url = w.url(s.other, "/c21/simple/pkg/", userinfo="a.example:")
    run = w.check(url)
    no_traceback(run)
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
        failed_cleanly(run)
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
    ok_run(fetched)
    assert users_of(w.seen(s.other, "/c23/b/")) == ["ub"], describe(w.seen(s.other, "/c23/b/"))
    assert users_of(w.seen(s.other, "/c23/a/")) == ["ua"], describe(w.seen(s.other, "/c23/a/"))
    inner = w.seen(s.other, "/c23n/inner/")
    assert users_of(inner) == ["uinner"], "longest prefix wins:\n" + describe(inner)
    outer = w.seen(s.other, "/c23n/packages/")
    assert users_of(outer) == ["uouter"], describe(outer)


def case23b_dot_segments_are_resolved_before_credentials_are_chosen(w: World) -> None:
    """``/c23d/b/../a/x`` is written under index b but sent (the HTTP client resolves it) as
    ``/c23d/a/x``, under index a: a's credentials go, never b's to a's path. So with
    ``/c23d/%61/x`` (under no index as written), which the server sees as ``/c23d/a/x``."""
    s = w.servers
    ua, ub = w.new_user("ua"), w.new_user("ub")
    blob = ok(s.file_wheel.read_bytes(), "application/octet-stream")
    name = s.file_wheel.name
    w.route(s.other, f"/c23d/a/packages/{name}", protected({ua.name: ua.password}, blob))
    w.route(s.other, f"/c23d/b/packages/{name}", protected({ub.name: ub.password}, blob))
    fetched = w.fetch(
        [
            {"url": w.url(s.other, f"/c23d/b/../a/packages/{name}"), "purpose": "file"},
            {"url": w.url(s.other, f"/c23d/a/%2e%2e/b/packages/{name}"), "purpose": "file"},
            {"url": w.url(s.other, f"/c23d/%61/packages/{name}"), "purpose": "file"},  # /a/
        ],
        cli=indexes_on_other(w, a=("/c23d/a/simple/", ua), b=("/c23d/b/simple/", ub)),
    )
    ok_run(fetched)
    a_seen, b_seen = w.seen(s.other, "/c23d/a/"), w.seen(s.other, "/c23d/b/")
    assert users_of(a_seen) == ["ua", "ua"], describe(a_seen)
    assert users_of(b_seen) == ["ub"], describe(b_seen)
