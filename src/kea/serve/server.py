"""Running ``kea serve``: one listening socket, N worker processes, graceful shutdown.

The parent binds the socket; with ``workers > 1`` it forks that many children which all accept
on it (the kernel spreads connections) and share the cache directory (every cache write is
atomic, see ``kea.serve.store``). SIGTERM/SIGINT stop accepting, let requests in flight finish
(up to ``SHUTDOWN_TIMEOUT`` seconds) and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping

from kea.errors import KeaError
from kea.serve.config import ServeConfig

log = logging.getLogger("kea.serve")
SHUTDOWN_TIMEOUT = 10.0


def bind(host: str, port: int, *, listen: bool = True, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise KeaError(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            hint="choose another --port, or stop the process using it",
        ) from None
    if listen:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_socket(config: ServeConfig, sock: socket.socket, env: Mapping[str, str]) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT, then shut down gracefully."""
    from aiohttp import web

    from kea.serve.app import AccessLogger, ServeApp

    app = ServeApp(config, env).build()
    access = logging.getLogger("kea.serve.access")
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=AccessLogger,
        access_log=access if config.access_log else None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    site = web.SockSite(runner, sock, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(config: ServeConfig, env: Mapping[str, str] | None = None) -> None:
    env = dict(os.environ) if env is None else env
    if config.access_log:
        logging.getLogger("kea.serve.access").setLevel(logging.INFO)
    logging.getLogger("kea.serve").setLevel(
        min(logging.INFO, logging.getLogger("kea").getEffectiveLevel())
    )
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    # Several workers: each gets its own listening socket on the same port (SO_REUSEPORT), so the
    # kernel spreads connections evenly; the parent's socket only reserves the port (it never
    # listens, so it is never handed a connection).
    reuse_port = config.workers > 1 and hasattr(socket, "SO_REUSEPORT")
    sock = bind(config.host, config.port, listen=not reuse_port, reuse_port=reuse_port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(
        f"kea serve: listening on http://{shown}:{port}/simple/"
        f" ({config.workers} worker{'s' if config.workers != 1 else ''},"
        f" cache {config.cache_dir})\n"
    )
    sys.stderr.flush()
    if config.workers <= 1:
        asyncio.run(serve_socket(config, sock, env))
        return
    children: list[int] = []
    for _ in range(config.workers):
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                if reuse_port:
                    own = bind(host, port, reuse_port=True)
                    sock.close()
                else:
                    own = sock
                asyncio.run(serve_socket(config, own, env))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except ChildProcessError:
                status = 0
                break
            except InterruptedError:
                continue
        if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM):
            failed += 1
    if failed:
        raise KeaError(f"{failed} of {config.workers} workers exited with an error")


__all__ = ["bind", "run", "serve_socket"]
