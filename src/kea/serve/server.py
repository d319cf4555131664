"""Running ``kea serve``: one port, N worker processes, graceful shutdown, dead workers replaced.

With ``workers > 1`` the process forks ``workers - 1`` children and serves as the first worker
itself, so N workers are N processes (no idle supervisor holding its own copy of the
interpreter). Each worker listens on its own socket bound to the same port (SO_REUSEPORT, the
kernel spreads connections) and all share the cache directory (every cache write is atomic, see
``kea.serve.store``). The application modules are imported before the fork, so the workers share
those pages with the first one until they write to them. SIGTERM/SIGINT to the first worker
reaches every worker: each stops accepting, lets requests in flight finish (up to
``SHUTDOWN_TIMEOUT`` seconds) and exits 0. Their counters are summed for ``/metrics``
(``kea.serve.metrics.Board``).

A worker that dies while the server runs (a crash, the OOM killer) is replaced: the first worker
hears of it (SIGCHLD) and starts another in its slot ``RESTART_DELAY`` seconds later, the delay
doubling up to ``RESTART_DELAY_MAX`` while that slot's workers keep dying within ``STABLE``
seconds. The new worker is a fresh interpreter (``respawned``), not a fork: by then the first
worker runs an event loop and threads, and a fork would inherit them half-way (locks held by a
thread, the loop's descriptors, clients' connections, which would stay open in the child). It is
handed the config text the server started with, not what the file says by then, so every worker
serves one config. The other workers end with the first however it ends, a SIGKILL included
(Linux: PR_SET_PDEATHSIG), so none goes on serving unsupervised. Before, a dead worker stayed
dead: the server ran on with fewer workers, and said nothing until it stopped.

Memory: a worker runs its blocking work (stat, hashing, unzipping) on ``THREADS`` threads, and a
server that never makes an outbound connection (no proxy route: local folders, redirects) does
not load the TLS stack at all: aiohttp builds two SSL contexts with the system CA store when it
is imported, a few MB per process that such a server never uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kea.errors import KeaError
from kea.serve.config import ServeConfig
from kea.serve.metrics import Board

if TYPE_CHECKING:
    import subprocess

log = logging.getLogger("kea.serve")
SHUTDOWN_TIMEOUT = 10.0
THREADS = 4
RESTART_DELAY = 0.5  # seconds
RESTART_DELAY_MAX = 30.0
STABLE = 10.0  # a worker that ran this long before it died is replaced after RESTART_DELAY again
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
PR_SET_PDEATHSIG = 1


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


class CannotReplace(Exception):
    """A dead worker cannot be replaced on this server at all (trying again will not help)."""


class _Child(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class _Forked:
    """A worker forked by ``run``, seen as ``subprocess.Popen`` sees the ones it starts."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already: nothing more is known of it
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = 0
        return self.returncode


class _Supervisor:
    """The other workers, by slot, as the first worker sees them: one that ends while the
    server runs is replaced by ``start(slot)`` (see the module docstring)."""

    def __init__(self, start: Callable[[int], _Child]) -> None:
        self.workers: dict[int, _Child] = {}
        self.stopping = False
        self._start = start
        self._since: dict[int, float] = {}  # slot -> when its worker started
        self._delay: dict[int, float] = {}  # slot -> the delay before its last restart

    def add(self, slot: int, child: _Child) -> None:
        self.workers[slot] = child
        self._since[slot] = time.monotonic()

    def reap(self) -> None:
        """(SIGCHLD) The workers that ended leave their slot; each is replaced after a delay,
        unless the server is stopping."""
        import asyncio

        for slot, child in list(self.workers.items()):
            code = child.poll()
            if code is None or self.stopping:
                continue
            del self.workers[slot]
            delay = self.delay(slot)
            log.warning(
                "worker %d (pid %d) %s; another starts in %gs", slot, child.pid, _ended(code), delay
            )
            asyncio.get_running_loop().call_later(delay, self._restart, slot)

    def delay(self, slot: int) -> float:
        """How long to wait before replacing ``slot``'s worker, which just ended."""
        lived = time.monotonic() - self._since.get(slot, 0.0)
        last = self._delay.get(slot)
        if last is None or lived >= STABLE:
            delay = RESTART_DELAY
        else:
            delay = min(last * 2, RESTART_DELAY_MAX)
        self._delay[slot] = delay
        return delay

    def _restart(self, slot: int) -> None:
        import asyncio

        if self.stopping or slot in self.workers:
            return
        try:
            child = self._start(slot)
        except CannotReplace as e:
            log.error("worker %d is not replaced: %s", slot, e)
            return
        except OSError as e:
            self._since[slot] = time.monotonic()
            delay = self.delay(slot)
            log.error("cannot start worker %d: %s; trying again in %gs", slot, e, delay)
            asyncio.get_running_loop().call_later(delay, self._restart, slot)
            return
        self.add(slot, child)
        log.info("worker %d started (pid %d)", slot, child.pid)

    def stop(self) -> None:
        """Stop replacing workers; ask every one to stop (SIGTERM: a graceful stop)."""
        self.stopping = True
        for child in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)

    def wait(self) -> int:
        """Wait for every worker to end; how many ended other than by a stop."""
        return sum(1 for child in self.workers.values() if child.wait() not in (0, -signal.SIGTERM))


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _die_with(parent: int) -> None:
    """Make this worker stop (SIGTERM) when ``parent``, the first worker, ends, however it ends
    (Linux); exit now if it has ended already."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(0)


async def serve_socket(
    config: ServeConfig,
    sock: socket.socket,
    env: Mapping[str, str],
    *,
    board: Board | None = None,
    supervisor: _Supervisor | None = None,
) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT, then shut down gracefully. ``board``: this
    worker's slot among several; ``supervisor``: the first worker's view of the others, told
    to stop as soon as the signal arrives, before the requests in flight are drained."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    from kea.serve.app import AccessLogger, ServeApp

    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(THREADS, thread_name_prefix="kea-serve")
    loop.set_default_executor(executor)
    app = ServeApp(config, env, board).build()
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
    if supervisor is not None:
        loop.add_signal_handler(signal.SIGCHLD, supervisor.reap)
        supervisor.reap()  # one may have ended before the handler was there
    # A stop signal that arrived while starting up was held back (see ``run``): deliver it now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        await stop.wait()
    finally:
        if supervisor is not None:
            supervisor.stop()
        await runner.cleanup()
        # The loop is stopping: no signal needs to wake it any more. Let go of its wakeup fd
        # now, because when asyncio closes a loop it closes that fd first and lets go of the
        # signals only after. A signal in between (the other workers' SIGCHLD, as they all
        # stop at once) was written to the closed fd, and Python printed "Exception ignored
        # when trying to write to the signal wakeup fd" with a traceback.
        signal.set_wakeup_fd(-1)


def _log_levels(config: ServeConfig) -> None:
    if config.access_log:
        logging.getLogger("kea.serve.access").setLevel(logging.INFO)
    logging.getLogger("kea.serve").setLevel(
        min(logging.INFO, logging.getLogger("kea").getEffectiveLevel())
    )


def _board_root() -> Path | None:
    """The directory where the workers publish their counters; None (each worker's ``/metrics``
    then counts its own requests only) where it cannot be made."""
    try:
        return Board.create()
    except OSError as e:
        log.warning("/metrics will count each worker on its own: %s", e.strerror or e)
        return None


def run(
    config: ServeConfig,
    env: Mapping[str, str] | None = None,
    *,
    verbosity: int = 0,
    quiet: int = 0,
) -> None:
    """Serve ``config`` until stopped. ``verbosity`` and ``quiet`` are the command's, for the
    logging of a worker started later."""
    env = dict(os.environ) if env is None else env
    _log_levels(config)
    from kea.serve.store import prepare_cache_dir, remove_unused_bodies, sweep_temp_files

    prepare_cache_dir(config.cache_dir)
    if remove_unused_bodies(config.cache_dir):
        log.info("removed files-v1 from the cache (no longer used; bodies are fetched again)")

    swept = sweep_temp_files(config.cache_dir)  # once, before the workers: crashed ones' leftovers
    if swept:
        log.info(
            "removed %d stale temporary file%s from the cache", swept, "" if swept == 1 else "s"
        )
    _skip_tls_stack(config)  # before anything imports asyncio (which imports ssl)
    import asyncio

    import kea.serve.app  # noqa: F401  (before the fork: the workers share these pages)

    # Several workers: each gets its own listening socket on the same port (SO_REUSEPORT, so the
    # kernel spreads connections evenly); the first socket reserves the port before the others
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
    board_root = _board_root() if config.workers > 1 else None

    def board(slot: int) -> Board | None:
        return Board(board_root, slot) if board_root is not None else None

    first = os.getpid()
    # What a worker started in place of a dead one needs (``respawned``).
    spec: dict[str, Any] = {
        "source": config.source,
        "path": str(config.path),
        "host": host,
        "port": port,
        "workers": config.workers,
        "cache_dir": str(config.cache_dir),
        "access_log": config.access_log,
        "board": str(board_root) if board_root is not None else None,
        "parent": first,
        "verbosity": verbosity,
        "quiet": quiet,
    }

    def respawn(slot: int) -> subprocess.Popen[bytes]:
        import subprocess

        from kea.child import kea_python

        if not reuse_port:
            raise CannotReplace("a new worker needs a socket of its own (SO_REUSEPORT)")
        if not config.source:
            raise CannotReplace("the config was not read from a file")
        proc = subprocess.Popen(
            kea_python("from kea.serve.server import respawned; respawned()"),
            stdin=subprocess.PIPE,
            env=dict(env),
            close_fds=True,
        )
        assert proc.stdin is not None
        with proc.stdin:
            proc.stdin.write(json.dumps({**spec, "slot": slot}).encode())
        return proc

    supervisor = _Supervisor(respawn)
    # Stop signals wait until a worker's loop can handle them (serve_socket unblocks them), so a
    # SIGTERM during start-up still means a graceful stop of every worker.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        for slot in range(1, config.workers):
            pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    _die_with(first)
                    if reuse_port:
                        own = bind(host, port, reuse_port=True)
                        sock.close()
                    else:
                        own = sock
                    asyncio.run(serve_socket(config, own, env, board=board(slot)))
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            supervisor.add(slot, _Forked(pid))
        if reuse_port:
            sock.listen(1024)
        try:
            asyncio.run(serve_socket(config, sock, env, board=board(0), supervisor=supervisor))
        except BaseException:
            supervisor.stop()
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        # While the workers drain, another stop signal is passed on to them too.
        signal.signal(signal.SIGTERM, lambda _s, _f: supervisor.stop())
        signal.signal(signal.SIGINT, lambda _s, _f: supervisor.stop())
        failed = supervisor.wait()
        if board_root is not None:
            import shutil

            shutil.rmtree(board_root, ignore_errors=True)
    if failed:
        raise KeaError(f"{failed} of {config.workers} workers exited with an error")


def respawned() -> None:
    """A worker started in place of one that died (``_Supervisor``); what it needs is on its
    standard input, as JSON (``run``'s ``spec`` and its slot)."""
    spec = json.loads(sys.stdin.buffer.read())
    _die_with(spec["parent"])
    code = 0
    try:
        from kea.cli.output import setup_logging
        from kea.serve.config import parse_config

        setup_logging(spec["verbosity"], spec["quiet"])
        import tomllib

        config = dataclasses.replace(
            parse_config(tomllib.loads(spec["source"]), Path(spec["path"]), os.environ),
            host=spec["host"],
            port=spec["port"],
            workers=spec["workers"],
            cache_dir=Path(spec["cache_dir"]),
            access_log=spec["access_log"],
            source=spec["source"],
        )
        _log_levels(config)
        _skip_tls_stack(config)
        import asyncio

        sock = bind(config.host, config.port, reuse_port=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        board = Board(Path(spec["board"]), spec["slot"]) if spec["board"] else None
        asyncio.run(serve_socket(config, sock, os.environ, board=board))
    except KeaError as e:
        log.error("worker %d cannot start: %s", spec["slot"], e.message)
        code = 1
    except BaseException:
        code = 1
    finally:
        os._exit(code)


__all__ = ["bind", "needs_tls", "respawned", "run", "serve_socket"]
