"""``kea venv`` + ``kea pip install`` in an end-to-end ``World``, and the seed case's own servers.

``SeedServers`` is the seed issue's setup with a real dependency edge: a simpleindex router whose
``path`` route serves the public ``acme-public`` from a local folder and whose ``http`` route
answers 302 to the protected pypiserver (TLS, htpasswd) holding ``acme-private``, which requires
``acme-public``. It reuses the session's TLS, event loop and users (so each ``World`` already knows
their passwords as secrets).

``InstallWorld`` is a ``World`` that can also make a venv and install into it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.e2e.harness import Run, Servers, World, start_seed_pair, stop_all
from tests.e2e.wheels import build_wheel

PRIVATE = "acme-private"
PUBLIC = "acme-public"
PRIVATE_MODULE = 'from acme_public import greet\n\nVERSION = "1.0"\nMESSAGE = greet("private")\n'
PUBLIC_MODULE = 'VERSION = "2.0"\n\n\ndef greet(who: str) -> str:\n    return f"hello from {who}"\n'


class SeedServers:
    """router (127.0.0.1: local ``acme-public``, 302 for the rest) → pypiserver (127.0.0.2)."""

    def __init__(self, root: Path, servers: Servers) -> None:
        upstream_dir = root / "upstream-packages"
        self.private_wheel = build_wheel(
            upstream_dir,
            PRIVATE,
            "1.0",
            requires=(f"{PUBLIC}>=2",),
            module_text=PRIVATE_MODULE,
        )
        local_dir = root / "router-local" / PUBLIC
        self.public_wheel = build_wheel(local_dir, PUBLIC, "2.0", module_text=PUBLIC_MODULE)
        self._stoppers: list[Any] = []
        try:
            self.pypi, self.router = start_seed_pair(
                root,
                tls=servers.tls,
                users={servers.alice.name: servers.alice.password},
                packages=upstream_dir,
                loop=servers.loop,
                local_project=PUBLIC,
                local_dir=local_dir,
                stoppers=self._stoppers,
            )
        except BaseException:
            self.stop()
            raise

    @property
    def index_url(self) -> str:
        return self.router.url + "/"

    def stop(self) -> None:
        stop_all(self._stoppers)


class InstallWorld(World):
    """A ``World`` with a venv of its own and ``kea pip install`` into it."""

    @property
    def venv_path(self) -> Path:
        return self.tmp / "venv"

    @property
    def venv_python(self) -> Path:
        return self.venv_path / "bin" / "python"

    def make_venv(self) -> Run:
        """``kea venv`` (the interpreter running the tests as the base)."""
        args = ["venv", str(self.venv_path), "--python", sys.executable]
        run = self._run([sys.executable, "-m", "kea", *args], args, None)
        assert run.returncode == 0 and self.venv_python.exists(), run
        return run

    def install(self, *args: str, env: Mapping[str, str] | None = None) -> Run:
        """``kea pip install ARGS --python VENV -v`` (or -vvv), recorded in ``runs``."""
        argv = ["pip", "install", *args, "--python", str(self.venv_python), *self.verbose_flag()]
        return self._run([sys.executable, "-m", "kea", *argv], argv, env)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with the venv's interpreter (no kea involved)."""
        return subprocess.run(
            [str(self.venv_python), "-c", code],
            cwd=self.cwd,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            timeout=30,
        )

    def installed(self) -> list[str]:
        """``*.dist-info`` directory names in the venv's site-packages (sorted)."""
        found = sorted(self.venv_path.glob("lib/python3*/site-packages/*.dist-info"))
        return [p.name for p in found]
