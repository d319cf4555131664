"""``bench/run``: prepare the sets, wheels and index, start the servers, run, write the results."""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import pstats
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kbench import RESULTS, ROOT, WORK, index, report, scratch, sets, tools
from kbench.measure import Sample, run_timed
from kbench.servers import UPSTREAM_IP, Servers

# Only when the scratch filesystem (kbench.scratch) cannot be made: on this machine's disk, ext4
# without a journal, an inode allocation skips the inodes freed in the last 60 s, or 360 s while
# their inode table block is dirty (Linux 6.18). 70 s covers the first case only; in 26o
# install-cold's first rounds were still slowed (2026-11-26o.notes.md).
SETTLE = 70.0


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
    p.add_argument(
        "--settle",
        type=float,
        help="seconds between freeing a scenario's leftovers and its first timed run "
        f"(default {SETTLE:.0f}; --quick 0)",
    )
    p.add_argument("--recompile", action="store_true", help="re-pin the sets against PyPI")
    p.add_argument("--no-profile", action="store_true", help="skip profiling missed targets")
    p.add_argument("--name", help="results file stem (default: the date, -quick when --quick)")
    p.add_argument(
        "--render", action="store_true", help="only re-render the results of --name from its JSON"
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="add to the results of the same name (e.g. the large set in a second invocation)",
    )
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

    try:
        rev = (WORK / "kea-src" / ".kea-commit").read_text().strip()
    except OSError:
        rev = "?"
    return [
        f"{out([str(bin_ / 'kea'), '--version'])} (snapshot of commit {rev})",
        out([str(bin_ / "uv"), "--version"]),
        out([str(bin_ / "python"), "-m", "pip", "--version"]).split(" from ")[0],
        f"{out([base_python(), '--version'])} ({base_python()}: runs kea and pip; target venvs)",
        out(["nginx", "-v"]) if shutil.which("nginx") else "nginx ?",
    ]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bin = Path(sys.executable).parent
        self.use(WORK, journaled=False)
        self.password = secrets.token_hex(12)
        self.netrc = WORK / "seed" / "netrc"
        self.routers: dict[str, str] = {}
        self.results: report.Results = {}
        self.freed_at: float | None = None

    def use(self, root: Path, journaled: bool) -> None:
        """Put the tools' venvs, caches, HOME and TMPDIR under ``root``. On a journaled
        filesystem (``kbench.scratch``) old ones are deleted at once; otherwise see ``settle``."""
        self.journaled = journaled
        self.home = root / "home"
        self.venvs = root / "venvs"
        self.caches = root / "cache"
        self.tmp = root / "tmp"
        self.graveyard = root / "graveyard"

    # -- state ---------------------------------------------------------------------------------
    def retire(self, path: Path) -> None:
        """Move ``path`` out of the way of a fresh one. On the disk, without freeing anything:
        into the graveyard, which is emptied between scenarios (``settle``)."""
        if self.journaled:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
        elif os.path.lexists(path):
            self.graveyard.mkdir(parents=True, exist_ok=True)
            os.rename(path, self.graveyard / f"{path.name}-{secrets.token_hex(6)}")

    def free_graveyard(self) -> None:
        if os.path.lexists(self.graveyard):
            shutil.rmtree(self.graveyard, ignore_errors=True)
            os.sync()
            self.freed_at = time.monotonic()

    def settle(self) -> None:
        """Wait until the last freeing is ``--settle`` seconds old.

        Freeing a venv (14,000 inodes for jupyter) or a cache right before a run made that run
        allocate its inodes past the freshly freed ones (ext4 without a journal,
        ``recently_deleted``): the later timed runs were up to 2.4x slower than the first
        (install-warm, 2026-11-26j: kea 288 -> 691 ms, uv 185 -> 433 ms over 5 runs) and the
        ratios depended on which tool ran after the largest deletion. So a timed run frees
        nothing: its fresh venv and cold cache replace the previous ones by a rename
        (``retire``), and what piled up is freed before the next scenario's warm-up.
        """
        if self.freed_at is None or self.journaled:
            return
        wait = self.args.settle - (time.monotonic() - self.freed_at)
        if wait > 0:
            log(f"settling {wait:.0f}s after freeing the previous runs' venvs and caches")
            time.sleep(wait)
        self.freed_at = None

    def fresh_venv(self, path: Path) -> None:
        self.retire(path)
        subprocess.run(
            [str(self.bin / "uv"), "venv", "-q", "--python", base_python(), str(path)],
            check=True,
            env={**os.environ, "UV_NO_CONFIG": "1"},
        )

    def cache_dir(self, tool: str, scenario: tools.Scenario) -> Path:
        path = self.caches / tool / scenario.cache
        if scenario.cache == "cold":
            self.retire(path)
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
        self.tmp.mkdir(parents=True, exist_ok=True)
        return tools.environment(
            tool, self.home, self.tmp, self.netrc if sc.seed else None, os.environ.get("PATH", "")
        )

    def logfile(self, set_name: str, scenario: str, tool: str, run: int | str) -> Path:
        d = WORK / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{set_name}-{scenario}-{tool}-{run}.stderr"

    # -- running -------------------------------------------------------------------------------
    def warm_up(self, tool: str, set_name: str, sc: tools.Scenario, servers: Servers) -> Sample:
        """Untimed runs that leave the state the timed runs expect. For a full venv: the install
        that fills it (hyperfine's ``--prepare``), then the scenario's own command once (its
        ``--warmup``), as every timed run after it is."""
        if sc.venv == "full":
            full = self.venvs / f"{tool}-{set_name}-full"
            self.fresh_venv(full)
            base = tools.SCENARIOS["install-warm"]
            ctx = self.ctx(tool, set_name, base, servers)
            ctx = tools.Ctx(ctx.bin, full, ctx.cache, ctx.requirements, ctx.index_url)
            cmd = tools.command(tool, base, ctx)
            assert cmd is not None
            filled = run_timed(
                cmd,
                self.env(tool, sc),
                timeout=self.args.timeout,
                secrets=[self.password],
                log=str(self.logfile(set_name, sc.name, tool, "prepare")),
            )
            if not filled.ok:
                return filled
            cmd = tools.command(tool, sc, self.ctx(tool, set_name, sc, servers))
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
        self.free_graveyard()
        for w in range(max(self.args.warmup, 1 if needs_state else 0)):
            for t in tools.rotation(list(active), w):
                s = self.warm_up(t, set_name, sc, servers)
                if not s.ok:
                    log(f"[{set_name}] {sc.name} {t} warm-up failed: {s.error}")
                    cells[t].note = f"failed (warm-up): {s.error}"
                    active.remove(t)
        self.settle()
        for i in range(runs):
            for t in tools.rotation(active, i):
                ctx = self.ctx(t, set_name, sc, servers)
                cmd = tools.command(t, sc, ctx)
                assert cmd is not None
                os.sync()  # the last run's writes go to disk now, not during this one
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
        """cProfile kea once on the scenario (same state as a timed run); a short summary.

        Profiles are taken after every scenario has run, so an untimed warm-up comes first:
        without it the cached pages of a warm scenario may have outlived their max-age (600 s)
        and the profile would show revalidation requests that the timed runs never made.
        """
        if sc.cache == "warm" or sc.venv == "full" or sc.offline:
            self.warm_up("kea", set_name, sc, servers)
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
        self.retire(self.home)
        self.home.mkdir(parents=True)
        self.retire(self.caches)


def summarize_profile(path: Path, sample: Sample, top: int = 20) -> str:
    """kea's own functions by cumulative time, then the heaviest calls by own time."""
    import io

    def table(sort: str, restrict: str | None, n: int) -> str:
        buf = io.StringIO()
        st = pstats.Stats(str(path), stream=buf).sort_stats(sort)
        if restrict:
            st.print_stats(restrict, n)
        else:
            st.print_stats(n)
        text = buf.getvalue()
        body = text[text.find("   ncalls") :] if "   ncalls" in text else text
        root = str(WORK / "kea-src" / "src") + "/"
        lines = [
            ln.replace(root, "").replace(str(Path(sys.prefix)) + "/", "")
            for ln in body.splitlines()
        ]
        return "\n".join(ln for ln in lines if ln.strip())

    head = f"wall {sample.seconds:.2f}s under cProfile (ok={sample.ok})"
    own = table("cumulative", "/kea/", top)
    calls = table("tottime", None, 12)
    return f"{head}; kea's functions by cumulative time\n{own}\n\nheaviest by own time\n{calls}"


def load_state(path: Path) -> tuple[report.Results, dict[str, object]]:
    """Results and run records of an earlier invocation (for ``--append``)."""
    data = json.loads(path.read_text())
    results: report.Results = {}
    for key, rec in data["cells"].items():
        s, sc, t = key.split("/")
        samples = [Sample(**x) if x else None for x in rec["samples"]]
        results.setdefault((s, sc), {})[t] = report.Cell(samples, rec.get("note"))
    return results, {"runs": data.get("runs", []), "profiles": data.get("profiles", {})}


def save_state(path: Path, results: report.Results, meta: dict[str, object]) -> None:
    cells = {
        f"{s}/{sc}/{t}": {"samples": [asdict(x) if x else None for x in c.samples], "note": c.note}
        for (s, sc), by_tool in results.items()
        for t, c in by_tool.items()
    }
    path.write_text(json.dumps({**meta, "cells": cells}, indent=1, ensure_ascii=False))


def _ordered(names: set[str], order: Collection[str]) -> list[str]:
    return [n for n in order if n in names]


def render(stem: str, results: report.Results, meta: dict[str, Any], bin_: Path) -> Path:
    set_names = _ordered({s for s, _ in results}, sets.SETS)
    scen_names = _ordered({sc for _, sc in results}, tools.SCENARIOS)
    tool_list = _ordered({t for cells in results.values() for t in cells}, tools.TOOLS)
    png = RESULTS / f"{stem}.png"
    report.chart(results, set_names, scen_names, tool_list, png)
    # When the last invocation ended (a re-render keeps it); results older than that record
    # have the time of their rendering.
    when = meta["runs"][-1].get("finished") if meta["runs"] else None
    header = [f"# kea vs uv vs pip — {when or dt.datetime.now().strftime('%Y-%m-%d %H:%M')}", ""]
    header.append(
        "Method (bench/README.md): each figure is the median (min–max) of the timed runs after "
        "a warm-up, tools alternated run by run; ratios are medians of pair-by-pair ratios "
        "(run i of kea over run i of the other tool); peak RSS is the largest process of the "
        "tool's tree; CPU is user + system time of the whole tree."
    )
    header += ["", "Invocations (the machine is shared with other engineers' test runs):", ""]
    for r in meta["runs"]:
        header.append(
            f"- `bench/run {r['command']}`: {r['runs']} timed runs after {r['warmup']} warm-up, "
            f"{r['minutes']:.0f} min; load before `{r['load_before']}`, after "
            f"`{r['load_after']}`; 1-min load after each scenario {r['load_min']:.2f}–"
            f"{r['load_max']:.2f} (2 CPUs: wall times under such load are inflated and noisy, "
            f"CPU times much less)."
            + (f" Filesystem: {r['filesystem']}." if r.get("filesystem") else "")
        )
    header += [
        "",
        "Sets: " + "; ".join(f"`{n}` {len(sets.set_pins(n))} pkgs" for n in set_names) + ".",
        "",
        "Versions: "
        + " / ".join(
            dict.fromkeys("; ".join(r.get("versions") or versions(bin_)) for r in meta["runs"])
        )
        + ".",
        "",
        "Scenarios: " + "; ".join(f"**{n}**: {tools.SCENARIOS[n].about}" for n in scen_names) + ".",
    ]
    verdicts = [report.judge(results, t) for t in report.TARGETS]
    text = report.markdown(
        results,
        sets=set_names,
        scenarios=scen_names,
        tools=tool_list,
        header=header,
        verdicts=verdicts,
        profiles=dict(meta["profiles"]),
        chart=png.name if png.exists() else None,
    )
    notes = RESULTS / f"{stem}.notes.md"  # hand-written reading of the figures, if any
    if notes.exists():
        first, sep, rest = text.partition("\n## Targets")
        text = first.rstrip() + "\n\n" + notes.read_text().strip() + "\n" + sep + rest
    md = RESULTS / f"{stem}.md"
    md.write_text(text)
    return md


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_names = _csv(args.sets, sets.QUICK_SETS if args.quick else tuple(sets.SETS), sets.SETS)
    scen_names = _csv(args.scenarios, tuple(tools.SCENARIOS), tools.SCENARIOS)
    tool_list = _csv(args.tools, tools.TOOLS, tools.TOOLS)
    runs = args.runs or (2 if args.quick else 5)
    if args.settle is None:
        args.settle = 0.0 if args.quick else SETTLE
    stem = args.name or (dt.date.today().isoformat() + ("-quick" if args.quick else ""))
    RESULTS.mkdir(parents=True, exist_ok=True)
    state_file = RESULTS / f"{stem}.json"
    bench = Bench(args)
    if args.render:
        results, meta_r = load_state(state_file)
        md = render(stem, results, meta_r, bench.bin)
        log(f"wrote {md.relative_to(ROOT)}")
        return 0
    meta: dict[str, Any] = {"runs": [], "profiles": {}}
    if args.append and state_file.exists():
        bench.results, meta = load_state(state_file)
    signal.signal(signal.SIGTERM, _terminate)
    where, how = scratch.mount()
    if where is not None:
        atexit.register(scratch.unmount)  # also on SIGTERM (SystemExit) and on errors
        bench.use(where, journaled=True)
        filesystem = f"venvs, caches, HOME and TMPDIR on {how}; deleted between runs, no settling"
    else:
        filesystem = (
            f"venvs, caches, HOME and TMPDIR on the disk (no scratch filesystem: {how}); "
            f"freed between scenarios, {args.settle:.0f}s settle"
        )
    log(filesystem)
    bench.prepare(set_names)
    record: dict[str, Any] = {
        "command": " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": runs,
        "warmup": args.warmup,
        "load_before": uptime(),
        "versions": versions(bench.bin),
        "filesystem": filesystem,
    }
    started = time.time()
    servers = Servers(WORK, WORK / "index", "bench", bench.password, args.delay)
    loads: list[float] = []

    def checkpoint() -> None:
        record.update(
            minutes=(time.time() - started) / 60,
            finished=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            load_after=uptime(),
            load_min=min(loads, default=0.0),
            load_max=max(loads, default=0.0),
        )
        save_state(state_file, bench.results, {**meta, "runs": [*meta["runs"], record]})

    servers.start()
    try:
        log(f"nginx on 127.0.0.1:{servers.port}, upstream {UPSTREAM_IP}:{servers.upstream_port}")
        for name in set_names:
            for sc_name in scen_names:
                bench.scenario(name, tools.SCENARIOS[sc_name], tool_list, runs, servers)
                loads.append(os.getloadavg()[0])
                checkpoint()
        verdicts = [report.judge(bench.results, t) for t in report.TARGETS]
        if not args.no_profile and "kea" in tool_list:
            for v in verdicts:
                t = v.target
                key = f"{t.set_name} / {t.scenario}"
                if (
                    v.met is False
                    and t.set_name in set_names
                    and t.scenario in scen_names
                    and key not in meta["profiles"]
                ):
                    log(f"profiling kea on {key}")
                    sc = tools.SCENARIOS[t.scenario]
                    meta["profiles"][key] = bench.profile(t.set_name, sc, servers)
    finally:
        servers.stop()
        bench.free_graveyard()
        checkpoint()
    meta["runs"] = [*meta["runs"], record]
    md = render(stem, bench.results, meta, bench.bin)
    log(f"wrote {md.relative_to(ROOT)}, {stem}.png and {stem}.json")
    return 0
