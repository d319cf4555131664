"""The world an end-to-end case runs in: the servers, a private HOME, and kea as a subprocess.

``Servers`` is started once per test session (per xdist worker). ``World`` is per test: its own
HOME/NETRC/PATH/cwd, a unique path prefix on our own servers, marks in the third-party servers'
logs, and every kea run it made (so the redaction case can scan all output for secrets).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kea.auth.redact import redact_text
from tests.e2e.servers.front import RecordingFront
from tests.e2e.servers.proxy import ForwardProxy
from tests.e2e.servers.pypi import PypiServer
from tests.e2e.servers.record import Seen
from tests.e2e.servers.router import SimpleIndexRouter
from tests.e2e.servers.tls import Tls, make_tls
from tests.e2e.servers.web import Handler, ScriptHost, ServerLoop
from tests.e2e.wheels import build_wheel

FETCH_CLIENT = Path(__file__).with_name("fetch_client.py")
KEA_TIMEOUT = 60


def token(prefix: str) -> str:
    """A fresh random secret, recognisable in output (``prefix`` + 24 hex digits)."""
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass(frozen=True)
class User:
    name: str
    password: str

    @property
    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.name}:{self.password}".encode()).decode()


def start_seed_pair(
    root: Path,
    *,
    tls: Tls,
    users: Mapping[str, str],
    packages: Path,
    loop: ServerLoop,
    local_project: str,
    local_dir: Path,
    stoppers: list[Any],
) -> tuple[PypiServer, SimpleIndexRouter]:
    """The seed's two servers: pypiserver (htpasswd ``users``, TLS) on 127.0.0.2 and the
    simpleindex router on 127.0.0.1 that redirects to it and serves ``local_project`` itself.
    Each one's ``stop`` is appended to ``stoppers`` as soon as it runs."""
    pypi = PypiServer(root / "pypiserver", "127.0.0.2", tls=tls, users=users, packages=packages)
    stoppers.append(pypi.stop)
    router = SimpleIndexRouter(
        root / "simpleindex",
        "127.0.0.1",
        loop=loop,
        upstream=pypi.url,
        local_project=local_project,
        local_dir=local_dir,
    )
    stoppers.append(router.stop)
    return pypi, router


def stop_all(stoppers: list[Any]) -> None:
    """Call every stopper, the last started first; one that fails does not keep the others
    from running. The list is left empty."""
    for stop in reversed(stoppers):
        try:
            stop()
        except Exception:
            pass
    stoppers.clear()


class Servers:
    """Everything started once: TLS, wheels, pypiserver, simpleindex, our hosts, the proxy."""

    PRIV_PROJECT = "priv-pkg"
    LOCAL_PROJECT = "local-pkg"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tls: Tls = make_tls(root / "tls")
        # Wheels the tests build and serve.
        upstream_dir = root / "upstream-packages"
        self.priv_wheel = build_wheel(upstream_dir, self.PRIV_PROJECT, "1.0")
        local_dir = root / "router-local" / self.LOCAL_PROJECT
        self.local_wheel = build_wheel(local_dir, self.LOCAL_PROJECT, "2.0")
        self.file_wheel = build_wheel(root / "file-host", "blob-pkg", "3.0")
        # Users of the protected upstream (pypiserver htpasswd).
        self.alice = User("alice", token("pw-alice-"))
        self.frank = User("frank", token("pw-frank-"))
        self.grace = User("grace", token("pw-grace-"))
        self.proxy_user = User("puser", token("pw-proxy-"))
        self.loop = ServerLoop()
        self._stoppers: list[Any] = []
        try:
            self.pypi, self.router = start_seed_pair(
                root,
                tls=self.tls,
                users={u.name: u.password for u in (self.alice, self.frank, self.grace)},
                packages=upstream_dir,
                loop=self.loop,
                local_project=self.LOCAL_PROJECT,
                local_dir=local_dir,
                stoppers=self._stoppers,
            )
            ctx = self.tls.server_context
            self.files = ScriptHost(self.loop, "127.0.0.3", tls=ctx, label="files")
            self.other = ScriptHost(self.loop, "127.0.0.4", tls=ctx, label="other")
            self.other2 = ScriptHost(self.loop, "127.0.0.4", tls=ctx, label="other-port")
            self.mixed_tls = ScriptHost(self.loop, "127.0.0.5", tls=ctx, label="mixed-https")
            self.mixed_http = ScriptHost(self.loop, "127.0.0.5", tls=None, label="mixed-http")
            self.hosts = [self.files, self.other, self.other2, self.mixed_tls, self.mixed_http]
            for host in self.hosts:
                self._stoppers.append(host.close)
            self.proxy = ForwardProxy(
                self.loop, "127.0.0.6", {self.proxy_user.name: self.proxy_user.password}
            )
            self._stoppers.append(self.proxy.close)
        except BaseException:
            self.stop()
            raise

    @property
    def router_front(self) -> RecordingFront:
        return self.router.front

    def stop(self) -> None:
        stop_all(self._stoppers)
        self.loop.stop()


@dataclass
class Run:
    """One kea subprocess: its argv (redacted for display), exit code and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    result: Any = None  # fetch_client's JSON result, when it was the client

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


_counter = itertools.count(1)


@dataclass
class World:
    servers: Servers
    tmp: Path
    verbosity: int = 1
    runs: list[Run] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.home = self.tmp / "home"
        self.bin = self.tmp / "bin"
        self.cwd = self.tmp / "work"
        for d in (self.home, self.bin, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.prefix = f"/t{os.getpid()}-{next(_counter)}"
        self._pypi_mark = self.servers.pypi.mark()
        self._router_mark = len(self.servers.router_front.seen_all)
        self._proxy_mark = len(self.servers.proxy.seen_all)
        self.keyring_log = self.tmp / "keyring.log"
        for user in (self.servers.alice, self.servers.frank, self.servers.grace):
            self.cred(user)
        self.secret(self.servers.proxy_user.password)

    # -- secrets ------------------------------------------------------------------------------

    def secret(self, *values: str) -> None:
        """Strings that must never appear in kea's output (case 24)."""
        self.secrets.update(v for v in values if v)

    def cred(self, user: User) -> User:
        self.secret(user.password, user.header.split(" ", 1)[1])
        return user

    def new_user(self, name: str) -> User:
        return self.cred(User(name, token(f"pw-{name}-")))

    def leaks(self) -> list[str]:
        found = []
        for run in self.runs:
            for value in sorted(self.secrets):
                if value in run.stdout or value in run.stderr:
                    shown = value[:4] + "…"  # never print the whole secret, even here
                    where = "stdout" if value in run.stdout else "stderr"
                    found.append(f"{shown} in {where} of kea {redact_text(' '.join(run.args))}")
        return found

    # -- files in HOME ------------------------------------------------------------------------

    @property
    def netrc_path(self) -> Path:
        return self.home / ".netrc"

    def netrc(self, text: str) -> Path:
        self.netrc_path.write_text(textwrap.dedent(text).strip() + "\n")
        self.netrc_path.chmod(0o600)
        return self.netrc_path

    def kea_toml(self, text: str) -> Path:
        path = self.cwd / "kea.toml"
        path.write_text(textwrap.dedent(text).strip() + "\n")
        return path

    def keyring(
        self,
        answers: Mapping[tuple[str | None, str], str],
        *,
        creds: tuple[str, str] | None = None,
        hang: bool = False,
    ) -> None:
        """Put a ``keyring`` executable on PATH that answers ``keyring get SERVICE USER``.

        ``answers`` maps (service or None for any service, username) → password; ``creds`` is
        what ``keyring --mode creds get SERVICE`` prints (username, password) for any service.
        Every call is appended to ``keyring_log`` as one JSON line of its arguments.
        """
        table = [[service, user, pw] for (service, user), pw in answers.items()]
        self.secret(*answers.values())
        if creds:
            self.secret(creds[1])
        script = self.bin / "keyring"
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            f"LOG = {str(self.keyring_log)!r}\n"
            f"TABLE = {table!r}\n"
            "args = sys.argv[1:]\n"
            "with open(LOG, 'a') as f:\n"
            "    f.write(json.dumps(args) + '\\n')\n"
            + ("import time; time.sleep(120)\n" if hang else "")
            + "if args[:1] == ['get'] and len(args) == 3:\n"
            "    service, user = args[1], args[2]\n"
            "    for s, u, pw in TABLE:\n"
            "        if (s is None or s == service) and u == user:\n"
            "            print(pw)\n"
            "            sys.exit(0)\n"
            f"CREDS = {list(creds) if creds else None!r}\n"
            "if args[:3] == ['--mode', 'creds', 'get'] and len(args) == 4 and CREDS:\n"
            "    print(CREDS[0])\n"
            "    print(CREDS[1])\n"
            "    sys.exit(0)\n"
            "sys.exit(1)\n"
        )
        script.chmod(0o755)

    def keyring_calls(self) -> list[list[str]]:
        if not self.keyring_log.exists():
            return []
        return [json.loads(line) for line in self.keyring_log.read_text().splitlines() if line]

    # -- routes on our own hosts --------------------------------------------------------------

    def route(self, host: ScriptHost, path: str, handler: Handler) -> str:
        """Serve ``handler`` at this test's ``prefix + path`` on ``host``; return the URL."""
        assert path.startswith("/")
        return host.route(self.prefix + path, handler)

    def url(self, host: ScriptHost, path: str, userinfo: str = "") -> str:
        assert path.startswith("/")
        at = f"{userinfo}@" if userinfo else ""
        return f"{host.scheme}://{at}{host.netloc}{self.prefix}{path}"

    def seen(self, host: ScriptHost, path: str = "/") -> list[Seen]:
        return host.seen(self.prefix + path)

    def pypi_seen(self) -> list[Seen]:
        return self.servers.pypi.seen(self._pypi_mark)

    def router_seen(self) -> list[Seen]:
        return self.servers.router_front.seen_all[self._router_mark :]

    def proxy_seen(self) -> list[Seen]:
        return self.servers.proxy.seen_all[self._proxy_mark :]

    def cleanup(self) -> None:
        for host in self.servers.hosts:
            host.drop_routes(self.prefix)

    # -- running kea --------------------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "NETRC": str(self.netrc_path),
            "PATH": os.pathsep.join([str(self.bin), "/usr/local/bin", "/usr/bin", "/bin"]),
            "SSL_CERT_FILE": str(self.servers.tls.ca_pem),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "KEA_CACHE_DIR": str(self.tmp / "cache"),
            "KEA_HTTP_RETRIES": "0",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(extra or {})
        return env

    def _run(self, argv: list[str], shown: list[str], env: Mapping[str, str] | None) -> Run:
        proc = subprocess.run(
            argv,
            cwd=self.cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=KEA_TIMEOUT,
        )
        run = Run(shown, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        return run

    def verbose_flag(self) -> list[str]:
        return ["-" + "v" * self.verbosity] if self.verbosity else []

    def check(self, url: str, *options: str, env: Mapping[str, str] | None = None) -> Run:
        """``kea auth check URL [options] -v`` (or -vvv in the redaction case)."""
        args = ["auth", "check", url, *options, *self.verbose_flag()]
        return self._run([sys.executable, "-m", "kea", *args], args, env)

    def fetch(
        self,
        steps: Sequence[Mapping[str, Any]],
        *,
        cli: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Run:
        """Drive kea's client API (HttpClient) in a subprocess, as an install would.

        Each step is ``{"url": ..., "purpose": "page"|"file"|"metadata", "follow": bool,
        "headers": {...}}``; ``follow`` fetches every link of the page (resolved against the
        page's final URL) with purpose "file".
        """
        spec = {
            "cli": {**(cli or {}), "verbosity": self.verbosity},
            "steps": list(steps),
        }
        argv = [sys.executable, str(FETCH_CLIENT), json.dumps(spec)]
        run = self._run(argv, ["<fetch_client>", *(str(s.get("url")) for s in steps)], env)
        for line in reversed(run.stdout.splitlines()):
            if line.startswith("RESULT "):
                run.result = json.loads(line[len("RESULT ") :])
                break
        return run


def users_of(seen: Iterable[Seen]) -> list[str | None]:
    """The Basic user each request carried (None when it carried no Authorization)."""
    return [s.user if s.authorization else None for s in seen]
