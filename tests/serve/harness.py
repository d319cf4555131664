"""Running ``kea serve`` and real clients (pip, uv, kea, twine) as subprocesses.

``KeaServe`` starts ``python -m kea serve --port 0`` on a loopback IP, learns the port from its
first stderr line, and reads back its access log (what it received). Clients run with a private
HOME and no ambient configuration (no pip.conf, uv.toml, kea.toml, netrc, proxies).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

PY = sys.executable
TIMEOUT = 120
_LISTEN_RE = re.compile(r"listening on http://([^/\s]+):(\d+)/")
_ACCESS_RE = re.compile(r'kea\.serve\.access: (\S+) (\S+) "(\S+) (\S+)" (\d+) ')


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a client or server: no ambient config, credentials or proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "KEA_", "TWINE_", "PYTEST_"))
        and k not in ("NETRC", "SSL_CERT_FILE", "SSL_CERT_DIR", "VIRTUAL_ENV", "REQUESTS_CA_BUNDLE")
        and not k.lower().endswith("_proxy")
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_NO_CONFIG="1",
        UV_PYTHON_DOWNLOADS="never",
        KEA_NO_CONFIG="1",
        NO_COLOR="1",
    )
    env.update(extra or {})
    return env


@dataclass
class Access:
    """One line of kea serve's access log."""

    remote: str
    user: str
    method: str
    path: str
    status: int


class KeaServe:
    """``kea serve`` as a subprocess on ``ip`` (ephemeral port)."""

    def __init__(
        self,
        workdir: Path,
        config: str,
        *,
        ip: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config_path = workdir / "kea-serve.toml"
        self.config_path.write_text(config)
        self.log = workdir / "serve.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "kea",
                "serve",
                "--config",
                str(self.config_path),
                "--host",
                ip,
                "--port",
                "0",
                *args,
            ],
            cwd=workdir,
            env=clean_env(workdir / "home", env),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            m = _LISTEN_RE.search(self.log.read_text(errors="replace"))
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kea serve did not start:\n" + self.text())
            time.sleep(0.02)
        self.url = f"http://{self.host}:{self.port}"
        self.index = self.url + "/simple/"
        while http_get(self.url + "/health")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("kea serve not healthy:\n" + self.text())
            time.sleep(0.02)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def mark(self) -> int:
        return len(self.access())

    def access(self, since: int = 0, *, settle: float = 0.05) -> list[Access]:
        time.sleep(settle)  # the line is written just after the response
        out = []
        for m in _ACCESS_RE.finditer(self.text()):
            if m.group(4) in ("/health", "/metrics"):
                continue
            out.append(Access(m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5))))
        return out[since:]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log_file.close()
        return self.proc.returncode


# -- processes ----------------------------------------------------------------------------------


def process_tree(pid: int) -> set[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = {pid}, [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def listeners(port: int) -> int:
    """How many sockets listen on TCP ``port`` (IPv4), from /proc/net/tcp."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    # local address "IP:PORT" (hex), state 0A = LISTEN
    return sum(1 for x in lines if x.split()[1].endswith(f":{port:04X}") and x.split()[3] == "0A")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def http_get(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "GET",
    data: bytes | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) without following redirects; errors are statuses too."""
    req = urllib.request.Request(url, headers=dict(headers or {}), method=method, data=data)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        if "Connection refused" in str(e):
            return 0, {}, b""
        raise


def raw_request(host: str, port: int, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as given (no client-side path normalisation)."""
    import socket

    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# -- clients ------------------------------------------------------------------------------------


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = TIMEOUT) -> Run:
    proc = subprocess.run(
        list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return Run(list(argv), proc.returncode, proc.stdout, proc.stderr)


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


CLIENTS = ("pip", "uv", "kea")


def need_client(client: str) -> None:
    if client == "uv" and not has_module("uv"):
        pytest.skip("uv is not installed in the test environment (pip install uv)")
    if client == "pip" and not has_module("pip"):
        pytest.skip("pip is not installed in the test environment")


class Installer:
    """Fresh venvs and installs into them with pip, uv or kea."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.home = root / "home"
        self.env = clean_env(self.home, env)
        self._n = 0

    def venv(self) -> Path:
        self._n += 1
        path = self.root / f"venv{self._n}"
        r = run([PY, "-m", "venv", "--without-pip", str(path)], self.env, self.root)
        assert r.returncode == 0, r.output
        return path

    def install(
        self,
        client: str,
        index_url: str,
        *packages: str,
        venv: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> tuple[Run, Path]:
        need_client(client)
        venv = venv or self.venv()
        python = str(venv / "bin" / "python")
        env = {**self.env, **(extra_env or {})}
        if client == "pip":
            argv = [
                PY,
                "-m",
                "pip",
                "--python",
                python,
                "install",
                "--no-cache-dir",
                "--index-url",
                index_url,
                *args,
                *packages,
            ]
        elif client == "uv":
            argv = [
                PY,
                "-m",
                "uv",
                "pip",
                "install",
                "--python",
                python,
                "--no-cache",
                "--index-url",
                index_url,
                *args,
                *packages,
            ]
        else:
            argv = [
                PY,
                "-m",
                "kea",
                "pip",
                "install",
                "--python",
                python,
                "--no-cache",
                "--index-url",
                index_url,
                *args,
                *packages,
            ]
        return run(argv, env, self.root), venv

    def version_of(self, venv: Path, module: str) -> str | None:
        r = run(
            [str(venv / "bin" / "python"), "-c", f"import {module}; print({module}.__version__)"],
            self.env,
            self.root,
        )
        return r.stdout.strip() if r.returncode == 0 else None
