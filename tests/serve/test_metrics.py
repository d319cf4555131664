"""The counters behind ``/metrics``: a worker's snapshot read back, several workers' summed, and
the board they are published on (``kea.serve.metrics``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kea.serve.metrics import Board, Metrics


def _counted(requests: int, hits: int, seconds: float) -> Metrics:
    m = Metrics()
    for _ in range(requests):
        m.request("local", 200)
    m.request("pypi", 404)
    m.upstream("corp", seconds, error=True)
    m.cache_hits["file"] += hits
    m.cache_bytes += 1000 * hits
    m.upstream_bytes += 7
    return m


def _local_200(snap: dict[str, object] | None) -> int:
    """How many 200s on the route "local" ``snap`` holds (it must read as a snapshot)."""
    assert snap is not None
    metrics = Metrics.read(snap)
    assert metrics is not None
    return metrics.requests[("local", 200)]


def test_a_snapshot_reads_back_as_the_same_counters() -> None:
    m = _counted(3, 2, 0.25)
    again = Metrics.read(m.snapshot())
    assert again is not None
    assert again.render() == m.render()
    assert again.requests == {("local", 200): 3, ("pypi", 404): 1}


def test_render_sums_the_other_workers() -> None:
    mine, other = _counted(3, 2, 0.25), _counted(4, 1, 0.5)
    text = mine.render([other.snapshot()])
    assert 'kea_serve_requests_total{route="local",status="200"} 7' in text
    assert 'kea_serve_requests_total{route="pypi",status="404"} 2' in text
    assert 'kea_serve_upstream_latency_seconds_sum{upstream="corp"} 0.750000' in text
    assert 'kea_serve_upstream_latency_seconds_count{upstream="corp"} 2' in text
    assert 'kea_serve_upstream_errors_total{upstream="corp"} 2' in text
    assert 'kea_serve_cache_hits_total{kind="file"} 3' in text
    assert "kea_serve_cache_bytes_total 3000" in text
    assert "kea_serve_upstream_bytes_total 14" in text
    assert mine.requests[("local", 200)] == 3  # the worker's own counters are not changed


def test_a_snapshot_that_does_not_read_is_left_out_whole() -> None:
    mine = _counted(3, 0, 0.0)
    half = _counted(5, 0, 0.0).snapshot()
    half["cache_hits"] = {"file": "many"}  # read after the requests: none of them may count
    text = mine.render([half, {"requests": "no"}, _counted(1, 0, 0.0).snapshot()])
    assert 'kea_serve_requests_total{route="local",status="200"} 4' in text
    assert Metrics.read({"requests": [["a", 200, 1]]}) is None


def test_board_publishes_each_slot_and_restores_its_own(tmp_path: Path) -> None:
    first, second = Board(tmp_path, 0), Board(tmp_path, 1)
    assert first.others() == [] and second.restore() is None
    second.publish(_counted(2, 0, 0.0))
    first.publish(_counted(5, 0, 0.0))
    (tmp_path / "2.json").write_bytes(b"{not json")  # a torn file is skipped, not fatal
    (tmp_path / ".tmp-3.json.abcd").write_bytes(b"{}")  # a write in progress is not a slot
    [seen] = first.others()
    assert _local_200(seen) == 2
    # the worker that takes slot 1 over counts on from what its predecessor published
    assert _local_200(Board(tmp_path, 1).restore()) == 2


def test_board_writes_only_what_changed(tmp_path: Path) -> None:
    board = Board(tmp_path, 0)
    m = _counted(1, 0, 0.0)
    board.publish(m)
    path = tmp_path / "0.json"
    first = path.stat().st_ino
    board.publish(m)
    assert path.stat().st_ino == first  # unchanged: not written again
    m.request("local", 200)
    board.publish(m)
    assert path.stat().st_ino != first
    assert _local_200(board.restore()) == 2


def test_create_removes_the_directories_of_servers_that_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server killed before it could remove its snapshot directory leaves it behind; the next
    server removes it, and leaves those of servers still running (and anything not its own)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = tmp_path / f"kea-serve-metrics-{ended.pid}-abcd"
    stale.mkdir()
    (stale / "1.json").write_bytes(b"{}")
    running = tmp_path / f"kea-serve-metrics-{os.getpid()}-efgh"
    running.mkdir()
    unrelated = tmp_path / "kea-serve-metrics-notes"
    unrelated.mkdir()
    new = Board.create()
    assert not stale.exists()
    assert running.is_dir() and unrelated.is_dir()
    assert new.parent == tmp_path and new.name.startswith(f"kea-serve-metrics-{os.getpid()}-")
