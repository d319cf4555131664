"""Running third-party servers as subprocesses on a socket we bind (no port races)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the test process dies (even by
    SIGKILL), so no server outlives an aborted test run."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def bind(ip: str) -> socket.socket:
    """A listening TCP socket on ``ip`` with an ephemeral port, inheritable by a child."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ServerProcess:
    """A child process serving on an inherited socket; its output goes to ``log``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        sock: socket.socket,
        log: Path,
        cwd: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.sock = sock
        self.ip, self.port = sock.getsockname()[:2]
        self.log = log
        child_env = dict(os.environ)
        for key in [k for k in child_env if k.lower().endswith("_proxy")]:
            del child_env[key]
        child_env.update(env or {})
        self._log_file = log.open("ab")
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=child_env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(sock.fileno(),),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def wait_ready(self, probe: str, *, tls: bool, timeout: float = 30.0) -> None:
        """Wait until the server answers an HTTP request for ``probe`` (any status)."""
        import ssl

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.log.name}: server exited ({self.proc.returncode}):\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            try:
                with socket.create_connection((self.ip, self.port), timeout=2) as raw:
                    conn: socket.socket = raw
                    if tls:
                        ctx = ssl.create_default_context()
                        ctx.check_hostname = False
                        ctx.verify_mode = ssl.CERT_NONE
                        conn = ctx.wrap_socket(raw)
                    host = f"Host: {self.ip}\r\nConnection: close\r\n\r\n"
                    request = f"GET {probe} HTTP/1.1\r\n{host}"
                    conn.sendall(request.encode())
                    if conn.recv(12).startswith(b"HTTP/1."):
                        return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(f"{self.log.name}: not ready after {timeout}s ({last})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log_file.close()
        with contextlib.suppress(OSError):
            self.sock.close()


PYTHON = sys.executable
