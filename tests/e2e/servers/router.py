"""simpleindex (third-party, the router of the seed issue) as a subprocess, with a recording front.

Routes: ``local-pkg`` is a ``path`` route to a local directory of wheels; every other project is an
``http`` route that answers 302 to the protected upstream's ``/simple/{project}/``.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.servers.front import RecordingFront
from tests.e2e.servers.procs import PYTHON, ServerProcess, bind
from tests.e2e.servers.web import ServerLoop

CONFIG = """\
[routes."{local_project}"]
source = "path"
to = "{local_dir}/"

[routes."{{project}}"]
source = "http"
to = "{upstream}/simple/{{project}}/"

[server]
fd = {fd}
log_level = "warning"
"""


class SimpleIndexRouter:
    """``url`` is the recording front (what clients use); simpleindex answers behind it."""

    def __init__(
        self,
        workdir: Path,
        ip: str,
        *,
        loop: ServerLoop,
        upstream: str,
        local_project: str,
        local_dir: Path,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        sock = bind(ip)
        config = workdir / "simpleindex.toml"
        config.write_text(
            CONFIG.format(
                local_project=local_project,
                local_dir=local_dir.as_posix(),
                upstream=upstream.rstrip("/"),
                fd=sock.fileno(),
            )
        )
        self.proc = ServerProcess(
            [PYTHON, "-m", "simpleindex", str(config)],
            sock=sock,
            log=workdir / "simpleindex.log",
            cwd=workdir,
        )
        self.proc.wait_ready(f"/{local_project}/", tls=False)
        self.backend = f"http://{ip}:{self.proc.port}"
        self.front = RecordingFront(loop, ip, self.backend, label="simpleindex")
        self.url = self.front.url
        self.netloc = f"{ip}:{self.front.port}"

    def stop(self) -> None:
        self.front.close()
        self.proc.stop()
