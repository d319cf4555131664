"""The credential policy of specs/auth.md, decision by decision (no network)."""

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kea.auth.errors import CredentialsRequired
from kea.auth.netrc import parse_netrc
from kea.auth.store import CredentialStore, Decision
from kea.auth.urls import split_userinfo
from kea.settings import load_settings

NETRC = """
machine h.example login netrc-user password netrc-pw
machine up.example login up-user password up-pw
machine a.example login a-user password a-pw
machine files.example login f-user password f-pw
default login dflt-user password dflt-pw
"""


@dataclass
class Case:
    name: str
    url: str
    expect_user: str | None  # None: no credentials
    expect_password: str | None = None
    expect_source: str = "none"
    cli: dict[str, object] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    reactive: bool = False
    downgraded: bool = False
    location: bool = False


def make_store(tmp_path: Path, cli: dict[str, object], env: dict[str, str]) -> CredentialStore:
    full_env = {"HOME": str(tmp_path), "KEA_NO_CONFIG": "1", **env}
    settings = load_settings(cli=cli, env=full_env, cwd=tmp_path)
    return CredentialStore(settings, netrc=parse_netrc(NETRC))


def decide(store: CredentialStore, case: Case) -> Decision:
    split = split_userinfo(case.url)
    userinfo = split if split.has_userinfo else None
    if case.reactive:
        coro = store.reactive(split.url, userinfo=userinfo, downgraded=case.downgraded)
    else:
        coro = store.proactive(
            split.url, userinfo=userinfo, downgraded=case.downgraded, location=case.location
        )
    return asyncio.run(coro)


CORP = {"index": ["corp=https://iu:ip@h.example/corp/simple"]}
CORP_ENV = {"KEA_INDEX_CORP_USERNAME": "env-user", "KEA_INDEX_CORP_PASSWORD": "env-pw"}

CASES = [
    Case("url userinfo", "https://u:p@other.example/x", "u", "p", "url"),
    Case(
        "index url userinfo",
        "https://h.example/corp/simple/pkg/",
        "iu",
        "ip",
        "index 'corp' url",
        cli=CORP,
    ),
    Case(
        "index env beats index url",
        "https://h.example/corp/simple/pkg/",
        "env-user",
        "env-pw",
        "index 'corp' env",
        cli=CORP,
        env=CORP_ENV,
    ),
    Case(
        "env beats the index userinfo repeated in the request URL",
        "https://iu:ip@h.example/corp/simple/pkg/",
        "env-user",
        "env-pw",
        "index 'corp' env",
        cli=CORP,
        env=CORP_ENV,
    ),
    Case(
        "other userinfo in the request URL wins over the index",
        "https://x:y@h.example/corp/p/",
        "x",
        "y",
        "url",
        cli=CORP,
        env=CORP_ENV,
    ),
    Case(
        "explicit beats netrc on the index's own host",
        "https://h.example/corp/files/a.whl",
        "iu",
        "ip",
        "index 'corp' url",
        cli=CORP,
    ),
    Case(
        "not under the index (segment boundary): netrc",
        "https://h.example/corpevil/x",
        "netrc-user",
        "netrc-pw",
        "netrc machine h.example",
        cli=CORP,
    ),
    Case(
        "netrc machine proactively",
        "https://up.example/simple/pkg/",
        "up-user",
        "up-pw",
        "netrc machine up.example",
    ),
    Case(
        "netrc host compared case-insensitively",
        "https://UP.Example/simple/",
        "up-user",
        "up-pw",
        "netrc machine up.example",
    ),
    Case(
        "netrc default never proactive",
        "https://nowhere.example/simple/",
        None,
        cli={"index_url": "https://nowhere.example/simple"},
    ),
    Case(
        "netrc default after a 401 from a configured index's origin",
        "https://nowhere.example/simple/pkg/",
        "dflt-user",
        "dflt-pw",
        "netrc default",
        cli={"index_url": "https://nowhere.example/simple"},
        reactive=True,
    ),
    Case(
        "netrc default never for a host that is no index's origin",
        "https://s3.example/bucket/f.whl",
        None,
        reactive=True,
        cli={"index_url": "https://nowhere.example/simple"},
    ),
    Case("signed URL gets no netrc", "https://files.example/f.whl?X-Amz-Signature=abc", None),
    Case(
        "signed URL gets no netrc after 401 either",
        "https://files.example/f.whl?sig=abc",
        None,
        reactive=True,
    ),
    Case("https->http downgrade sends nothing", "http://up.example/simple/", None, downgraded=True),
    Case(
        "downgrade to an http index the user configured",
        "http://h.example/corp/simple/x/",
        "iu",
        "ip",
        "index 'corp' url",
        cli={"index": ["corp=http://iu:ip@h.example/corp/simple"]},
        downgraded=True,
    ),
    Case(
        "authenticate never sends nothing",
        "https://h.example/corp/simple/pkg/",
        None,
        cli={"index": ["corp=https://iu:ip@h.example/corp/simple"]},
        env={},
    ),
    Case(
        "username-only URL sent as a token",
        "https://TOKEN@nothing.example/simple/",
        "TOKEN",
        None,
        "url",
    ),
    Case(
        "username-only index + netrc entry with that login",
        "https://h.example/corp/simple/pkg/",
        "netrc-user",
        "netrc-pw",
        "netrc machine h.example",
        cli={"index": ["corp=https://netrc-user@h.example/corp/simple"]},
    ),
    Case(
        "username-only index, netrc login differs: token",
        "https://h.example/corp/simple/pkg/",
        "someone",
        None,
        "index 'corp' url",
        cli={"index": ["corp=https://someone@h.example/corp/simple"]},
    ),
    Case(
        "confusable authority: netrc of the real host only",
        "http://a.example:@evil.example/",
        "a.example",
        None,
        "url",
    ),
    Case(
        "location userinfo used for the hop",
        "https://lu:lp@up.example/simple/",
        "lu",
        "lp",
        "url",
        location=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy(case: Case, tmp_path: Path) -> None:
    cli = case.cli
    if case.name == "authenticate never sends nothing":
        (tmp_path / "kea.toml").write_text(
            '[[index]]\nname = "corp"\nurl = "https://iu:ip@h.example/corp/simple"\n'
            'authenticate = "never"\n'
        )
        settings = load_settings(cli={}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
        store = CredentialStore(settings, netrc=parse_netrc(NETRC))
    else:
        store = make_store(tmp_path, cli, case.env)
    d = decide(store, case)
    if case.expect_user is None:
        assert d.credentials is None, d
        assert d.source == "none"
    else:
        assert d.credentials is not None
        assert d.credentials.username == case.expect_user
        assert d.credentials.password == case.expect_password
        assert d.source == case.expect_source
    if case.location:
        assert d.cacheable is False


def test_downgrade_and_never_forbid_the_reactive_retry(tmp_path: Path) -> None:
    store = make_store(tmp_path, {}, {})
    d = asyncio.run(store.proactive("http://up.example/x", downgraded=True))
    assert d.reason and "https to http" in d.reason
    assert d.reactive_allowed is False


def test_two_indexes_on_one_host_longest_prefix_wins(tmp_path: Path) -> None:
    cli = {
        "index": [
            "a=https://ua:pa@h.example/a/simple",
            "b=https://ub:pb@h.example/b/simple",
            "ab=https://uab:pab@h.example/a/b/simple",
        ]
    }
    store = make_store(tmp_path, cli, {})

    def user_for(url: str) -> str | None:
        d = asyncio.run(store.proactive(url))
        return d.credentials.username if d.credentials else None

    assert user_for("https://h.example/b/files/x.whl") == "ub"
    assert user_for("https://h.example/a/simple/pkg/") == "ua"
    assert user_for("https://h.example/a/b/simple/pkg/") == "uab"
    assert user_for("https://h.example/abc/simple/") == "netrc-user"  # not under /a


def test_run_cache_most_specific_prefix_and_origin_scoped(tmp_path: Path) -> None:
    cli = {"index": ["a=https://cache.example/a/simple", "b=https://cache.example/b/simple"]}
    store = make_store(tmp_path, cli, {})
    from kea.auth.credentials import Credentials

    for url, creds in (
        ("https://cache.example/a/simple/p/", Credentials("ka", "x")),
        ("https://cache.example/b/simple/p/", Credentials("kb", "y")),
    ):
        store.record_success(url, Decision(creds, "keyring", store.index_for(url)))
    a = asyncio.run(store.proactive("https://cache.example/a/simple/other/"))
    b = asyncio.run(store.proactive("https://cache.example/b/files/f.whl"))
    assert a.source == "cache" and a.credentials == Credentials("ka", "x")
    assert b.source == "cache" and b.credentials == Credentials("kb", "y")
    # Another origin (scheme) never sees them; a signed URL never gets cached credentials.
    assert asyncio.run(store.proactive("http://cache.example/a/simple/p/")).credentials is None
    signed = asyncio.run(store.proactive("https://cache.example/a/f.whl?X-Amz-Signature=s"))
    assert signed.credentials is None
    # Location userinfo is for one hop: never cached.
    store.record_success(
        "https://cache.example/zzz", Decision(Credentials("loc", "z"), "url", cacheable=False)
    )
    assert store.cached("https://cache.example/zzz") is None


def test_authenticate_always_without_credentials_errors_before_sending(tmp_path: Path) -> None:
    (tmp_path / "kea.toml").write_text(
        '[[index]]\nname = "gl"\nurl = "https://gitlab.example/api/simple"\n'
        'authenticate = "always"\n'
    )
    settings = load_settings(cli={}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    store = CredentialStore(settings, netrc=parse_netrc(""))
    with pytest.raises(CredentialsRequired) as e:
        asyncio.run(store.proactive("https://gitlab.example/api/simple/pkg/"))
    assert "index 'gl'" in e.value.message
    assert e.value.hint and "KEA_INDEX_GL_USERNAME" in e.value.hint


def test_authenticate_always_with_credentials(tmp_path: Path) -> None:
    (tmp_path / "kea.toml").write_text(
        '[[index]]\nname = "gl"\nurl = "https://gitlab.example/api/simple"\n'
        'authenticate = "always"\n'
    )
    env = {"HOME": str(tmp_path), "KEA_INDEX_GL_USERNAME": "t", "KEA_INDEX_GL_PASSWORD": "tok"}
    settings = load_settings(cli={}, env=env, cwd=tmp_path)
    store = CredentialStore(settings, netrc=parse_netrc(""))
    d = asyncio.run(store.proactive("https://gitlab.example/api/simple/pkg/"))
    assert d.source == "index 'gl' env" and d.credentials is not None


def test_where_looked_names_every_place(tmp_path: Path) -> None:
    store = make_store(tmp_path, CORP, {})
    hint = store.where_looked("https://h.example/corp/simple/pkg/")
    assert "KEA_INDEX_CORP_USERNAME/KEA_INDEX_CORP_PASSWORD" in hint
    assert "the URL" in hint
    assert "netrc" in hint
    assert "keyring (off" in hint
    assert "ip" not in hint.split()  # no secret of the index
