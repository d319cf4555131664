"""One Settings object for the whole run.

Precedence, highest first: command-line options, ``KEA_*`` environment variables, the project
file (nearest ``kea.toml``, else ``[tool.kea]`` of the nearest ``pyproject.toml``, searched from
the working directory upwards), the user file (``$XDG_CONFIG_HOME/kea/kea.toml``), defaults.
``--no-config`` / ``KEA_NO_CONFIG`` skips both files.

This module reads files and the environment; it never touches the network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from kea.errors import UsageError

PYPI_URL = "https://pypi.org/simple"

Authenticate = Literal["auto", "always", "never"]
KeyringProvider = Literal["disabled", "subprocess"]
IndexStrategy = Literal["first-index", "unsafe-first-match", "unsafe-best-match"]

AUTHENTICATE_VALUES: tuple[str, ...] = ("auto", "always", "never")
KEYRING_VALUES: tuple[str, ...] = ("disabled", "subprocess")
STRATEGY_VALUES: tuple[str, ...] = ("first-index", "unsafe-first-match", "unsafe-best-match")

_INDEX_KEYS = frozenset({"name", "url", "default", "authenticate", "explicit"})
_TOP_KEYS = frozenset(
    {
        "index",
        "index-url",
        "extra-index-url",
        "find-links",
        "no-index",
        "keyring-provider",
        "index-strategy",
        "allow-insecure-host",
        "cache-dir",
        "http-timeout",
        "http-retries",
        "offline",
        "refresh",
        "refresh-package",
        "native-tls",
        "link-mode",
        "compile-bytecode",
        "prerelease",
        "resolution",
        "exclude-newer",
    }
)


class Index(msgspec.Struct, frozen=True):
    """A package index as the user configured it.

    ``url`` may carry userinfo; never print it without ``kea.auth.redact.redact_url``.
    """

    url: str
    name: str | None = None
    default: bool = False
    authenticate: Authenticate = "auto"
    explicit: bool = False
    source: str = "cli"  # "cli", "env", or the config file path it came from

    @property
    def env_prefix(self) -> str | None:
        """``KEA_INDEX_<NAME>_`` for a named index, else None."""
        if not self.name:
            return None
        return "KEA_INDEX_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper() + "_"


class Settings(msgspec.Struct):
    """Everything a command needs to know about the run, resolved once."""

    # in search order; default index last
    indexes: list[Index] = msgspec.field(default_factory=list)
    find_links: list[str] = msgspec.field(default_factory=list)
    no_index: bool = False
    index_strategy: IndexStrategy = "first-index"
    keyring_provider: KeyringProvider = "disabled"
    allow_insecure_hosts: list[str] = msgspec.field(default_factory=list)
    netrc_path: Path | None = None
    http_timeout: float = 30.0
    http_connect_timeout: float = 10.0
    http_retries: int = 3
    cache_dir: Path | None = None
    no_cache: bool = False
    offline: bool = False
    refresh: bool = False  # revalidate every cached index page this run (ignored offline)
    # ... only these projects' pages
    refresh_packages: list[str] = msgspec.field(default_factory=list)
    native_tls: bool = True
    verbosity: int = 0
    quiet: int = 0
    color: str = "auto"
    no_progress: bool = False
    config_files: list[Path] = msgspec.field(default_factory=list)
    env: Mapping[str, str] = msgspec.field(default_factory=dict)
    # other file keys, for later commands
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def default_index(self) -> Index | None:
        for index in self.indexes:
            if index.default:
                return index
        return None


def _split_env_list(value: str | None) -> list[str]:
    return value.split() if value else []


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("0", "false", "no", "off", "")


def parse_index_arg(value: str, source: str) -> Index:
    """Parse ``--index`` / ``KEA_INDEX`` values: ``URL`` or ``NAME=URL``."""
    name: str | None = None
    url = value
    head, sep, tail = value.partition("=")
    if sep and "://" not in head and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", head):
        name, url = head, tail
    _check_url(url, source)
    return Index(url=url, name=name, source=source)


def _check_url(url: str, source: str) -> None:
    from kea.auth.redact import redact_url

    if url.startswith("file://") or os.path.isabs(url):
        return
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)", url)
    if not m:
        raise UsageError(
            f"invalid index URL {redact_url(url)!r} (from {source})",
            hint="an index URL looks like https://host/simple",
        )
    if m.group(1).lower() not in ("http", "https"):
        raise UsageError(
            f"unsupported URL scheme {m.group(1)!r} in {redact_url(url)} (from {source})",
            hint="kea speaks http:// and https:// (and file:// for local indexes)",
        )
    if not m.group(2).rpartition("@")[2]:
        raise UsageError(f"index URL {redact_url(url)} has no host (from {source})")


def find_project_config(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """Nearest ``kea.toml``, else ``pyproject.toml`` with ``[tool.kea]``, from ``start`` up."""
    for directory in (start, *start.parents):
        candidate = directory / "kea.toml"
        if candidate.is_file():
            return candidate, _load_toml(candidate)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            data = _load_toml(pyproject)
            tool = data.get("tool", {}).get("kea")
            if isinstance(tool, dict):
                return pyproject, tool
    return None


def user_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "kea" / "kea.toml"


def _load_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when a config file exists: most runs (and every benchmark) have none

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None


def _file_indexes(path: Path, data: Mapping[str, Any]) -> list[Index]:
    raw = data.get("index", [])
    if not isinstance(raw, list):
        raise UsageError(f"{path}: `index` must be an array of tables ([[index]])")
    out = []
    for i, entry in enumerate(raw):
        where = f"{path}: index[{i}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: expected a table with `url`")
        unknown = set(entry) - _INDEX_KEYS
        if unknown:
            raise UsageError(
                f"{where}: unknown key {sorted(unknown)[0]!r}",
                hint="an [[index]] table takes " + ", ".join(sorted(_INDEX_KEYS)),
            )
        url = entry.get("url")
        if not isinstance(url, str):
            raise UsageError(f"{where}: `url` is required and must be a string")
        _check_url(url, str(path))
        auth = entry.get("authenticate", "auto")
        if auth not in AUTHENTICATE_VALUES:
            allowed = ", ".join(AUTHENTICATE_VALUES)
            raise UsageError(f"{where}: authenticate = {auth!r}: expected one of {allowed}")
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            raise UsageError(f"{where}: `name` must be a string")
        out.append(
            Index(
                url=url,
                name=name,
                default=bool(entry.get("default", False)),
                authenticate=auth,
                explicit=bool(entry.get("explicit", False)),
                source=str(path),
            )
        )
    return out


def _check_file_keys(path: Path, data: Mapping[str, Any]) -> None:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise UsageError(
            f"{path}: unknown key {sorted(unknown)[0]!r}",
            hint="see README.md, 'Configuring indexes and credentials'",
        )


def _choice(value: Any, allowed: Sequence[str], what: str) -> Any:
    if value not in allowed:
        raise UsageError(f"{what} = {value!r}: expected one of {', '.join(allowed)}")
    return value


def load_settings(
    *,
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the run's Settings from CLI options (already parsed), env and config files.

    ``cli`` keys (all optional): ``index`` (list of str), ``default_index``, ``index_url``,
    ``extra_index_url`` (list), ``find_links`` (list), ``no_index``, ``keyring_provider``,
    ``index_strategy``, ``allow_insecure_host`` (list), ``cache_dir``, ``no_cache``, ``offline``,
    ``no_config``, ``verbosity``, ``quiet``, ``color``, ``no_progress``, ``config_file``,
    ``refresh`` (True, False for ``--no-refresh``, None), ``refresh_package`` (list).
    """
    cli = dict(cli or {})
    env = dict(os.environ if env is None else env)
    cwd = cwd or Path.cwd()
    s = Settings(env=env)
    s.verbosity = int(cli.get("verbosity") or 0)
    s.quiet = int(cli.get("quiet") or 0)
    s.color = cli.get("color") or "auto"
    s.no_progress = bool(cli.get("no_progress"))

    # -- config files -----------------------------------------------------------------------
    files: list[tuple[Path, dict[str, Any]]] = []
    no_config = bool(cli.get("no_config")) or _truthy(env.get("KEA_NO_CONFIG"))
    if cli.get("config_file"):
        path = Path(cli["config_file"])
        data = _load_toml(path)
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("kea", {})
        files.append((path, data))
    elif not no_config:
        found = find_project_config(cwd)
        if found:
            files.append(found)
        user = user_config_path(env)
        if user.is_file():
            files.append((user, _load_toml(user)))
    for path, data in files:
        _check_file_keys(path, data)
    s.config_files = [p for p, _ in files]

    def from_files(key: str) -> Any:
        for _, data in files:
            if key in data:
                return data[key]
        return None

    def pick(cli_key: str, env_key: str | None, file_key: str | None) -> Any:
        value = cli.get(cli_key)
        if value not in (None, (), []):
            return value
        if env_key and env.get(env_key):
            return env[env_key]
        if file_key:
            return from_files(file_key)
        return None

    # -- indexes ----------------------------------------------------------------------------
    named: list[Index] = []
    cli_index = list(cli.get("index") or ())
    if cli_index:
        named += [parse_index_arg(v, "--index") for v in cli_index]
    else:
        named += [parse_index_arg(v, "KEA_INDEX") for v in _split_env_list(env.get("KEA_INDEX"))]
    extra = list(cli.get("extra_index_url") or ())
    if extra:
        named += [parse_index_arg(v, "--extra-index-url") for v in extra]
    else:
        named += [
            parse_index_arg(v, "KEA_EXTRA_INDEX_URL")
            for v in _split_env_list(env.get("KEA_EXTRA_INDEX_URL"))
        ]
        file_extra = from_files("extra-index-url") or []
        named += [parse_index_arg(v, "config") for v in file_extra]

    file_indexes: list[Index] = []
    for path, data in files:
        file_indexes += _file_indexes(path, data)

    default_url: str | None = None
    default_src = ""
    for key, label in (("default_index", "--default-index"), ("index_url", "--index-url")):
        if cli.get(key):
            default_url, default_src = cli[key], label
            break
    if default_url is None:
        for env_key in ("KEA_DEFAULT_INDEX", "KEA_INDEX_URL"):
            if env.get(env_key):
                default_url, default_src = env[env_key], env_key
                break
    if default_url is None and from_files("index-url"):
        default_url, default_src = from_files("index-url"), "config"

    # Named indexes given on the CLI/env inherit settings of a same-named [[index]] in a file.
    by_name = {i.name: i for i in file_indexes if i.name}
    merged: list[Index] = []
    for idx in named:
        if idx.name and idx.name in by_name:
            f = by_name[idx.name]
            idx = Index(
                url=idx.url,
                name=idx.name,
                authenticate=f.authenticate,
                explicit=f.explicit,
                source=idx.source,
            )
        merged.append(idx)
    seen_names = {i.name for i in merged if i.name}
    file_default: Index | None = None
    for idx in file_indexes:
        if idx.name and idx.name in seen_names:
            continue
        if idx.default:
            file_default = file_default or idx
            continue
        merged.append(idx)

    if default_url is not None:
        _check_url(default_url, default_src)
        default = Index(url=default_url, default=True, source=default_src)
        # A file [[index]] with the same URL lends its name and policy to the default.
        for idx in file_indexes:
            if idx.url.rstrip("/") == default_url.rstrip("/"):
                default = Index(
                    url=default_url,
                    name=idx.name,
                    default=True,
                    authenticate=idx.authenticate,
                    source=default_src,
                )
                break
    elif file_default is not None:
        default = file_default
    else:
        default = Index(url=PYPI_URL, name="pypi", default=True, source="default")
    merged.append(default)

    s.no_index = bool(cli.get("no_index")) or _truthy(env.get("KEA_NO_INDEX"))
    if s.no_index:
        merged = []
    s.indexes = merged

    fl = list(cli.get("find_links") or ())
    if not fl:
        fl = _split_env_list(env.get("KEA_FIND_LINKS")) or list(from_files("find-links") or [])
    s.find_links = fl

    # -- policies ---------------------------------------------------------------------------
    kp = pick("keyring_provider", "KEA_KEYRING_PROVIDER", "keyring-provider")
    if kp is not None:
        s.keyring_provider = _choice(kp, KEYRING_VALUES, "keyring-provider")
    strategy = pick("index_strategy", "KEA_INDEX_STRATEGY", "index-strategy")
    if strategy is not None:
        s.index_strategy = _choice(strategy, STRATEGY_VALUES, "index-strategy")
    insecure = list(cli.get("allow_insecure_host") or ())
    if not insecure:
        insecure = _split_env_list(env.get("KEA_INSECURE_HOST")) or list(
            from_files("allow-insecure-host") or []
        )
    s.allow_insecure_hosts = insecure

    netrc = env.get("NETRC")
    home = env.get("HOME")
    if netrc:
        s.netrc_path = Path(netrc)
    elif home:
        s.netrc_path = Path(home) / ".netrc"
    else:
        s.netrc_path = Path("~/.netrc").expanduser()

    s.http_timeout = _number(env.get("KEA_HTTP_TIMEOUT") or from_files("http-timeout"), 30.0)
    s.http_retries = int(_number(env.get("KEA_HTTP_RETRIES") or from_files("http-retries"), 3))

    cache_dir = pick("cache_dir", "KEA_CACHE_DIR", "cache-dir")
    s.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
    s.no_cache = bool(cli.get("no_cache")) or _truthy(env.get("KEA_NO_CACHE"))
    s.offline = (
        bool(cli.get("offline")) or _truthy(env.get("KEA_OFFLINE")) or bool(from_files("offline"))
    )
    _refresh(s, cli, env, from_files)
    for key in ("link-mode", "compile-bytecode", "prerelease", "resolution", "exclude-newer"):
        value = from_files(key)
        if value is not None:
            s.extra[key] = value
    return s


_PROJECT_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"  # compiled only when names are given


def _refresh(
    s: Settings, cli: Mapping[str, Any], env: Mapping[str, str], from_files: Callable[[str], Any]
) -> None:
    """``--refresh`` / ``--refresh-package``, ``KEA_REFRESH`` / ``KEA_REFRESH_PACKAGE``,
    ``refresh`` / ``refresh-package`` in a file. As uv: ``--refresh`` and ``--offline`` both on
    the command line contradict each other (a usage error); an offline run that gets a refresh
    any other way ignores it (the index client says so)."""
    flag = cli.get("refresh")
    if flag is not None:
        s.refresh = bool(flag)
    elif env.get("KEA_REFRESH"):
        s.refresh = _truthy(env["KEA_REFRESH"])
    else:
        value = from_files("refresh")
        if value is not None and not isinstance(value, bool):
            raise UsageError(f"refresh = {value!r}: expected true or false")
        s.refresh = bool(value)
    if s.refresh and flag and cli.get("offline"):
        raise UsageError(
            "--refresh and --offline contradict each other",
            hint="--refresh asks the index again for every page; --offline never asks: drop one",
        )
    names, source = list(cli.get("refresh_package") or ()), "--refresh-package"
    if not names:
        names, source = _split_env_list(env.get("KEA_REFRESH_PACKAGE")), "KEA_REFRESH_PACKAGE"
    if not names:
        value, source = from_files("refresh-package") or [], "refresh-package"
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"refresh-package = {value!r}: expected a list of project names")
        names = value
    for name in names:
        if not re.fullmatch(_PROJECT_NAME, name):
            raise UsageError(
                f"{source}: {name!r} is not a project name",
                hint="a project name as on the index, e.g. requests or typing-extensions",
            )
    s.refresh_packages = names


def _number(value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise UsageError(f"expected a non-negative number, got {value!r}")
    return number
