"""Counters for ``/metrics`` in the Prometheus text format, for the whole server.

Each worker process counts what it answers (``Metrics``). With several workers the kernel hands a
scrape to any one of them, so each also publishes its counters to a ``Board``: a directory of the
server's own with one snapshot file per worker slot, written whole (``kea.atomic``) at most once a
``PUBLISH_EVERY`` seconds and when the worker stops. The worker that answers a scrape adds the
others' snapshots to its own live counters. A scrape therefore sees every worker, the others up to
``PUBLISH_EVERY`` late, and a counter never goes down from one scrape to the next, whichever worker
answers: a worker started in place of one that died takes over its slot's snapshot and counts on
from there. Before, each worker answered with its own counters only, so with 2 workers every
series jumped between two unrelated values from one scrape to the next.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kea.serve.store import read_json, write_atomic

log = logging.getLogger("kea.serve")

PUBLISH_EVERY = 1.0  # seconds
_COUNTERS = ("upstream_seconds", "upstream_count", "upstream_errors", "cache_hits", "cache_misses")


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.upstream_seconds: dict[str, float] = defaultdict(float)
        self.upstream_count: dict[str, int] = defaultdict(int)
        self.upstream_errors: dict[str, int] = defaultdict(int)
        self.cache_hits: dict[str, int] = defaultdict(int)
        self.cache_misses: dict[str, int] = defaultdict(int)
        self.cache_bytes = 0
        self.upstream_bytes = 0

    def request(self, route: str, status: int) -> None:
        self.requests[(route, status)] += 1

    def upstream(self, name: str, seconds: float, *, error: bool = False) -> None:
        self.upstream_seconds[name] += seconds
        self.upstream_count[name] += 1
        if error:
            self.upstream_errors[name] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain JSON data (``add`` reads it back)."""
        snap: dict[str, Any] = {k: dict(getattr(self, k)) for k in _COUNTERS}
        snap["requests"] = [[r, s, n] for (r, s), n in sorted(self.requests.items())]
        snap["cache_bytes"] = self.cache_bytes
        snap["upstream_bytes"] = self.upstream_bytes
        return snap

    def add(self, snap: Mapping[str, Any]) -> None:
        """Add the counters of ``snap`` (a ``snapshot``) to these."""
        for route, status, n in snap["requests"]:
            self.requests[(str(route), int(status))] += int(n)
        for key in _COUNTERS:
            mine = getattr(self, key)
            for name, value in snap[key].items():
                mine[str(name)] += value
        self.cache_bytes += int(snap["cache_bytes"])
        self.upstream_bytes += int(snap["upstream_bytes"])

    @classmethod
    def read(cls, snap: Mapping[str, Any]) -> Metrics | None:
        """The counters of a snapshot; None when it does not read as one."""
        metrics = cls()
        try:
            metrics.add(snap)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return metrics

    def render(self, others: Iterable[Mapping[str, Any]] = ()) -> str:
        """The Prometheus text of these counters plus those of ``others`` (snapshots); a
        snapshot that does not read as one is left out whole."""
        others = list(others)
        if not others:
            return self._text()
        total = Metrics()
        total.add(self.snapshot())
        for snap in others:
            part = Metrics.read(snap)
            if part is None:
                log.debug("a worker's metrics snapshot was not readable; left out")
                continue
            total.add(part.snapshot())
        return total._text()

    def _text(self) -> str:
        lines = [
            "# HELP kea_serve_requests_total Requests answered, by route and status.",
            "# TYPE kea_serve_requests_total counter",
        ]
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'kea_serve_requests_total{{route="{_esc(route)}",status="{status}"}} {n}')
        lines += [
            "# HELP kea_serve_upstream_latency_seconds Time spent on upstream requests.",
            "# TYPE kea_serve_upstream_latency_seconds summary",
        ]
        for name in sorted(self.upstream_count):
            label = f'upstream="{_esc(name)}"'
            lines.append(
                f"kea_serve_upstream_latency_seconds_sum{{{label}}}"
                f" {self.upstream_seconds[name]:.6f}"
            )
            lines.append(
                f"kea_serve_upstream_latency_seconds_count{{{label}}} {self.upstream_count[name]}"
            )
        lines += [
            "# HELP kea_serve_upstream_errors_total Upstream requests that failed.",
            "# TYPE kea_serve_upstream_errors_total counter",
        ]
        for name, n in sorted(self.upstream_errors.items()):
            lines.append(f'kea_serve_upstream_errors_total{{upstream="{_esc(name)}"}} {n}')
        lines += [
            "# HELP kea_serve_cache_hits_total Answers served from the cache, by kind.",
            "# TYPE kea_serve_cache_hits_total counter",
        ]
        for kind, n in sorted(self.cache_hits.items()):
            lines.append(f'kea_serve_cache_hits_total{{kind="{kind}"}} {n}')
        lines += [
            "# HELP kea_serve_cache_misses_total Answers that needed the upstream, by kind.",
            "# TYPE kea_serve_cache_misses_total counter",
        ]
        for kind, n in sorted(self.cache_misses.items()):
            lines.append(f'kea_serve_cache_misses_total{{kind="{kind}"}} {n}')
        lines += [
            "# HELP kea_serve_cache_bytes_total File bytes served from the cache.",
            "# TYPE kea_serve_cache_bytes_total counter",
            f"kea_serve_cache_bytes_total {self.cache_bytes}",
            "# HELP kea_serve_upstream_bytes_total File bytes fetched from upstreams.",
            "# TYPE kea_serve_upstream_bytes_total counter",
            f"kea_serve_upstream_bytes_total {self.upstream_bytes}",
        ]
        return "\n".join(lines) + "\n"


class Board:
    """The snapshots of a server's workers: ``root`` holds ``<slot>.json`` for each worker that
    has published; this worker is ``slot``."""

    def __init__(self, root: Path, slot: int) -> None:
        self.root = root
        self.slot = slot
        self._own = root / f"{slot}.json"
        self._published = b""

    @staticmethod
    def create() -> Path:
        """A new private directory for one server's snapshots (the caller removes it), named
        after this process. The directories of servers that ended without removing theirs (a
        SIGKILL) are removed first: their process is gone."""
        import tempfile

        _sweep(Path(tempfile.gettempdir()))
        return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))

    def publish(self, metrics: Metrics) -> None:
        """Write this worker's snapshot, unless it is the one written last."""
        data = json.dumps(metrics.snapshot(), separators=(",", ":")).encode()
        if data == self._published:
            return
        try:
            write_atomic(self._own, data)
        except OSError as e:  # the next publication tries again
            log.warning("cannot publish this worker's metrics: %s", e.strerror or e)
            return
        self._published = data

    def restore(self) -> dict[str, Any] | None:
        """The snapshot this slot's previous worker published last, if any."""
        return self._read(self._own)

    def others(self) -> list[dict[str, Any]]:
        """The last snapshots of the other workers."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return [
            snap
            for name in names
            if name.endswith(".json") and name != self._own.name
            for snap in [self._read(self.root / name)]
            if snap is not None
        ]

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        snap = read_json(path)
        return snap if isinstance(snap, dict) else None


_PREFIX = "kea-serve-metrics-"


def _sweep(tmp: Path) -> None:
    """Remove the snapshot directories in ``tmp`` whose server process no longer runs."""
    import shutil

    try:
        names = [n for n in os.listdir(tmp) if n.startswith(_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(_PREFIX) :].partition("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(tmp / name, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it runs
        return True
    return True


__all__ = ["PUBLISH_EVERY", "Board", "Metrics"]
