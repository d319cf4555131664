"""Counters for ``/metrics`` in the Prometheus text format (per worker process)."""

from __future__ import annotations

from collections import defaultdict


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

    def render(self) -> str:
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


__all__ = ["Metrics"]
