"""``kea-serve.toml``: read once at start, validated strictly, one-line errors.

Every problem is a ``UsageError`` naming the file, the key and what was expected, e.g.
``kea-serve.toml: route[2].upstream: 'corp' is not an [[upstream]] name (expected one of: pypi)``.
Secrets are never required in clear in the file: ``${ENV}`` references, a netrc file or a token
file. Resolved secrets live only in ``Upstream.username``/``password`` (never in ``repr``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kea.auth.redact import redact_url
from kea.auth.urls import origin_of
from kea.errors import UsageError
from kea.serve.names import Pattern, compile_pattern

DEFAULT_PORT = 8085
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_TOP = {"server", "auth", "upstream", "route", "private"}
_SERVER = {
    "host",
    "port",
    "workers",
    "cache-dir",
    "upstream-timeout",
    "upstream-connect-timeout",
    "upstream-retries",
    "page-ttl",
    "realm",
    "access-log",
    "max-upload-size",
    "max-page-size",
}
_AUTH = {"htpasswd", "tokens-file"}
_UPSTREAM = {"name", "url", "username", "password", "netrc", "token-file"}
_ROUTE = {
    "name",
    "match",
    "prefix",
    "upstream",
    "directory",
    "mode",
    "deny",
    "private",
    "read",
    "write",
}


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str  # without userinfo; may contain ``{project}`` (simpleindex style)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    credential_source: str = "none"  # "env", "netrc <path>", "token-file <path>", "none"

    @property
    def base_url(self) -> str:
        """The URL before ``{project}`` (simpleindex style), or the URL itself."""
        return self.url.split("{project}")[0]

    def project_url(self, project: str) -> str:
        if "{project}" in self.url:
            return self.url.replace("{project}", project)
        return self.url.rstrip("/") + f"/{project}/"


@dataclass(frozen=True)
class Route:
    name: str
    patterns: tuple[Pattern, ...]
    upstream: Upstream | None = None
    directory: Path | None = None
    mode: str = "proxy"  # "proxy" | "redirect" | "local" | "deny"
    private: bool = False
    read: tuple[str, ...] = ("*",)
    write: tuple[str, ...] = ()
    position: int = 0

    def matches(self, name: str) -> bool:
        return any(p.matches(name) for p in self.patterns)

    @property
    def public_read(self) -> bool:
        return "*" in self.read


@dataclass(frozen=True)
class ServeConfig:
    path: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    cache_dir: Path = Path(".kea-serve-cache")
    upstream_timeout: float = 30.0
    upstream_connect_timeout: float = 10.0
    upstream_retries: int = 1
    page_ttl: int = 600
    realm: str = "kea"
    access_log: bool = True
    max_upload_size: int = 512 * 1024 * 1024
    max_page_size: int = 256 * 1024 * 1024  # an upstream's page or project list, read whole
    htpasswd: Path | None = None
    tokens_file: Path | None = None
    upstreams: tuple[Upstream, ...] = ()
    routes: tuple[Route, ...] = ()
    private: tuple[Pattern, ...] = ()
    # The file's text as it was read: a worker started later (in place of one that died) is
    # given this, not whatever the file says by then, so that every worker serves one config.
    source: str = field(default="", repr=False, compare=False)

    def route(self, name: str) -> Route | None:
        for r in self.routes:
            if r.name == name:
                return r
        return None

    @property
    def needs_auth(self) -> bool:
        return any(not r.public_read or r.write for r in self.routes)


class _Ctx:
    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self.base = path.parent

    def fail(self, key: str, expected: str) -> UsageError:
        return UsageError(f"{self.path}: {key}: {expected}")

    def table(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {_kind(value)}")
        for k in value:
            if k not in allowed:
                raise self.fail(
                    f"{key}.{k}" if key else k,
                    "unknown key (expected one of: " + ", ".join(sorted(allowed)) + ")",
                )
        return value

    def string(self, t: Mapping[str, Any], key: str, where: str, default: Any = None) -> Any:
        value = t.get(key, default)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(
            f"{where}.{key}" if where else key, f"expected a string, got {_kind(value)}"
        )

    def number(
        self, t: Mapping[str, Any], key: str, where: str, default: float, *, lo: float, hi: float
    ) -> float:
        value = t.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key}", f"expected a number, got {_kind(value)}")
        if not lo <= value <= hi:
            raise self.fail(f"{where}.{key}", f"expected a number from {lo:g} to {hi:g}")
        return float(value)

    def boolean(self, t: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = t.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, got {_kind(value)}")
        return value

    def strings(self, t: Mapping[str, Any], key: str, where: str) -> list[str]:
        value = t.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self.fail(f"{where}.{key}", "expected a string or a list of strings")

    def file(self, raw: str, key: str) -> Path:
        path = Path(os.path.expanduser(raw))
        return path if path.is_absolute() else self.base / path

    def expand(self, raw: str, key: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.env:
                raise self.fail(key, f"environment variable {name} is not set")
            return self.env[name]

        return _ENV_RE.sub(sub, raw)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> ServeConfig:
    """Read and validate ``path``; raise UsageError (one line) on any problem."""
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such config file", hint="kea serve --config PATH (see kea serve --help)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    return dataclasses.replace(parse_config(data, path, env), source=text)


def parse_config(data: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> ServeConfig:
    ctx = _Ctx(path, env)
    ctx.table(dict(data), "", _TOP)
    server = ctx.table(data.get("server", {}), "server", _SERVER)
    auth = ctx.table(data.get("auth", {}), "auth", _AUTH)

    kwargs: dict[str, Any] = {"path": path}
    host = ctx.string(server, "host", "server")
    if host is not None:
        kwargs["host"] = host
    kwargs["port"] = int(ctx.number(server, "port", "server", DEFAULT_PORT, lo=0, hi=65535))
    kwargs["workers"] = int(ctx.number(server, "workers", "server", 1, lo=1, hi=64))
    cache_dir = ctx.string(server, "cache-dir", "server")
    kwargs["cache_dir"] = (
        ctx.file(cache_dir, "server.cache-dir") if cache_dir else (ctx.base / ".kea-serve-cache")
    )
    kwargs["upstream_timeout"] = ctx.number(
        server, "upstream-timeout", "server", 30, lo=0.01, hi=3600
    )
    kwargs["upstream_connect_timeout"] = ctx.number(
        server, "upstream-connect-timeout", "server", 10, lo=0.01, hi=3600
    )
    kwargs["upstream_retries"] = int(
        ctx.number(server, "upstream-retries", "server", 1, lo=0, hi=10)
    )
    kwargs["page_ttl"] = int(ctx.number(server, "page-ttl", "server", 600, lo=0, hi=86400 * 30))
    realm = ctx.string(server, "realm", "server", "kea")
    if not re.fullmatch(r"[ -!#-~]{1,64}", realm):
        raise ctx.fail("server.realm", "expected 1-64 printable characters without quotes")
    kwargs["realm"] = realm
    kwargs["access_log"] = ctx.boolean(server, "access-log", "server", True)
    kwargs["max_upload_size"] = int(
        ctx.number(server, "max-upload-size", "server", 512 * 1024 * 1024, lo=1, hi=2**40)
    )
    kwargs["max_page_size"] = int(
        ctx.number(server, "max-page-size", "server", 256 * 1024 * 1024, lo=1024, hi=2**34)
    )
    for key, attr in (("htpasswd", "htpasswd"), ("tokens-file", "tokens_file")):
        raw = ctx.string(auth, key, "auth")
        if raw is not None:
            p = ctx.file(raw, f"auth.{key}")
            if not p.is_file():
                raise ctx.fail(f"auth.{key}", f"file {p} does not exist")
            kwargs[attr] = p

    private_raw = data.get("private", [])
    if not isinstance(private_raw, list) or not all(isinstance(p, str) for p in private_raw):
        raise ctx.fail("private", "expected a list of name patterns (strings)")
    kwargs["private"] = tuple(_pattern(ctx, p, "private") for p in private_raw)

    upstreams = _upstreams(ctx, data.get("upstream", []))
    kwargs["upstreams"] = tuple(upstreams.values())
    kwargs["routes"] = tuple(_routes(ctx, data.get("route", []), upstreams))
    config = ServeConfig(**kwargs)
    if config.needs_auth and config.htpasswd is None and config.tokens_file is None:
        raise ctx.fail(
            "auth",
            "a route limits read/write to users, but neither htpasswd nor tokens-file is set",
        )
    return config


def _pattern(ctx: _Ctx, raw: str, key: str, *, prefix: bool = False) -> Pattern:
    try:
        return compile_pattern(raw, prefix=prefix)
    except ValueError as e:
        raise ctx.fail(key, f"bad pattern {raw!r} ({e})") from None


def _upstreams(ctx: _Ctx, raw: Any) -> dict[str, Upstream]:
    if not isinstance(raw, list):
        raise ctx.fail("upstream", "expected [[upstream]] tables")
    out: dict[str, Upstream] = {}
    for i, item in enumerate(raw, 1):
        where = f"upstream[{i}]"
        t = ctx.table(item, where, _UPSTREAM)
        name = ctx.string(t, "name", where)
        if not name or not _NAME_RE.match(name):
            raise ctx.fail(f"{where}.name", "expected a name of letters, digits, '.', '_', '-'")
        if name in out:
            raise ctx.fail(f"{where}.name", f"duplicate upstream name {name!r}")
        url = ctx.string(t, "url", where)
        if not url:
            raise ctx.fail(f"{where}.url", "missing (expected an http:// or https:// URL)")
        if not re.match(r"^https?://[^/@\s]+(/|$)", url):
            if re.match(r"^https?://[^/\s]*@", url):
                raise ctx.fail(
                    f"{where}.url",
                    "credentials in the URL are not allowed (use username/password with"
                    " ${ENV} references, netrc or token-file)",
                )
            raise ctx.fail(f"{where}.url", "expected an http:// or https:// URL with a host")
        try:
            origin_of(url.replace("{project}", "x"))
        except UsageError:  # "[::1" unclosed, a port past 65535: found here, not at start
            raise ctx.fail(
                f"{where}.url", "not a valid URL (a bracketed host unclosed, or a bad port?)"
            ) from None
        if redact_url(url) != url:
            # a redirect route hands this URL to every client; a proxy route logs it
            raise ctx.fail(
                f"{where}.url",
                "a token or signature in the URL is not allowed (use username/password with"
                " ${ENV} references, netrc or token-file)",
            )
        user, password, source = _credentials(ctx, t, where, url)
        out[name] = Upstream(name, url, user, password, source)
    return out


def _credentials(
    ctx: _Ctx, t: Mapping[str, Any], where: str, url: str
) -> tuple[str | None, str | None, str]:
    username = ctx.string(t, "username", where)
    password = ctx.string(t, "password", where)
    netrc = t.get("netrc")
    token_file = ctx.string(t, "token-file", where)
    if password is not None:
        if not _ENV_RE.search(password):
            raise ctx.fail(
                f"{where}.password",
                "a password in clear is not allowed (expected a ${ENV} reference)",
            )
        user = ctx.expand(username, f"{where}.username") if username is not None else ""
        return user, ctx.expand(password, f"{where}.password"), "env"
    if token_file is not None:
        p = ctx.file(token_file, f"{where}.token-file")
        try:
            token = p.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ctx.fail(f"{where}.token-file", f"cannot read {p}: {e.strerror or e}") from None
        if not token:
            raise ctx.fail(f"{where}.token-file", f"{p} is empty (expected a token)")
        user = ctx.expand(username, f"{where}.username") if username is not None else "__token__"
        return user, token, f"token-file {p}"
    if netrc is not None:
        from kea.auth.netrc import load_netrc
        from kea.auth.urls import host_of

        if netrc is True:
            raw_path = ctx.env.get("NETRC") or os.path.join(ctx.env.get("HOME", "~"), ".netrc")
        elif isinstance(netrc, str):
            raw_path = netrc
        else:
            raise ctx.fail(f"{where}.netrc", "expected true or a path to a netrc file")
        p = ctx.file(raw_path, f"{where}.netrc")
        if not p.is_file():
            raise ctx.fail(f"{where}.netrc", f"file {p} does not exist")
        host = host_of(url.replace("{project}", "x")) or ""
        entry = load_netrc(p).machine(host, username)
        if entry is None or entry.password is None:
            raise ctx.fail(f"{where}.netrc", f"{p} has no machine {host} with a password")
        return (username or entry.login or ""), entry.password, f"netrc {p}"
    if username is not None:
        return ctx.expand(username, f"{where}.username"), None, "env"
    return None, None, "none"


def _access(
    ctx: _Ctx, t: Mapping[str, Any], key: str, where: str, default: list[str]
) -> tuple[str, ...]:
    if key not in t:
        return tuple(default)
    values = ctx.strings(t, key, where)
    for v in values:
        if v not in ("*", "authenticated") and not re.fullmatch(r"[^\s:]{1,128}", v):
            raise ctx.fail(
                f"{where}.{key}", f"bad user {v!r} (expected a user name, * or authenticated)"
            )
    return tuple(values)


def _routes(ctx: _Ctx, raw: Any, upstreams: Mapping[str, Upstream]) -> list[Route]:
    if not isinstance(raw, list):
        raise ctx.fail("route", "expected [[route]] tables")
    if not raw:
        raise ctx.fail("route", "missing (expected at least one [[route]])")
    out: list[Route] = []
    names: set[str] = set()
    for i, item in enumerate(raw, 1):
        where = f"route[{i}]"
        t = ctx.table(item, where, _ROUTE)
        patterns = [_pattern(ctx, p, f"{where}.match") for p in ctx.strings(t, "match", where)]
        patterns += [
            _pattern(ctx, p, f"{where}.prefix", prefix=True)
            for p in ctx.strings(t, "prefix", where)
        ]
        if not patterns:
            raise ctx.fail(f"{where}.match", "missing (expected a name, a glob, or prefix = ...)")
        deny = ctx.boolean(t, "deny", where, False)
        up_name = ctx.string(t, "upstream", where)
        directory = ctx.string(t, "directory", where)
        mode = ctx.string(t, "mode", where)
        upstream: Upstream | None = None
        dir_path: Path | None = None
        if deny:
            if up_name or directory:
                raise ctx.fail(f"{where}.deny", "a deny route takes no upstream or directory")
            kind = "deny"
        elif up_name is not None and directory is not None:
            raise ctx.fail(where, "expected upstream or directory, not both")
        elif up_name is not None:
            if up_name not in upstreams:
                known = ", ".join(upstreams) or "none defined"
                raise ctx.fail(
                    f"{where}.upstream",
                    f"{up_name!r} is not an [[upstream]] name (expected one of: {known})",
                )
            upstream = upstreams[up_name]
            kind = mode or "proxy"
            if kind not in ("proxy", "redirect"):
                raise ctx.fail(f"{where}.mode", f"expected 'proxy' or 'redirect', got {kind!r}")
        elif directory is not None:
            dir_path = ctx.file(directory, f"{where}.directory")
            if not dir_path.is_dir():
                raise ctx.fail(f"{where}.directory", f"{dir_path} is not a directory")
            if mode not in (None, "local"):
                raise ctx.fail(f"{where}.mode", "a directory route has no mode (it serves files)")
            kind = "local"
        else:
            raise ctx.fail(
                where, "missing target (expected upstream = NAME, directory = PATH, or deny = true)"
            )
        name = ctx.string(t, "name", where) or (
            upstream.name if upstream is not None and up_name not in names else f"route{i}"
        )
        if not _NAME_RE.match(name):
            raise ctx.fail(f"{where}.name", "expected a name of letters, digits, '.', '_', '-'")
        if name in names:
            raise ctx.fail(f"{where}.name", f"duplicate route name {name!r}")
        names.add(name)
        write = _access(ctx, t, "write", where, [])
        if write and kind != "local":
            raise ctx.fail(f"{where}.write", "only a directory route can be written to")
        out.append(
            Route(
                name=name,
                patterns=tuple(patterns),
                upstream=upstream,
                directory=dir_path,
                mode=kind,
                private=ctx.boolean(t, "private", where, False),
                read=_access(ctx, t, "read", where, ["*"]),
                write=write,
                position=i,
            )
        )
    return out


__all__ = ["DEFAULT_PORT", "Route", "ServeConfig", "Upstream", "load_config", "parse_config"]
