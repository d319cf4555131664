"""The servers of the benchmark, all on loopback, started and stopped by the harness.

- nginx (Debian's, run in the foreground on a private config and ephemeral ports) serves the
  static index twice: plainly on 127.0.0.1 (pages with ``Cache-Control: max-age=600`` as PyPI
  does, files for a year), and as the *protected upstream* of the seed path on 127.0.0.2.
- The upstream's delay and credentials check: nginx has no delay directive, so every request to
  the upstream makes an ``auth_request`` subrequest to a tiny aiohttp service (``kbench.delay``)
  that sleeps 50 ms and then answers 200 (right Basic credentials) or 401. nginx still serves
  every body itself (sendfile), so the Python service only ever sees header-only subrequests and
  cannot be the bottleneck; 401s, 304s and 200s all pay the same 50 ms.
- simpleindex (the seed issue's router) on 127.0.0.1 answers every ``/{project}/`` with a 302 to
  the upstream's page.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

UPSTREAM_IP = "127.0.0.2"


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if not found:
        raise RuntimeError("nginx is not installed (bench/run installs Debian's package)")
    return found


def nginx_conf(prefix: Path, root: Path, port: int, upstream_port: int, delay_port: int) -> str:
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/tmp-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000;
  keepalive_timeout 120s;
  types {{ text/html html; application/octet-stream whl metadata; }}
  default_type application/octet-stream;
  upstream bench_delay {{ server 127.0.0.1:{delay_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location /files/ {{ expires max; }}
    location / {{ expires 600s; try_files $uri $uri/index.html =404; }}
  }}
  server {{
    listen {UPSTREAM_IP}:{upstream_port};
    root {root};
    auth_request /_bench_auth;
    location = /_bench_auth {{
      internal;
      auth_request off;
      proxy_pass http://bench_delay;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }}
    location /files/ {{ expires max; }}
    location / {{ expires 600s; try_files $uri $uri/index.html =404; }}
  }}
}}
"""


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"server exited ({proc.returncode}) before {url} answered"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Servers:
    """nginx + the delay/auth service; ``router(set)`` starts simpleindex for one set."""

    def __init__(self, work: Path, index_root: Path, user: str, password: str, delay: float):
        self.prefix = work / "nginx"
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.index_root = index_root
        self.user, self.password, self.delay = user, password, delay
        self.nginx: subprocess.Popen[bytes] | None = None
        self.delayer: subprocess.Popen[bytes] | None = None
        self.routers: list[subprocess.Popen[bytes]] = []
        self.port = self.upstream_port = 0

    def start(self) -> None:
        delay_port = free_port()
        env = dict(os.environ, KBENCH_USER=self.user, KBENCH_PASSWORD=self.password)
        self.delayer = subprocess.Popen(
            [sys.executable, "-m", "kbench.delay", str(delay_port), str(self.delay)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.prefix / "delay.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        wait_http(f"http://127.0.0.1:{delay_port}/", proc=self.delayer)
        self.port, self.upstream_port = free_port(), free_port(UPSTREAM_IP)
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            nginx_conf(self.prefix, self.index_root, self.port, self.upstream_port, delay_port)
        )
        self.nginx = subprocess.Popen(
            [nginx_binary(), "-p", str(self.prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.prefix / "nginx.stderr", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        wait_http(f"http://127.0.0.1:{self.port}/", proc=self.nginx)

    def index_url(self, set_name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{set_name}/simple/"

    def upstream_url(self, set_name: str) -> str:
        return f"http://{UPSTREAM_IP}:{self.upstream_port}/{set_name}/simple/"

    def router(self, set_name: str, workdir: Path) -> str:
        """Start simpleindex routing every project of the set to the upstream; its index URL."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = workdir / f"simpleindex-{set_name}.toml"
        config.write_text(
            f'[routes."{{project}}"]\nsource = "http"\n'
            f'to = "{self.upstream_url(set_name)}{{project}}/"\n\n'
            f'[server]\nhost = "127.0.0.1"\nport = {port}\nlog_level = "warning"\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "simpleindex", str(config)],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / f"simpleindex-{set_name}.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        self.routers.append(proc)
        url = f"http://127.0.0.1:{port}/"
        wait_http(url + "pip/", proc=proc)
        return url

    def stop(self) -> None:
        for proc in self.routers:
            _stop(proc)
        self.routers.clear()
        _stop(self.nginx)
        _stop(self.delayer)
        with contextlib.suppress(OSError):
            (self.prefix / "nginx.pid").unlink()
