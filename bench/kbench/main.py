"""``bench/run``: prepare the sets, wheels and index, start the servers, run, write the results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pstats
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path

from kbench import RESULTS, ROOT, WORK, index, report, sets, tools
from kbench.measure import Sample, run_timed
from kbench.servers import UPSTREAM_IP, Servers


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="sets black,trio; 2 runs; for development")
    p.add_argument("--sets", help=f"comma list of {','.join(sets.SETS)}")
    p.add_argument("--scenarios", help=f"comma list of {','.join(tools.SCENARIOS)}")
    p.add_argument("--tools", default=",".join(tools.TOOLS), help="comma list of kea,uv,pip")
    p.add_argument("--runs", type=int, help="timed runs per figure (default 5; --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is killed")
    p.add_argument("--delay", type=float, default=0.05, help="seed upstream delay (s)")
    p.add_argument("--recompile", action="store_true", help="re-pin the sets against PyPI")
    p.add_argument("--no-profile", action="store_true", help="skip profiling missed targets")
    p.add_argument("--name", help="results file stem (default: the date, -quick when --quick)")
    return p.parse_args(argv)


def _csv(value: str | None, default: tuple[str, ...], known: Collection[str]) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()] if value else list(default)
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"bench/run: unknown {', '.join(bad)} (known: {', '.join(known)})")
    return names


def base_python() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def versions(bin_: Path) -> list[str]:
    def out(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    rev = out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return [
        f"{out([str(bin_ / 'kea'), '--version'])} (commit {rev}"
        + (", src/ has uncommitted changes)" if dirty and dirty != "?" else ")"),
        out([str(bin_ / "uv"), "--version"]),
        out([str(bin_ / "python"), "-m", "pip", "--version"]).split(" from ")[0],
        f"target Python {out([base_python(), '--version'])}",
        out(["nginx", "-v"]) if shutil.which("nginx") else "nginx ?",
    ]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bin = Path(sys.executable).parent
        self.home = WORK / "home"
        self.venvs = WORK / "venvs"
        self.caches = WORK / "cache"
        self.password = secrets.token_hex(12)
        self.netrc = WORK / "seed" / "netrc"
        self.routers: dict[str, str] = {}
        self.results: report.Results = {}

    # -- state ---------------------------------------------------------------------------------
    def fresh_venv(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(
            [str(self.bin / "uv"), "venv", "-q", "--python", base_python(), str(path)],
            check=True,
            env={**os.environ, "UV_NO_CONFIG": "1"},
        )

    def cache_dir(self, tool: str, scenario: tools.Scenario) -> Path:
        path = self.caches / tool / scenario.cache
        if scenario.cache == "cold":
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ctx(self, tool: str, set_name: str, sc: tools.Scenario, servers: Servers) -> tools.Ctx:
        if sc.venv == "fresh":
            venv = self.venvs / f"{tool}-fresh"
            self.fresh_venv(venv)
        else:
            venv = self.venvs / f"{tool}-{set_name}-full"
        in_file, txt, _ = sets.paths(set_name)
        url = servers.index_url(set_name)
        if sc.seed:
            if set_name not in self.routers:
                self.routers[set_name] = servers.router(set_name, WORK / "seed")
            url = self.routers[set_name]
        return tools.Ctx(
            bin=self.bin,
            venv=venv,
            cache=self.cache_dir(tool, sc),
            requirements=in_file if sc.requirements == "input" else txt,
            index_url=url,
        )

    def env(self, tool: str, sc: tools.Scenario) -> dict[str, str]:
        return tools.environment(
            tool, self.home, self.netrc if sc.seed else None, os.environ.get("PATH", "")
        )

    def logfile(self, set_name: str, scenario: str, tool: str, run: int | str) -> Path:
        d = WORK / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{set_name}-{scenario}-{tool}-{run}.stderr"

    # -- running -------------------------------------------------------------------------------
    def warm_up(self, tool: str, set_name: str, sc: tools.Scenario, servers: Servers) -> Sample:
        """One untimed run that leaves the state the timed runs expect."""
        if sc.venv == "full":
            full = self.venvs / f"{tool}-{set_name}-full"
            self.fresh_venv(full)
            base = tools.SCENARIOS["install-warm"]
            ctx = self.ctx(tool, set_name, base, servers)
            ctx = tools.Ctx(ctx.bin, full, ctx.cache, ctx.requirements, ctx.index_url)
            cmd = tools.command(tool, base, ctx)
        elif sc.offline:
            base = tools.SCENARIOS["install-warm"]
            cmd = tools.command(tool, base, self.ctx(tool, set_name, base, servers))
        else:
            cmd = tools.command(tool, sc, self.ctx(tool, set_name, sc, servers))
        assert cmd is not None
        return run_timed(
            cmd,
            self.env(tool, sc),
            timeout=self.args.timeout,
            secrets=[self.password],
            log=str(self.logfile(set_name, sc.name, tool, "warmup")),
        )

    def scenario(
        self, set_name: str, sc: tools.Scenario, tool_list: list[str], runs: int, servers: Servers
    ) -> None:
        cells = {t: report.Cell() for t in tool_list}
        self.results[(set_name, sc.name)] = cells
        active = []
        probe = tools.Ctx(self.bin, Path("/"), Path("/"), Path("/"), "http://127.0.0.1/")
        for t in tool_list:
            if tools.command(t, sc, probe) is None:
                cells[t].note = "n/a (no equivalent)"
            else:
                active.append(t)
        needs_state = sc.venv == "full" or sc.offline
        for w in range(max(self.args.warmup, 1 if needs_state else 0)):
            for t in tools.rotation(list(active), w):
                s = self.warm_up(t, set_name, sc, servers)
                if not s.ok:
                    log(f"[{set_name}] {sc.name} {t} warm-up failed: {s.error}")
                    cells[t].note = f"failed (warm-up): {s.error}"
                    active.remove(t)
        for i in range(runs):
            for t in tools.rotation(active, i):
                ctx = self.ctx(t, set_name, sc, servers)
                cmd = tools.command(t, sc, ctx)
                assert cmd is not None
                s = run_timed(
                    cmd,
                    self.env(t, sc),
                    timeout=self.args.timeout,
                    secrets=[self.password],
                    log=str(self.logfile(set_name, sc.name, t, i + 1)),
                )
                cells[t].samples.append(s)
                state = f"{s.seconds:.3f}s {s.rss_mb:.0f}MB" if s.ok else f"FAILED {s.error}"
                log(f"[{set_name}] {sc.name} {t} run {i + 1}/{runs}: {state}")

    def profile(self, set_name: str, sc: tools.Scenario, servers: Servers) -> str:
        """cProfile kea once on the scenario (same state as a timed run); a short summary."""
        ctx = self.ctx("kea", set_name, sc, servers)
        cmd = tools.command("kea", sc, ctx)
        assert cmd is not None
        out = WORK / "profiles" / f"{set_name}-{sc.name}.prof"
        out.parent.mkdir(parents=True, exist_ok=True)
        pcmd = [str(self.bin / "python"), "-m", "cProfile", "-o", str(out), "-m", "kea", *cmd[1:]]
        s = run_timed(pcmd, self.env("kea", sc), timeout=self.args.timeout, secrets=[self.password])
        if not out.exists():
            return f"profiling failed: {s.error}"
        return summarize_profile(out, s)

    def prepare(self, set_names: list[str]) -> None:
        uv = self.bin / "uv"
        for name in set_names:
            _, txt, _ = sets.paths(name)
            if self.args.recompile or not txt.exists():
                log(f"pinning {name} against PyPI")
                sets.compile_set(name, uv, base_python())
            files = sets.fetch_wheels(name)
            index.build_index(WORK / "index", sets.wheels_dir(), name, files)
            log(f"set {name}: {len(sets.set_pins(name))} packages, index ready")
        self.netrc.parent.mkdir(parents=True, exist_ok=True)
        self.netrc.write_text(f"machine {UPSTREAM_IP}\nlogin bench\npassword {self.password}\n")
        self.netrc.chmod(0o600)
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        shutil.rmtree(self.caches, ignore_errors=True)


def summarize_profile(path: Path, sample: Sample, top: int = 25) -> str:
    import io

    buf = io.StringIO()
    st = pstats.Stats(str(path), stream=buf)
    st.strip_dirs().sort_stats("cumulative").print_stats(top)
    text = buf.getvalue()
    body = text[text.find("   ncalls") :] if "   ncalls" in text else text
    head = f"wall {sample.seconds:.2f}s under cProfile (ok={sample.ok}); top {top} by cumulative"
    buf2 = io.StringIO()
    st2 = pstats.Stats(str(path), stream=buf2)
    st2.strip_dirs().sort_stats("tottime").print_stats(12)
    t2 = buf2.getvalue()
    body2 = t2[t2.find("   ncalls") :] if "   ncalls" in t2 else t2
    return f"{head}\n{body.rstrip()}\n\ntop 12 by own time\n{body2.rstrip()}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_names = _csv(args.sets, sets.QUICK_SETS if args.quick else tuple(sets.SETS), sets.SETS)
    scen_names = _csv(args.scenarios, tuple(tools.SCENARIOS), tools.SCENARIOS)
    tool_list = _csv(args.tools, tools.TOOLS, tools.TOOLS)
    runs = args.runs or (2 if args.quick else 5)
    stem = args.name or (dt.date.today().isoformat() + ("-quick" if args.quick else ""))
    bench = Bench(args)
    bench.prepare(set_names)
    load_before = uptime()
    started = time.time()
    servers = Servers(WORK, WORK / "index", "bench", bench.password, args.delay)
    loads: list[float] = []
    servers.start()
    try:
        log(f"nginx on 127.0.0.1:{servers.port}, upstream {UPSTREAM_IP}:{servers.upstream_port}")
        for name in set_names:
            for sc_name in scen_names:
                bench.scenario(name, tools.SCENARIOS[sc_name], tool_list, runs, servers)
                loads.append(os.getloadavg()[0])
        verdicts = [report.judge(bench.results, t) for t in report.TARGETS]
        profiles: dict[str, str] = {}
        if not args.no_profile and "kea" in tool_list:
            for v in verdicts:
                t = v.target
                if v.met is False and t.scenario in tools.SCENARIOS and t.set_name in set_names:
                    key = f"{t.set_name} / {t.scenario}"
                    if key not in profiles and t.scenario in scen_names:
                        log(f"profiling kea on {key}")
                        profiles[key] = bench.profile(
                            t.set_name, tools.SCENARIOS[t.scenario], servers
                        )
    finally:
        servers.stop()
    minutes = (time.time() - started) / 60
    load_after = uptime()
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / f"{stem}.png"
    report.chart(bench.results, set_names, scen_names, tool_list, png)
    header = [
        f"# kea vs uv vs pip — {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Command: `bench/run {' '.join(argv if argv is not None else sys.argv[1:])}` — "
        f"{runs} timed runs per figure after {args.warmup} warm-up, tools alternated run by run; "
        f"figures are medians (min–max), ratios are medians of pair-by-pair ratios; "
        f"peak RSS is the largest process of the tool's tree. Took {minutes:.0f} min.",
        "",
        "Sets: " + "; ".join(f"`{n}` {len(sets.set_pins(n))} pkgs" for n in set_names) + ".",
        "",
        "Versions: " + "; ".join(versions(bench.bin)) + ".",
        "",
        f"Machine: {os.cpu_count()} CPUs, shared with other engineers' test runs. "
        f"Load before: `{load_before}`; after: `{load_after}`; "
        f"1-min load after each scenario: min {min(loads, default=0):.2f}, "
        f"max {max(loads, default=0):.2f}. Figures taken under load are noisy.",
        "",
        "Scenarios: " + "; ".join(f"**{n}**: {tools.SCENARIOS[n].about}" for n in scen_names) + ".",
    ]
    text = report.markdown(
        bench.results,
        sets=set_names,
        scenarios=scen_names,
        tools=tool_list,
        header=header,
        verdicts=verdicts,
        profiles=profiles,
        chart=png.name if png.exists() else None,
    )
    md = RESULTS / f"{stem}.md"
    md.write_text(text)
    raw = {
        f"{s}/{sc}/{t}": [asdict(x) if x else None for x in c.samples]
        for (s, sc), cells in bench.results.items()
        for t, c in cells.items()
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(raw, indent=1))
    log(f"wrote {md.relative_to(ROOT)} and {png.name}")
    return 0
