"""kea serve vs its peers, side by side in one run, on loopback.

Scenarios (the same data for everyone: PROJECTS projects x VERSIONS wheels of FILE_SIZE bytes):

- ``local``: a folder of wheels served as an index. kea serve (directory route) vs pypiserver.
- ``redirect``: every project page answered with a 302 to an upstream. kea serve (redirect
  route) vs simpleindex. Only the 302s are measured (the load generator does not follow them).
- ``proxy``: a caching proxy in front of an upstream (pypiserver). kea serve (proxy route) vs
  proxpi. Caches are warmed by one pass over every URL first, as for every tool.

Workloads: ``pages`` (GET every project page, round robin) and ``files`` (GET every file),
with CONCURRENCY connections for DURATION seconds (the generator stops by itself), from
LOADGEN_PROCS processes. Reported: requests/s, MB/s, p50/p99 latency, errors, and the peak RSS
and PSS of the server's whole process tree (sampled every 50 ms), with the machine's load.

Run through ``bench/serve/run`` (it makes the tools venv); ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import urljoin
from urllib.request import urlopen

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = REPO / "bench" / "work" / "serve"
RESULTS = HERE / "results"
# What pip sends for project pages: every server answers in the format it prefers.
PAGE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)


# -- data ----------------------------------------------------------------------------------------


def make_wheel(out: Path, name: str, version: str, size: int, rng: random.Random) -> Path:
    import base64
    import hashlib

    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist}/blob.bin": rng.randbytes(size),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: kea-bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for arc, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for arc, data in files.items():
            zf.writestr(arc, data)
    return path


def make_data(root: Path, projects: int, versions: int, size: int) -> list[str]:
    packages = root / "packages"
    marker = root / f"made-{projects}-{versions}-{size}"
    names = [f"bench-pkg{i:03d}" for i in range(projects)]
    if marker.exists():
        return names
    if packages.exists():
        for p in packages.iterdir():
            p.unlink()
    packages.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    for name in names:
        for v in range(versions):
            make_wheel(packages, name, f"1.{v}", size, rng)
    marker.touch()
    return names


# -- processes -----------------------------------------------------------------------------------


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(url, timeout=5):
                return
        except Exception as e:
            if getattr(e, "code", None):  # any HTTP answer means it is up
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up: {e}") from None
            time.sleep(0.1)


class Proc:
    def __init__(self, label: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.label = label
        log = (WORK / "logs" / f"{label}.log").open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tree_pids(self) -> set[int]:
        """The process and all its descendants."""
        pids = {self.proc.pid}
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        todo = [self.proc.pid]
        while todo:
            for c in children.get(todo.pop(), []):
                if c not in pids:
                    pids.add(c)
                    todo.append(c)
        return pids

    def tree_memory(self) -> tuple[int, int]:
        """(RSS, PSS) in bytes, summed over the process tree. RSS counts a page shared by
        several processes (forked workers, shared libraries) once per process; PSS splits it
        between them, so the PSS sum is the memory the tree really holds."""
        rss = pss = 0
        for pid in self.tree_pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
            except OSError:
                pass
        return rss, pss

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


BIN = Path(sys.executable).parent


def start_pypiserver(label: str, packages: Path, port: int, workers: int, ip: str) -> Proc:
    wsgi = WORK / f"{label}_wsgi.py"
    wsgi.write_text(
        "import pypiserver\n"
        f"app = pypiserver.app(roots=[{str(packages)!r}], authenticate=[], password_file='.')\n"
    )
    argv = [
        str(BIN / "gunicorn"),
        "--bind",
        f"{ip}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--chdir",
        str(WORK),
        "--log-level",
        "warning",
        f"{wsgi.stem}:app",
    ]
    p = Proc(label, argv, tool_env(), WORK)
    wait_http(f"http://{ip}:{port}/simple/")
    return p


def start_kea(label: str, config: str, port: int, workers: int) -> Proc:
    cfg = WORK / f"{label}.toml"
    cfg.write_text(config)
    argv = [
        str(BIN / "kea"),
        "serve",
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "-q",
    ]
    p = Proc(label, argv, tool_env(), WORK)
    wait_http(f"http://127.0.0.1:{port}/health")
    return p


def start_simpleindex(upstream: str, port: int) -> Proc:
    cfg = WORK / "simpleindex.toml"
    cfg.write_text(
        f'[routes."{{project}}"]\nsource = "http"\nto = "{upstream}/simple/{{project}}/"\n\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\nlog_level = "warning"\n'
    )
    p = Proc("simpleindex", [str(BIN / "simpleindex"), str(cfg)], tool_env(), WORK)
    wait_http(f"http://127.0.0.1:{port}/bench-pkg000/")
    return p


def start_proxpi(upstream: str, port: int, workers: int) -> Proc:
    env = tool_env()
    cache = WORK / "proxpi-cache"
    env.update(
        PROXPI_INDEX_URL=f"{upstream}/simple/",
        PROXPI_CACHE_DIR=str(cache),
        PROXPI_DOWNLOAD_TIMEOUT="60",
        PROXPI_LOGGING_LEVEL="WARNING",
    )
    argv = [
        str(BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--log-level",
        "warning",
        "proxpi.server:app",
    ]
    p = Proc("proxpi", argv, env, WORK)
    wait_http(f"http://127.0.0.1:{port}/index/")
    return p


# -- load ------------------------------------------------------------------------------------


async def _load(urls: list[str], concurrency: int, duration: float) -> dict[str, object]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    nbytes = 0
    deadline = time.monotonic() + duration
    counter = iter(range(10**12))
    headers = {"Accept": PAGE_ACCEPT}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors, nbytes
        while time.monotonic() < deadline:
            url = urls[next(counter) % len(urls)]
            start = time.perf_counter()
            try:
                async with session.get(url, allow_redirects=False, headers=headers) as r:
                    body = await r.read()
                    ok = r.status in (200, 302)
            except Exception:
                ok, body = False, b""
            if ok:
                latencies.append(time.perf_counter() - start)
                nbytes += len(body)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False, auto_decompress=False
    ) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors, "bytes": nbytes}


def loadgen_main(args: argparse.Namespace) -> None:
    urls = json.loads(Path(args.urls).read_text())
    result = asyncio.run(_load(urls, args.concurrency, args.duration))
    Path(args.out).write_text(json.dumps(result))


def run_load(
    server: Proc, urls: list[str], concurrency: int, duration: float, procs: int
) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(dir=WORK))
    (tmp / "urls.json").write_text(json.dumps(urls))
    peak = peak_pss = 0
    stop = threading.Event()
    load_before = os.getloadavg()[0]

    def sample() -> None:
        nonlocal peak, peak_pss
        while not stop.is_set():
            rss, pss = server.tree_memory()
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    per = max(1, concurrency // procs)
    gens = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--loadgen",
                "--urls",
                str(tmp / "urls.json"),
                "--concurrency",
                str(per),
                "--duration",
                str(duration),
                "--out",
                str(tmp / f"out{i}.json"),
            ]
        )
        for i in range(procs)
    ]
    for g in gens:
        g.wait(duration + 120)
    stop.set()
    sampler.join()
    lat: list[float] = []
    errors = 0
    nbytes = 0
    for i in range(procs):
        data = json.loads((tmp / f"out{i}.json").read_text())
        lat += data["latencies"]
        errors += data["errors"]
        nbytes += data["bytes"]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    lat.sort()
    n = len(lat)
    return {
        "rps": n / duration,
        "mbps": nbytes / duration / 1e6,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))] if lat else float("nan"),
        "errors": errors,
        "rss_mb": peak / 1e6,
        "pss_mb": peak_pss / 1e6,
        "procs": len(server.tree_pids()),
        # 1-minute load average of the machine before / after the cell (servers, load
        # generators and whatever else runs on the machine)
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def discover(page_urls: list[str]) -> list[str]:
    files = []
    from urllib.request import Request

    for url in page_urls:
        with urlopen(Request(url, headers={"Accept": "text/html"}), timeout=60) as r:
            body = r.read().decode()
        for href in re.findall(r'href="([^"]+)"', body):
            files.append(urljoin(url, href.split("#", 1)[0]))
    return files


def warm(urls: list[str]) -> None:
    from urllib.request import Request

    for url in urls:
        try:
            with urlopen(Request(url, headers={"Accept": PAGE_ACCEPT}), timeout=120) as r:
                r.read()
        except Exception as e:
            if getattr(e, "code", None) != 302:
                raise


# -- the run -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--urls", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--loadgen-procs", type=int, default=2)
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--versions", type=int, default=3)
    ap.add_argument("--file-size", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2, help="for kea serve and gunicorn peers")
    ap.add_argument("--scenarios", default="local,redirect,proxy")
    ap.add_argument("--name", default=None, help="results file stem")
    args = ap.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    names = make_data(WORK / "data", args.projects, args.versions, args.file_size)
    packages = WORK / "data" / "packages"
    rows: list[dict[str, object]] = []
    started: list[Proc] = []

    def measure(scenario: str, tool: str, proc: Proc, pages: list[str], files: bool) -> None:
        warm(pages)
        workloads = [("pages", pages)]
        if files:
            file_urls = discover(pages)
            warm(file_urls)
            workloads.append(("files", file_urls))
        for workload, urls in workloads:
            print(f"  {scenario:8} {workload:5} {tool:12}", end=" ", flush=True)
            r = run_load(proc, urls, args.concurrency, args.duration, args.loadgen_procs)
            print(
                f"{r['rps']:9.1f} req/s {r['mbps']:8.1f} MB/s p50 {r['p50_ms']:6.1f} ms"
                f" p99 {r['p99_ms']:7.1f} ms err {r['errors']} rss {r['rss_mb']:.0f} MB"
                f" pss {r['pss_mb']:.0f} MB ({r['procs']} procs) load {r['load']}"
            )
            rows.append({"scenario": scenario, "workload": workload, "tool": tool, **r})

    try:
        scenarios = args.scenarios.split(",")
        upstream = None
        if {"redirect", "proxy"} & set(scenarios):
            up_port = free_port("127.0.0.2")
            started.append(start_pypiserver("upstream", packages, up_port, 2, "127.0.0.2"))
            upstream = f"http://127.0.0.2:{up_port}"
        w = args.workers
        if "local" in scenarios:
            port = free_port()
            p = start_kea(
                "kea-local",
                f'[server]\ncache-dir = "{WORK}/kea-cache-local"\n'
                f'[[route]]\nmatch = "*"\ndirectory = "{packages}"\n',
                port,
                w,
            )
            measure(
                "local",
                "kea serve",
                p,
                [f"http://127.0.0.1:{port}/simple/{n}/" for n in names],
                True,
            )
            p.stop()
            port = free_port()
            p = start_pypiserver("pypiserver", packages, port, w, "127.0.0.1")
            measure(
                "local",
                "pypiserver",
                p,
                [f"http://127.0.0.1:{port}/simple/{n}/" for n in names],
                True,
            )
            p.stop()
        if "redirect" in scenarios:
            port = free_port()
            p = start_kea(
                "kea-redirect",
                f'[server]\ncache-dir = "{WORK}/kea-cache-redirect"\n'
                f'[[upstream]]\nname = "up"\nurl = "{upstream}/simple/"\n'
                '[[route]]\nmatch = "*"\nupstream = "up"\nmode = "redirect"\n',
                port,
                1,
            )
            measure(
                "redirect",
                "kea serve",
                p,
                [f"http://127.0.0.1:{port}/simple/{n}/" for n in names],
                False,
            )
            p.stop()
            port = free_port()
            p = start_simpleindex(str(upstream), port)
            measure(
                "redirect",
                "simpleindex",
                p,
                [f"http://127.0.0.1:{port}/{n}/" for n in names],
                False,
            )
            p.stop()
        if "proxy" in scenarios:
            port = free_port()
            cache = WORK / "kea-cache-proxy"
            if cache.exists():
                import shutil

                shutil.rmtree(cache)
            p = start_kea(
                "kea-proxy",
                f'[server]\ncache-dir = "{cache}"\n'
                f'[[upstream]]\nname = "up"\nurl = "{upstream}/simple/"\n'
                '[[route]]\nmatch = "*"\nupstream = "up"\n',
                port,
                w,
            )
            measure(
                "proxy",
                "kea serve",
                p,
                [f"http://127.0.0.1:{port}/simple/{n}/" for n in names],
                True,
            )
            p.stop()
            port = free_port()
            p = start_proxpi(str(upstream), port, w)
            measure(
                "proxy", "proxpi", p, [f"http://127.0.0.1:{port}/index/{n}/" for n in names], True
            )
            p.stop()
    finally:
        for p in started:
            p.stop()
    write_results(rows, args)


def _pct(a: float, b: float) -> str:
    if not b:
        return "n/a"
    return f"{(a / b - 1) * 100:+.0f}%"


def write_results(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.name or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d-%H%M")
    lines = [
        f"# kea serve vs peers ({stem})",
        "",
        f"{args.projects} projects x {args.versions} wheels of {args.file_size} bytes;"
        f" {args.concurrency} concurrent connections from {args.loadgen_procs} load processes"
        f" for {args.duration:g} s per cell; {args.workers} workers for kea serve and the"
        " gunicorn peers (simpleindex and kea serve's redirect cell: 1 process);"
        f" {os.cpu_count()} CPUs shared by servers and load generators. Caches warmed first.",
        "",
        "Memory is sampled every 50 ms over the server's whole process tree (master/supervisor"
        " and workers, the same way for every tool): peak RSS is the sum of the processes' RSS"
        " (a page shared by forked workers counts once per process), peak PSS the sum of their"
        " proportional set sizes (a shared page split between its processes: what the tree"
        " really holds). `procs` is the number of processes measured; `load` the machine's"
        " 1-minute load average before / after the cell.",
        "",
        "| scenario | workload | tool | req/s | MB/s | p50 ms | p99 ms | errors"
        " | peak RSS MB | peak PSS MB | procs | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['workload']} | {r['tool']} | {r['rps']:.1f} |"
            f" {r['mbps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
            f" {r['rss_mb']:.0f} | {r['pss_mb']:.0f} | {r['procs']} |"
            f" {r['load'][0]:.1f} / {r['load'][1]:.1f} |"  # type: ignore[index]
        )
    lines += ["", "## kea serve against each peer", ""]
    by = {(r["scenario"], r["workload"], r["tool"]): r for r in rows}
    for (scenario, workload, tool), r in by.items():
        if tool == "kea serve":
            continue
        k = by.get((scenario, workload, "kea serve"))
        if k is None:
            continue
        keys = ("rps", "p50_ms", "p99_ms", "rss_mb", "pss_mb")
        kv = {key: float(str(k[key])) for key in keys}
        rv = {key: float(str(r[key])) for key in keys}
        ahead = (
            kv["rps"] > rv["rps"]
            and kv["p99_ms"] <= rv["p99_ms"]
            and kv["rss_mb"] <= rv["rss_mb"]
            and kv["pss_mb"] <= rv["pss_mb"]
        )
        lines.append(
            f"- {scenario}/{workload} vs {tool}: req/s {_pct(kv['rps'], rv['rps'])},"
            f" p50 {_pct(kv['p50_ms'], rv['p50_ms'])}, p99 {_pct(kv['p99_ms'], rv['p99_ms'])},"
            f" peak RSS {_pct(kv['rss_mb'], rv['rss_mb'])},"
            f" peak PSS {_pct(kv['pss_mb'], rv['pss_mb'])}"
            f" — {'ahead' if ahead else 'NOT ahead'}"
        )
    out = RESULTS / f"{stem}.md"
    out.write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
