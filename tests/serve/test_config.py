"""kea-serve.toml validation, routing, name patterns and Accept negotiation (no servers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kea.errors import UsageError
from kea.serve.config import ServeConfig, load_config
from kea.serve.names import compile_pattern, normalize, valid_name, valid_names
from kea.serve.negotiate import choose
from kea.serve.routes import route_for, routed_to


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "wh").mkdir(exist_ok=True)
    path = tmp_path / "kea-serve.toml"
    path.write_text(text)
    return path


UPSTREAMS = """
[[upstream]]
name = "pypi"
url = "https://pypi.example/simple"

[[upstream]]
name = "corp"
url = "https://corp.example/simple"
username = "${CORP_USER}"
password = "${CORP_PASSWORD}"
"""

ENV = {"CORP_USER": "svc", "CORP_PASSWORD": "s3cret-value"}


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ServeConfig:
    return load_config(write(tmp_path, text), ENV if env is None else env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 1\n[[route]]\nmatch='*'\ndirectory='wh'\n", "colour: unknown key"),
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ("[[route]]\nmatch='*'\nupstream='nope'\n", "route[1].upstream: 'nope' is not an"),
        ("[[route]]\nmatch='a[b'\ndirectory='wh'\n", "route[1].match: bad pattern"),
        ("[[route]]\nmatch='x/y'\ndirectory='wh'\n", "route[1].match: bad pattern"),
        ("[[route]]\ndirectory='wh'\n", "route[1].match: missing"),
        ("[[route]]\nmatch='*'\n", "route[1]: missing target"),
        ("[[route]]\nmatch='*'\ndirectory='absent'\n", "route[1].directory:"),
        ("[[route]]\nmatch='*'\nupstream='pypi'\nmode='mirror'\n", "route[1].mode: expected"),
        ("[server]\nport = 'x'\n", "server.port: expected a number"),
        ("[server]\nworkers = 0\n", "server.workers: expected a number from 1"),
        ("private = 'acme'\n", "private: expected a list"),
        ("[[route]]\nmatch='*'\ndirectory='wh'\nread=['alice']\n", "auth: a route limits"),
        ("[[route]]\nmatch='*'\nupstream='pypi'\nwrite=['alice']\n", "route[1].write: only"),
        ("[[route]]\n", "route[1].match: missing"),
        ("", "route: missing"),
        ("[server\n", "not valid TOML"),
        (
            "[[upstream]]\nname='x'\nurl='http://[::1/simple'\n",
            "upstream[1].url: not a valid URL",
        ),
        (
            "[[upstream]]\nname='x'\nurl='http://127.0.0.3:99999/simple'\n",
            "upstream[1].url: not a valid URL",
        ),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(UsageError) as info:
        load(tmp_path, UPSTREAMS + text if "upstream=" in text.replace(" ", "") else text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "kea-serve.toml") + ":")
    assert expected in message


def test_credentials_never_in_clear(tmp_path: Path) -> None:
    text = '[[upstream]]\nname="c"\nurl="https://h/simple"\nusername="u"\npassword="hunter2"\n'
    with pytest.raises(UsageError, match=r"upstream\[1\]\.password: a password in clear"):
        load(tmp_path, text + "[[route]]\nmatch='*'\nupstream='c'\n")
    text = '[[upstream]]\nname="c"\nurl="https://u:hunter2@h/simple"\n'
    with pytest.raises(UsageError, match=r"upstream\[1\]\.url: credentials in the URL") as info:
        load(tmp_path, text + "[[route]]\nmatch='*'\nupstream='c'\n")
    assert "hunter2" not in str(info.value)


def test_missing_env_reference_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"upstream\[2\]\.username: environment variable CORP_USER"
    ):
        load(tmp_path, UPSTREAMS + "[[route]]\nmatch='*'\nupstream='corp'\n", env={})


def test_credential_sources(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-123\n")
    (tmp_path / "netrc").write_text("machine corp.example login nuser password npw\n")
    text = """
[[upstream]]
name = "env"
url = "https://corp.example/simple"
username = "${CORP_USER}"
password = "${CORP_PASSWORD}"
[[upstream]]
name = "tok"
url = "https://corp.example/tok/simple"
token-file = "token"
[[upstream]]
name = "rc"
url = "https://corp.example/rc/{project}/"
netrc = "netrc"
[[route]]
match = "*"
upstream = "env"
"""
    config = load(tmp_path, text)
    env, tok, rc = config.upstreams
    assert (env.username, env.password, env.credential_source) == ("svc", "s3cret-value", "env")
    assert (tok.username, tok.password) == ("__token__", "tok-123")
    assert (rc.username, rc.password) == ("nuser", "npw")
    assert rc.project_url("foo") == "https://corp.example/rc/foo/"
    assert env.project_url("foo") == "https://corp.example/simple/foo/"
    assert "s3cret-value" not in repr(config)


def test_first_match_wins_and_private_names_never_reach_public_routes(tmp_path: Path) -> None:
    text = (
        'private = ["acme-*"]\n'
        + UPSTREAMS
        + """
[[route]]
match = "evil"
deny = true
[[route]]
match = "*"
upstream = "pypi"
[[route]]
prefix = "acme-"
upstream = "corp"
private = true
[[route]]
match = ["Local_Thing", "loc?l-*"]
directory = "wh"
"""
    )
    config = load(tmp_path, text)
    names = {r.name for r in config.routes}
    assert names == {"route1", "pypi", "corp", "route4"}
    assert route_for(config, "evil").mode == "deny"  # type: ignore[union-attr]
    assert route_for(config, "requests").name == "pypi"  # type: ignore[union-attr]
    # the catch-all comes first, yet a private name is only ever routed to a private route
    assert route_for(config, "acme-secret").name == "corp"  # type: ignore[union-attr]
    # "local-thing" would match route 4, but route 2 (first) wins for a public name
    assert route_for(config, "local-thing").name == "pypi"  # type: ignore[union-attr]


ROUTING = (
    'private = ["acme-*", "in?ernal"]\n'
    + UPSTREAMS
    + """
[[route]]
match = ["evil", "bad-*"]
deny = true
[[route]]
match = "*"
upstream = "pypi"
[[route]]
match = "acme-[a-m]*"
upstream = "corp"
mode = "redirect"
private = true
[[route]]
prefix = "acme-"
upstream = "corp"
private = true
[[route]]
match = ["Local_Thing", "loc?l-*", "internal", "a.b"]
directory = "wh"
private = true
"""
)


def test_a_route_lists_exactly_the_names_it_is_routed(tmp_path: Path) -> None:
    """``routed_to`` (one expression per rule, for whole lists) agrees with ``route_for``."""
    import itertools

    config = load(tmp_path, ROUTING)
    parts = ["acme", "evil", "bad", "local", "locl", "internal", "intxrnal", "a", "b", "z", "m"]
    names = sorted(
        {normalize("-".join(p)) for n in (1, 2, 3) for p in itertools.product(parts, repeat=n)}
        | {"a-b", "acme-", "acme-n", "acme-b", "local-thing", "bad-", "evil-x", "[a]", "a.*"}
    )
    assert len(names) > 1000
    for route in config.routes:
        expected = [n for n in names if route_for(config, n) is route]
        assert routed_to(config, route, names) == expected, route.name
    assert "internal" in routed_to(config, config.routes[4], names)
    assert routed_to(config, config.routes[2], names)  # the redirect route gets acme-[a-m]*


def test_valid_names_of_a_whole_list() -> None:
    raw = ["Foo_Bar", "foo-bar", "ok", "a" * 128, "a" * 129, "-x", "x-", "bad name", "two\nlines"]
    raw += ["", "<b>", "Z.z", "x\n", "é"]
    expected = sorted({normalize(n) for n in raw if valid_name(n)})
    assert valid_names(raw) == expected == sorted(["foo-bar", "ok", "a" * 128, "z-z"])
    assert valid_names([]) == valid_names(["bad name"]) == []


def test_private_name_without_private_route_is_unrouted(tmp_path: Path) -> None:
    config = load(
        tmp_path, 'private = ["acme-*"]\n' + UPSTREAMS + '[[route]]\nmatch="*"\nupstream="pypi"\n'
    )
    assert route_for(config, "acme-x") is None
    assert route_for(config, "other") is not None


def test_patterns_and_names() -> None:
    assert compile_pattern("Foo_Bar").matches("foo-bar")
    assert compile_pattern("acme_*").matches("acme-x")
    assert not compile_pattern("acme-", prefix=True).matches("acmeco")
    assert compile_pattern("acme-", prefix=True).matches("acme-co")
    assert compile_pattern("pkg-[0-9]").matches("pkg-7")
    assert normalize("Foo.Bar__baz") == "foo-bar-baz"
    for bad in ("", "..", "../etc", "a/b", "-a", "a" * 129, "a b", "a%2f", "a\n", "a\r"):
        assert not valid_name(bad), bad
    assert valid_name("a" * 128)


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        (None, "html-legacy"),
        ("text/html", "html-legacy"),
        ("*/*", "html-legacy"),
        ("application/vnd.pypi.simple.v1+json", "json"),
        ("application/vnd.pypi.simple.latest+json", "json"),
        ("application/vnd.pypi.simple.v1+html", "html"),
        (
            "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
            " text/html;q=0.01",
            "json",
        ),
        ("application/vnd.pypi.simple.v1+json;q=0.1, text/html", "html-legacy"),
        ("application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.5", "html-legacy"),
        ("application/json", None),
        ("application/vnd.pypi.simple.v1+json;q=0", None),
    ],
)
def test_accept_negotiation(accept: str | None, kind: str | None) -> None:
    assert choose(accept) == kind


def test_cli_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[[route]]\nmatch='*'\nupstream='gone'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kea", "serve", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "route[1].upstream: 'gone'" in lines[0]
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "kea", "serve", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no such config file" in proc.stderr


def test_a_cache_directory_kea_serve_cannot_use_is_one_line(tmp_path: Path) -> None:
    """It was 'unexpected FileExistsError ... this is a bug in kea' (exit 2) when the
    cache-dir was a file, while --check said ok (found by a black-box audit)."""
    (tmp_path / "a-file").write_text("not a directory\n")
    path = write(
        tmp_path,
        f'[server]\ncache-dir = "{tmp_path / "a-file" / "cache"}"\n'
        f'[[route]]\nmatch = "*"\ndirectory = "{tmp_path / "wh"}"\n',
    )
    for extra in (["--check"], ["--port", "0"]):
        proc = subprocess.run(
            [sys.executable, "-m", "kea", "serve", "--config", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0 and lines[0].startswith("error: "), proc.stderr
        assert "a-file" in lines[0] and "bug in kea" not in proc.stderr, proc.stderr
        assert lines[1].startswith("hint: ") and "cache-dir" in lines[1], proc.stderr
        assert "Traceback" not in proc.stderr
