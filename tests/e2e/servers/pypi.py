"""pypiserver (third-party) as the protected upstream: ``-P htpasswd -a download,list,update``,
served over TLS by gunicorn.

What it received is recorded by a few lines of WSGI around pypiserver's app (like an access log,
but written when pypiserver calls ``start_response``, so before the client can see the answer):
method, raw URI, status, Authorization and Proxy-Authorization. pypiserver still answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.servers.procs import PYTHON, ServerProcess, bind
from tests.e2e.servers.record import Seen
from tests.e2e.servers.tls import Tls

_WSGI = """\
import json
import threading

import pypiserver

_inner = pypiserver.app(
    roots=[{root!r}],
    password_file={htpasswd!r},
    authenticate=["download", "list", "update"],
    disable_fallback=True,
)
_lock = threading.Lock()


def app(environ, start_response):
    def recording_start_response(status, headers, exc_info=None):
        line = json.dumps(
            {{
                "method": environ.get("REQUEST_METHOD"),
                "uri": environ.get("RAW_URI") or environ.get("PATH_INFO"),
                "status": int(status.split(" ", 1)[0]),
                "authorization": environ.get("HTTP_AUTHORIZATION"),
                "proxy_authorization": environ.get("HTTP_PROXY_AUTHORIZATION"),
            }}
        )
        with _lock, open({log!r}, "a") as f:
            f.write(line + "\\n")
        return start_response(status, headers, exc_info)

    return _inner(environ, recording_start_response)
"""


def write_htpasswd(path: Path, users: Mapping[str, str]) -> None:
    from passlib.apache import HtpasswdFile

    ht = HtpasswdFile(str(path), new=True, default_scheme="apr_md5_crypt")
    for user, password in users.items():
        ht.set_password(user, password)
    ht.save()


class PypiServer:
    """pypiserver behind gunicorn TLS on ``ip``. ``url`` is ``https://ip:port``."""

    def __init__(
        self, workdir: Path, ip: str, *, tls: Tls, users: Mapping[str, str], packages: Path
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        htpasswd = workdir / "htpasswd"
        write_htpasswd(htpasswd, users)
        self.access_log = workdir / "requests.jsonl"
        self.access_log.touch()
        (workdir / "kea_e2e_pypi_wsgi.py").write_text(
            _WSGI.format(root=str(packages), htpasswd=str(htpasswd), log=str(self.access_log))
        )
        sock = bind(ip)
        self.proc = ServerProcess(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "--bind",
                f"fd://{sock.fileno()}",
                "--workers",
                "1",
                "--worker-class",
                "gthread",
                "--threads",
                "8",
                "--certfile",
                str(tls.cert_pem),
                "--keyfile",
                str(tls.key_pem),
                "--chdir",
                str(workdir),
                "kea_e2e_pypi_wsgi:app",
            ],
            sock=sock,
            log=workdir / "gunicorn.log",
            cwd=workdir,
        )
        self.ip = ip
        self.port = self.proc.port
        self.url = f"https://{ip}:{self.port}"
        self.netloc = f"{ip}:{self.port}"
        self.label = f"pypiserver {self.netloc}"
        self.proc.wait_ready("/health", tls=True)

    def mark(self) -> int:
        """A position in the access log; ``seen(since=mark)`` lists what came after."""
        return self.access_log.stat().st_size

    def seen(self, since: int = 0) -> list[Seen]:
        out = []
        with self.access_log.open("rb") as f:
            f.seek(since)
            for line in f.read().decode("utf-8", "replace").splitlines():
                if not line.strip():
                    continue
                rec = json.loads(line)
                if rec["uri"] == "/health":
                    continue
                out.append(
                    Seen(
                        server=self.label,
                        method=rec["method"],
                        path=rec["uri"],
                        authorization=rec["authorization"],
                        proxy_authorization=rec["proxy_authorization"],
                        status=rec["status"],
                    )
                )
        return out

    def stop(self) -> None:
        self.proc.stop()
