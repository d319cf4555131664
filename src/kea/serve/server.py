"""Running ``kea serve``: one port, N worker processes, graceful shutdown.

With ``workers > 1`` the process forks ``workers - 1`` children and serves as the first worker
itself, so N workers are N processes (no idle supervisor holding its own copy of the
interpreter). Each worker listens on its own socket bound to the same port (SO_REUSEPORT, the
kernel spreads connections) and all share the cache directory (every cache write is atomic, see
``kea.serve.store``). The application modules are imported before the fork, so the workers share
those pages with the first one until they write to them. SIGTERM/SIGINT to the first worker
reaches every worker: each stops accepting, lets requests in flight finish (up to
``SHUTDOWN_TIMEOUT`` seconds) and exits 0.

Memory: a worker runs its blocking work (stat, hashing, unzipping) on ``THREADS`` threads, and a
server that never makes an outbound connection (no proxy route: local folders, redirects) does
not load the TLS stack at all: aiohttp builds two SSL contexts with the system CA store when it
is imported, a few MB per process that such a server never uses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping

from kea.errors import KeaError
from kea.serve.config import ServeConfig

log = logging.getLogger("kea.serve")
SHUTDOWN_TIMEOUT = 10.0
THREADS = 4
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


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


def needs_tls(config: ServeConfig) -> bool:
    """Whether this server may open an outbound connection (only proxy routes fetch)."""
    return any(r.mode == "proxy" and r.upstream is not None for r in config.routes)


def _skip_tls_stack(config: ServeConfig) -> None:
    """Keep ``ssl`` from being imported by a server that makes no outbound connection (it never
    terminates TLS either). aiohttp and asyncio import it optionally and work without it."""
    if not needs_tls(config) and "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]


async def serve_socket(
    config: ServeConfig,
    sock: socket.socket,
    env: Mapping[str, str],
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT, then shut down gracefully (``on_stop`` is called
    as soon as the signal arrives, before the requests in flight are drained)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    from kea.serve.app import AccessLogger, ServeApp

    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(THREADS, thread_name_prefix="kea-serve")
    loop.set_default_executor(executor)
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
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    # A stop signal that arrived while starting up was held back (see ``run``): deliver it now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        await stop.wait()
    finally:
        if on_stop is not None:
            on_stop()
        await runner.cleanup()


def run(config: ServeConfig, env: Mapping[str, str] | None = None) -> None:
    env = dict(os.environ) if env is None else env
    if config.access_log:
        logging.getLogger("kea.serve.access").setLevel(logging.INFO)
    logging.getLogger("kea.serve").setLevel(
        min(logging.INFO, logging.getLogger("kea").getEffectiveLevel())
    )
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    from kea.serve.store import sweep_temp_files

    swept = sweep_temp_files(config.cache_dir)  # once, before the workers: crashed ones' leftovers
    if swept:
        log.info(
            "removed %d stale temporary file%s from the cache", swept, "" if swept == 1 else "s"
        )
    _skip_tls_stack(config)  # before anything imports asyncio (which imports ssl)
    import asyncio

    import kea.serve.app  # noqa: F401  (before the fork: the workers share these pages)

    # Several workers: each gets its own listening socket on the same port (SO_REUSEPORT), so the
    # kernel spreads connections evenly; the first socket reserves the port before the others
    # are bound and only listens once the children (which close their copy) are forked.
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
    # Stop signals wait until a worker's loop can handle them (serve_socket unblocks them), so a
    # SIGTERM during start-up still means a graceful stop of every worker.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    children: list[int] = []

    def forward() -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    try:
        for _ in range(config.workers - 1):
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
        if reuse_port:
            sock.listen(1024)
        try:
            asyncio.run(serve_socket(config, sock, env, on_stop=forward))
        except BaseException:
            forward()
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    # While the children drain, another stop signal is passed on to them too.
    signal.signal(signal.SIGTERM, lambda _s, _f: forward())
    signal.signal(signal.SIGINT, lambda _s, _f: forward())
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


__all__ = ["bind", "needs_tls", "run", "serve_socket"]
