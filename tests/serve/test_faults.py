"""Upstreams that misbehave, and the cache under stress: what clients get, what gets cached."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.servers.web import ServerLoop
from tests.e2e.wheels import build_wheel
from tests.serve.harness import Installer, KeaServe, http_get
from tests.serve.upstream import FakeUpstream


def config(upstream: str, *, extra: str = "", timeout: float = 1) -> str:
    return f"""
[server]
cache-dir = "cache"
upstream-retries = 0
upstream-timeout = {timeout}

[[upstream]]
name = "up"
url = "{upstream}/simple"

[[route]]
match = "*"
upstream = "up"
{extra}
"""


@dataclass
class Setup:
    serve: KeaServe
    up: FakeUpstream
    root: Path

    def cached_files(self) -> list[Path]:
        files = self.root / "serve" / "cache" / "files-v2"
        return [p for p in files.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]

    def temp_files(self) -> list[Path]:
        return list((self.root / "serve" / "cache" / "files-v2").glob(".tmp-*"))


@pytest.fixture
def setup(tmp_path: Path, loop: ServerLoop) -> Iterator[Setup]:
    up = FakeUpstream(loop, "127.0.0.8")
    serve = KeaServe(tmp_path / "serve", config(up.url), ip="127.0.0.9")
    yield Setup(serve, up, tmp_path)
    serve.stop()
    up.stop()


def wheel(tmp_path: Path, name: str, size: int = 0) -> Path:
    text = '__version__ = "1.0"\n' + "#" * size + "\n"
    return build_wheel(tmp_path / "wheels", name, "1.0", module_text=text)


def file_url(setup: Setup, w: Path, project: str) -> str:
    return f"{setup.serve.url}/files/up/{project}/{w.name}"


def test_malformed_upstream_page_is_a_clear_502(setup: Setup) -> None:
    setup.up.files["x"] = b""
    setup.up.faults["broken-pkg"] = "malformed"
    status, _, body = http_get(setup.serve.index + "broken-pkg/")
    assert status == 502
    text = body.decode()
    assert text.startswith("upstream up sent a malformed page for broken-pkg")
    assert text.count("\n") == 1 and "Traceback" not in setup.serve.text()


def test_truncated_file_is_not_cached_and_refetched(setup: Setup, tmp_path: Path) -> None:
    w = wheel(tmp_path, "trunc-pkg", 200_000)
    setup.up.add(w)
    setup.up.faults[w.name] = "truncate"
    assert http_get(setup.serve.index + "trunc-pkg/")[0] == 200
    with pytest.raises(Exception) as info:  # the client sees a broken transfer
        http_get(file_url(setup, w, "trunc-pkg"))
    assert "IncompleteRead" in repr(info.value) or isinstance(info.value, OSError)
    assert setup.cached_files() == [] and setup.temp_files() == []
    # the next request fetches again, gets the whole file, and it is cached
    del setup.up.faults[w.name]
    status, _, data = http_get(file_url(setup, w, "trunc-pkg"))
    assert status == 200 and data == w.read_bytes()
    assert len(setup.up.requests(f"/packages/{w.name}")) == 2
    digest = hashlib.sha256(data).hexdigest()
    assert [p.name for p in setup.cached_files()] == [digest]
    access = setup.serve.access()
    assert [a.status for a in access if a.path.startswith("/files/")] == [502, 200]


def test_hash_mismatch_is_never_cached(setup: Setup, tmp_path: Path) -> None:
    w = wheel(tmp_path, "liar-pkg", 1000)
    setup.up.add(w)
    setup.up.faults[w.name] = "badhash"
    assert http_get(setup.serve.index + "liar-pkg/")[0] == 200
    with pytest.raises(Exception):  # noqa: B017 - the connection is aborted: any read error
        status, _, data = http_get(file_url(setup, w, "liar-pkg"))
        assert status != 200 or len(data) < len(w.read_bytes())
    assert setup.cached_files() == []
    assert "does not match its sha256" in setup.serve.text()


def test_corrupt_cache_entry_is_detected_and_refetched(setup: Setup, tmp_path: Path) -> None:
    w = wheel(tmp_path, "rot-pkg", 5000)
    setup.up.add(w)
    url = file_url(setup, w, "rot-pkg")
    http_get(setup.serve.index + "rot-pkg/")
    assert http_get(url)[2] == w.read_bytes()
    (cached,) = setup.cached_files()
    cached.write_bytes(b"bit rot" + cached.read_bytes()[7:])
    status, _, data = http_get(url)
    assert status == 200, (data, setup.serve.text())
    assert data == w.read_bytes()
    assert len(setup.up.requests(f"/packages/{w.name}")) == 2
    assert cached.read_bytes() == w.read_bytes()


def test_single_flight_for_concurrent_requests(setup: Setup, tmp_path: Path) -> None:
    w = wheel(tmp_path, "hot-pkg", 2_000_000)
    setup.up.add(w)
    setup.up.faults[w.name] = "slow"
    setup.up.slow_seconds = 0.5
    http_get(setup.serve.index + "hot-pkg/")
    url = file_url(setup, w, "hot-pkg")
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: http_get(url, timeout=30), range(12)))
    assert all(r[0] == 200 and r[2] == w.read_bytes() for r in results)
    assert len(setup.up.requests(f"/packages/{w.name}")) == 1


def test_single_flight_across_workers(tmp_path: Path, loop: ServerLoop) -> None:
    up = FakeUpstream(loop, "127.0.0.8")
    w = wheel(tmp_path, "shared-pkg", 1_000_000)
    up.add(w)
    up.faults[w.name] = "slow"
    up.slow_seconds = 0.7
    serve = KeaServe(
        tmp_path / "serve", config(up.url, timeout=5), ip="127.0.0.9", args=["--workers", "3"]
    )
    try:
        url = f"{serve.url}/files/up/shared-pkg/{w.name}"
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda _: http_get(url, timeout=30), range(16)))
        assert all(r[0] == 200 and r[2] == w.read_bytes() for r in results)
        assert len(up.requests(f"/packages/{w.name}")) == 1, up.requests("/packages/")
    finally:
        serve.stop()
        up.stop()


def test_timeouts_are_504_and_down_is_502(setup: Setup, tmp_path: Path) -> None:
    setup.up.add(wheel(tmp_path, "slow-pkg"))
    setup.up.faults["slow-pkg"] = "slow"
    setup.up.slow_seconds = 3
    status, _, body = http_get(setup.serve.index + "slow-pkg/")
    assert status == 504 and body == b"upstream up timed out\n"
    setup.up.stop()
    status, _, body = http_get(setup.serve.index + "other-pkg/")
    assert status == 502 and body.decode().startswith("upstream up unreachable: cannot connect")


def test_page_cache_revalidates_with_etag(tmp_path: Path, loop: ServerLoop) -> None:
    up = FakeUpstream(loop, "127.0.0.8")
    up.cache_control = "max-age=0"
    up.add(wheel(tmp_path, "fresh-pkg"))
    serve = KeaServe(tmp_path / "serve", config(up.url), ip="127.0.0.9")
    try:
        first = http_get(serve.index + "fresh-pkg/")
        second = http_get(serve.index + "fresh-pkg/", {"If-None-Match": first[1]["ETag"]})
        assert first[0] == 200 and second[0] == 304
        statuses = [s.status for s in up.requests("/simple/fresh-pkg/")]
        assert statuses == [200, 304]  # max-age=0: revalidated with If-None-Match
    finally:
        serve.stop()
        up.stop()
    # honoured freshness: a page with max-age is not asked for again
    up = FakeUpstream(loop, "127.0.0.8")
    up.cache_control = "max-age=300"
    up.add(wheel(tmp_path, "fresh-pkg"))
    serve = KeaServe(tmp_path / "serve2", config(up.url), ip="127.0.0.9")
    try:
        for _ in range(3):
            assert http_get(serve.index + "fresh-pkg/")[0] == 200
        assert len(up.requests("/simple/fresh-pkg/")) == 1
    finally:
        serve.stop()
        up.stop()


def test_workers_share_one_cache_and_shut_down_cleanly(tmp_path: Path, loop: ServerLoop) -> None:
    up = FakeUpstream(loop, "127.0.0.8")
    wheels = [wheel(tmp_path / str(i), f"multi-pkg{i}", 50_000) for i in range(4)]
    for w in wheels:
        up.add(w)
    serve = KeaServe(tmp_path / "serve", config(up.url), ip="127.0.0.9", args=["--workers", "3"])
    try:

        def fetch(i: int) -> bytes:
            name = f"multi-pkg{i % 4}"
            http_get(f"{serve.index}{name}/")
            return http_get(f"{serve.url}/files/up/{name}/{wheels[i % 4].name}")[2]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            got = list(pool.map(fetch, range(48)))
        assert all(g == wheels[i % 4].read_bytes() for i, g in enumerate(got))
        files = tmp_path / "serve" / "cache" / "files-v2"
        cached = sorted(p.name for p in files.rglob("*") if p.is_file())
        assert cached == sorted(hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels)
        installer = Installer(tmp_path / "client")
        result, venv = installer.install("kea", serve.index, "multi-pkg2")
        assert result.returncode == 0, result.output
        assert installer.version_of(venv, "multi_pkg2") == "1.0"
    finally:
        assert serve.stop() == 0
        up.stop()
    assert "Traceback" not in serve.text()


@pytest.mark.parametrize("workers", [1, 3])
def test_graceful_shutdown_finishes_requests_in_flight(
    tmp_path: Path, loop: ServerLoop, workers: int
) -> None:
    up = FakeUpstream(loop, "127.0.0.8")
    w = wheel(tmp_path, "drain-pkg", 100_000)
    up.add(w)
    up.faults[w.name] = "slow"
    up.slow_seconds = 0.8
    serve = KeaServe(
        tmp_path / "serve",
        config(up.url, timeout=5),
        ip="127.0.0.9",
        args=["--workers", str(workers)],
    )
    try:
        assert http_get(serve.index + "drain-pkg/")[0] == 200
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(http_get, f"{serve.url}/files/up/drain-pkg/{w.name}")
            while not up.requests(f"/packages/{w.name}"):
                time.sleep(0.01)
            os.kill(serve.proc.pid, signal.SIGTERM)
            status, _, data = pending.result(timeout=20)
        assert status == 200 and data == w.read_bytes()
        assert serve.proc.wait(15) == 0
        assert http_get(serve.url + "/health")[0] == 0  # no longer listening
    finally:
        serve.stop()
        up.stop()


def test_access_log_is_redacted(setup: Setup) -> None:
    secret = "sig-" + "f" * 24
    http_get(f"{setup.serve.index}any-pkg/?token={secret}&X-Amz-Signature={secret}")
    http_get(setup.serve.index + "any-pkg/", {"Authorization": "Bearer " + secret})
    text = setup.serve.text()
    assert "token=****" in text and secret not in text


def test_upstream_pep658_metadata_is_passed_through_and_cached(
    setup: Setup, tmp_path: Path
) -> None:
    setup.up.metadata = True
    w = wheel(tmp_path, "meta-pkg")
    setup.up.add(w)
    status, _, body = http_get(
        setup.serve.index + "meta-pkg/", {"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert status == 200
    (entry,) = json.loads(body)["files"]
    assert entry["url"] == f"/files/up/meta-pkg/{w.name}"
    want = entry["core-metadata"]["sha256"]
    for _ in range(2):
        status, _, meta = http_get(setup.serve.url + entry["url"] + ".metadata")
        assert status == 200 and hashlib.sha256(meta).hexdigest() == want
        assert b"Name: meta-pkg" in meta
    # one upstream request, for the metadata only: the wheel itself was never fetched
    assert [s.path for s in setup.up.requests("/packages/")] == [f"/packages/{w.name}.metadata"]


def test_file_gone_upstream_is_404_and_nothing_cached(setup: Setup, tmp_path: Path) -> None:
    w = wheel(tmp_path, "gone-pkg")
    setup.up.add(w)
    assert http_get(setup.serve.index + "gone-pkg/")[0] == 200
    del setup.up.files[w.name]
    status, _, body = http_get(file_url(setup, w, "gone-pkg"))
    assert status == 404 and body == f"upstream up answered 404 for {w.name}\n".encode()
    assert setup.cached_files() == [] and setup.temp_files() == []
