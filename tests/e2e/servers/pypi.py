"""pypiserver (third-party) as the protected upstream: ``-P htpasswd -a download,list,update``,
served over TLS by gunicorn. What it received is read back from gunicorn's access log, which
records the method, raw URI, status and the Authorization / Proxy-Authorization headers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.servers.procs import PYTHON, ServerProcess, bind
from tests.e2e.servers.record import Seen
from tests.e2e.servers.tls import Tls

_LOG_FORMAT = "%(m)s\t%({raw_uri}e)s\t%(s)s\t%({authorization}i)s\t%({proxy-authorization}i)s"

_WSGI = """\
import pypiserver

app = pypiserver.app(
    roots=[{root!r}],
    password_file={htpasswd!r},
    authenticate=["download", "list", "update"],
    disable_fallback=True,
)
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
        (workdir / "kea_e2e_pypi_wsgi.py").write_text(
            _WSGI.format(root=str(packages), htpasswd=str(htpasswd))
        )
        self.access_log = workdir / "access.log"
        self.access_log.touch()
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
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                _LOG_FORMAT,
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

    def seen(self, since: int = 0, *, settle: float = 0.08) -> list[Seen]:
        # gunicorn writes the access line just after the response: wait until it stops growing.
        size = -1
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            current = self.access_log.stat().st_size
            if current == size:
                break
            size = current
            time.sleep(settle)
        out = []
        with self.access_log.open("rb") as f:
            f.seek(since)
            for line in f.read().decode("utf-8", "replace").splitlines():
                fields = line.split("\t")
                if len(fields) != 5:
                    continue
                method, uri, status, authz, proxy_authz = fields
                if uri == "/health":
                    continue
                out.append(
                    Seen(
                        server=self.label,
                        method=method,
                        path=uri,
                        authorization=None if authz == "-" else authz,
                        proxy_authorization=None if proxy_authz == "-" else proxy_authz,
                        status=int(status) if status.isdigit() else None,
                    )
                )
        return out

    def stop(self) -> None:
        self.proc.stop()
