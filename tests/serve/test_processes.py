"""What a running ``kea serve`` consists of: N workers are N processes, and a server that never
connects anywhere (local folders, redirects) does not load the TLS stack."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.wheels import build_wheel
from tests.serve.harness import (
    PY,
    KeaServe,
    clean_env,
    eventually,
    http_get,
    listeners,
    process_tree,
    running,
)


def _loads_tls(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "libssl" in maps or "/_ssl." in maps


def _local_serve(
    tmp_path: Path, ip: str, workers: int, project: str | None = None
) -> tuple[KeaServe, Path | None]:
    """kea serve with ``workers`` workers and one route, "local", over a folder holding a wheel
    of ``project`` (none without one); (the server, the wheel)."""
    packages = tmp_path / "packages"
    packages.mkdir()
    whl = build_wheel(packages, project, "1.0") if project else None
    serve = KeaServe(
        tmp_path / "serve",
        f'[[route]]\nname = "local"\nmatch = "*"\ndirectory = "{packages}"\n',
        ip=ip,
        args=["--workers", str(workers)],
    )
    return serve, whl


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_local_workers_are_n_processes_without_tls(tmp_path: Path) -> None:
    serve, whl = _local_serve(tmp_path, "127.0.0.11", 3, "proc-pkg")
    assert whl is not None
    try:
        pids = process_tree(serve.proc.pid)
        assert len(pids) == 3  # the process started is the first worker: no idle supervisor
        # every worker answers (connections are spread by the kernel; ask until all have)
        for _ in range(30):
            status, _, page = http_get(serve.index + "proc-pkg/")
            assert status == 200 and whl.name in page.decode()
            status, _, body = http_get(f"{serve.url}/files/local/proc-pkg/{whl.name}")
            assert (
                status == 200
                and hashlib.sha256(body).digest() == hashlib.sha256(whl.read_bytes()).digest()
            )
        assert not any(_loads_tls(p) for p in pids)
    finally:
        code = serve.stop()
    assert code == 0
    assert not any(Path(f"/proc/{p}").exists() for p in pids if p != serve.proc.pid)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_redirect_only_server_loads_no_tls_but_a_proxy_does(tmp_path: Path) -> None:
    upstream = "https://upstream.invalid/simple/"
    redirect = KeaServe(
        tmp_path / "redirect",
        f'[[upstream]]\nname = "up"\nurl = "{upstream}"\n'
        '[[route]]\nmatch = "*"\nupstream = "up"\nmode = "redirect"\n',
        ip="127.0.0.11",
    )
    proxy = KeaServe(
        tmp_path / "proxy",
        f'[[upstream]]\nname = "up"\nurl = "{upstream}"\n[[route]]\nmatch = "*"\nupstream = "up"\n',
        ip="127.0.0.11",
    )
    try:
        status, headers, _ = http_get(redirect.index + "some-pkg/")
        assert status == 302 and headers["Location"] == upstream + "some-pkg/"
        assert not _loads_tls(redirect.proc.pid)
        assert _loads_tls(proxy.proc.pid)  # it fetches over https: the TLS stack is there
    finally:
        assert redirect.stop() == 0
        assert proxy.stop() == 0


def test_sigterm_right_after_start_stops_every_worker(tmp_path: Path) -> None:
    serve, _ = _local_serve(tmp_path, "127.0.0.11", 4, "early-pkg")
    pids = process_tree(serve.proc.pid)
    os.kill(serve.proc.pid, signal.SIGTERM)
    assert serve.proc.wait(20) == 0
    serve.stop()
    assert not any(Path(f"/proc/{p}").exists() for p in pids if p != serve.proc.pid)


def test_stale_temporary_files_of_dead_writers_are_swept_at_start(tmp_path: Path) -> None:
    """A worker killed mid-write leaves a ``.tmp-*`` file in the cache; the next start removes
    it once it is an hour old, and leaves younger ones (a live writer of another server)."""
    cache = tmp_path / "cache"
    (cache / "files-v2" / "ab").mkdir(parents=True)
    (cache / "pages-v1" / "local").mkdir(parents=True)
    stale = [cache / "files-v2" / "ab" / ".tmp-dead1", cache / "pages-v1" / "local" / ".tmp-x"]
    fresh = cache / "files-v2" / "ab" / ".tmp-writing"
    body = cache / "files-v2" / "ab" / ("ab" + "0" * 62)
    two_hours_ago = time.time() - 7200
    old_body = cache / "files-v1" / "ab" / ("ab" + "1" * 62)  # the store before 79688d4
    old_body.parent.mkdir(parents=True)
    for p in (*stale, fresh, body, old_body):
        p.write_bytes(b"partial")
    for p in (*stale, body):
        os.utime(p, (two_hours_ago, two_hours_ago))
    packages = tmp_path / "packages"
    packages.mkdir()
    serve = KeaServe(
        tmp_path / "serve",
        f'[server]\ncache-dir = "{cache}"\n\n'
        f'[[route]]\nname = "local"\nmatch = "*"\ndirectory = "{packages}"\n',
        ip="127.0.0.12",
    )
    try:
        assert not any(p.exists() for p in stale)
        assert fresh.exists() and body.exists()
        assert "removed 2 stale temporary files from the cache" in serve.text()
        assert not (cache / "files-v1").exists()  # a private body could have stayed there
    finally:
        assert serve.stop() == 0


def _served_200(serve: KeaServe) -> int:
    """The server's count of 200 answers on the route "local", from ``/metrics``."""
    status, _, body = http_get(serve.url + "/metrics")
    assert status == 200
    line = 'kea_serve_requests_total{route="local",status="200"} '
    return next((int(x[len(line) :]) for x in body.decode().splitlines() if x.startswith(line)), 0)


def _published_200(first: int) -> int:
    """The 200s of the local route in the snapshots the workers of server ``first`` published."""
    total = 0
    for board in Path(tempfile.gettempdir()).glob(f"kea-serve-metrics-{first}-*"):
        for path in board.glob("*.json"):
            try:
                snap = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            total += sum(
                n for route, status, n in snap["requests"] if (route, status) == ("local", 200)
            )
    return total


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_a_dead_worker_is_replaced_and_metrics_count_every_worker(tmp_path: Path) -> None:
    serve, whl = _local_serve(tmp_path, "127.0.0.13", 3, "crash-pkg")
    assert whl is not None
    first = serve.proc.pid
    try:
        for _ in range(30):  # each on a new connection: the kernel spreads them over the workers
            assert http_get(serve.index + "crash-pkg/")[0] == 200
        # whichever worker a scrape reaches, it counts all three (each publishes within 1 s)
        assert eventually(lambda: _served_200(serve) == 30), _served_200(serve)
        # A scrape adds the live counts of the worker it reaches, published or not; a SIGKILL
        # loses what a worker has not published yet (up to PUBLISH_EVERY). The victim's counts
        # must be on the board before it is killed.
        assert eventually(lambda: _published_200(first) == 30), _published_200(first)
        workers = process_tree(first) - {first}
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        assert eventually(
            lambda: victim not in process_tree(first) and len(process_tree(first)) == 3
        )
        assert f"pid {victim}) was killed by SIGKILL; another starts in 0.5s" in serve.text()
        # the new worker listens beside the others: the kernel hands it its share of these
        assert eventually(lambda: listeners(serve.port) == 3)
        for _ in range(30):
            status, _, body = http_get(f"{serve.url}/files/local/crash-pkg/{whl.name}")
            assert status == 200 and body == whl.read_bytes()
        # the new worker took its slot's counts over: nothing counted before the kill is lost
        assert eventually(lambda: _served_200(serve) == 60), _served_200(serve)
        replaced = process_tree(first) - {first}
        boards = list(Path(tempfile.gettempdir()).glob(f"kea-serve-metrics-{first}-*"))
        assert len(boards) == 1 and {p.name for p in boards[0].iterdir()} == {
            "0.json",
            "1.json",
            "2.json",
        }
    finally:
        code = serve.stop()
    assert code == 0  # the replacement stopped gracefully with the others
    assert not any(running(p) for p in replaced)
    assert not boards[0].exists()  # the server removed its snapshots as it stopped


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_workers_end_with_the_first_however_it_ends(tmp_path: Path) -> None:
    serve, _ = _local_serve(tmp_path, "127.0.0.13", 3)
    workers = process_tree(serve.proc.pid) - {serve.proc.pid}
    assert len(workers) == 2
    os.kill(serve.proc.pid, signal.SIGKILL)  # no chance to stop them itself
    serve.proc.wait(10)
    serve.stop()
    assert eventually(lambda: not any(running(p) for p in workers))


def test_a_slot_that_keeps_dying_waits_longer_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """0.5 s before the first replacement, doubling while the slot's workers die within
    STABLE seconds of their start, at most RESTART_DELAY_MAX; back to 0.5 s after one that
    lived longer."""
    from kea.serve import server

    now = [1000.0]
    monkeypatch.setattr(server.time, "monotonic", lambda: now[0])
    supervisor = server._Supervisor(lambda slot: server._Forked(0))
    delays = []
    for _ in range(9):
        supervisor.add(1, server._Forked(0))
        now[0] += 1.0  # dies a second after it started
        delays.append(supervisor.delay(1))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    supervisor.add(1, server._Forked(0))
    now[0] += server.STABLE
    assert supervisor.delay(1) == server.RESTART_DELAY
    assert supervisor.delay(2) == server.RESTART_DELAY  # each slot on its own


_STOP_AND_REPORT = """
import asyncio, os, signal, sys
from pathlib import Path
from kea.serve.config import parse_config
from kea.serve.server import bind, serve_socket

folder = Path(sys.argv[1])
config = parse_config(
    {"route": [{"name": "local", "match": "*", "directory": str(folder)}],
     "server": {"cache-dir": str(folder.parent / "cache")}},
    folder.parent / "kea-serve.toml",
    os.environ,
)
sock = bind("127.0.0.12", 0)

async def main():
    asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGTERM)
    await serve_socket(config, sock, os.environ)
    # the loop still runs (asyncio.run has not closed it yet)
    print("wakeup fd:", signal.set_wakeup_fd(-1), flush=True)

asyncio.run(main())
"""


def test_a_stopped_worker_lets_go_of_the_signal_wakeup_fd_before_its_loop_closes(
    tmp_path: Path,
) -> None:
    # asyncio closes a loop's wakeup fd before it lets go of the signals: a signal in between
    # (the SIGCHLD of the other workers, which stop at the same moment) was written to a closed
    # fd, and Python printed a traceback ("Exception ignored when trying to write to the signal
    # wakeup fd"), now and then, at the end of test_faults' three-worker test. serve_socket
    # now lets go of it once the server has stopped, with its loop still running.
    folder = tmp_path / "packages"
    folder.mkdir()
    done = subprocess.run(
        [PY, "-c", _STOP_AND_REPORT, str(folder)],
        env=clean_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wakeup fd: -1"
    assert "Traceback" not in done.stderr
