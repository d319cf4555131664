"""The results: per (set, scenario, tool) samples -> a Markdown table, target verdicts, a chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kbench.measure import Sample, median, pair_ratios, spread


@dataclass
class Cell:
    """The runs of one tool on one (set, scenario): ``samples[i]`` is run i (None: not run)."""

    samples: list[Sample | None] = field(default_factory=list)
    note: str | None = None  # "n/a: ..." or "failed: ..." when there is no figure

    def times(self) -> list[float | None]:
        return [s.seconds if s is not None and s.ok else None for s in self.samples]

    def ok_times(self) -> list[float]:
        return [t for t in self.times() if t is not None]

    def median(self) -> float | None:
        return median(self.ok_times())

    def cpu_median(self) -> float | None:
        return median([s.cpu for s in self.samples if s is not None and s.ok])

    def peak_rss(self) -> float | None:
        rss = [s.rss_mb for s in self.samples if s is not None and s.ok]
        return max(rss) if rss else None

    def failures(self) -> list[str]:
        return [s.error or "failed" for s in self.samples if s is not None and not s.ok]


Results = dict[tuple[str, str], dict[str, Cell]]  # (set, scenario) -> tool -> Cell


def ratio(results: Results, key: tuple[str, str], a: str, b: str) -> float | None:
    """Median of the pair-by-pair ratios a/b over the runs both completed."""
    cells = results.get(key, {})
    if a not in cells or b not in cells:
        return None
    return median(pair_ratios(cells[a].times(), cells[b].times()))


def fmt_seconds(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    m = cell.median()
    if m is None:
        return cell.note or ("failed: " + cell.failures()[0] if cell.failures() else "—")
    text = fmt_seconds(m)
    sp = spread(cell.ok_times())
    if sp and len(cell.ok_times()) > 1:
        text += f" ({fmt_seconds(sp[0])}–{fmt_seconds(sp[1])})"
    bad = cell.failures()
    if bad:
        text += f" [{len(bad)} failed]"
    return text


@dataclass(frozen=True)
class Target:
    scenario: str
    label: str
    compare: str  # "uv" or "pip" or "rss"
    limit: float  # kea/uv <= limit; for pip: pip/kea >= limit; for rss: MB <= limit
    set_name: str = "jupyter"


TARGETS: tuple[Target, ...] = (
    Target("install-warm", "install-warm: kea ≤ 1.5× uv", "uv", 1.5),
    Target("install-warm", "install-warm: ≥ 20× faster than pip", "pip", 20.0),
    Target("install-warm-offline", "install-warm-offline: kea ≤ 1.5× uv", "uv", 1.5),
    Target("install-cold", "install-cold: kea ≤ 1.2× uv", "uv", 1.2),
    Target("install-noop", "install-noop: kea ≤ 2× uv", "uv", 2.0),
    Target("resolve-warm", "resolve-warm: kea ≤ 3× uv", "uv", 3.0),
    Target("seed", "seed path (50 ms upstream): kea faster than uv", "uv", 1.0),
    Target("*", "peak RSS, any scenario: ≤ 120 MB", "rss", 120.0, "*"),
)


@dataclass(frozen=True)
class Verdict:
    target: Target
    measured: str
    met: bool | None  # None: not measured
    detail: str


def judge(results: Results, t: Target) -> Verdict:
    if t.compare == "rss":
        worst: tuple[float, str] | None = None
        for (s, sc), cells in results.items():
            kea = cells.get("kea")
            rss = kea.peak_rss() if kea else None
            if rss is not None and (worst is None or rss > worst[0]):
                worst = (rss, f"{s}/{sc}")
        if worst is None:
            return Verdict(t, "—", None, "kea produced no successful run")
        met = worst[0] <= t.limit
        over = "" if met else f"; missed by {worst[0] - t.limit:.0f} MB"
        return Verdict(t, f"{worst[0]:.0f} MB ({worst[1]})", met, f"worst case{over}")
    key = (t.set_name, t.scenario)
    if t.compare == "pip":
        r = ratio(results, key, "pip", "kea")
        if r is None:
            return Verdict(t, "—", None, "no paired kea and pip runs")
        met = r >= t.limit
        detail = "" if met else f"missed: {r:.1f}× instead of {t.limit:.0f}×"
        return Verdict(t, f"kea {r:.1f}× faster than pip", met, detail)
    strict = t.limit == 1.0  # "faster than": strictly below 1
    r = ratio(results, key, "kea", "uv")
    if r is None:
        return Verdict(t, "—", None, "no paired kea and uv runs")
    met = r < t.limit if strict else r <= t.limit
    detail = "" if met else f"missed by {(r / t.limit - 1) * 100:.0f}% ({r:.2f}× vs {t.limit}×)"
    return Verdict(t, f"kea/uv {r:.2f}×", met, detail)


def markdown(
    results: Results,
    *,
    sets: Sequence[str],
    scenarios: Sequence[str],
    tools: Sequence[str],
    header: Sequence[str],
    verdicts: Sequence[Verdict],
    profiles: dict[str, str],
    chart: str | None,
) -> str:
    out: list[str] = list(header)
    out.append("")
    out.append("## Targets (jupyter set unless noted; medians and pair-by-pair ratios)")
    out.append("")
    out.append("| target | measured | verdict |")
    out.append("|---|---|---|")
    for v in verdicts:
        verdict = "not measured" if v.met is None else ("met" if v.met else "**missed**")
        extra = f" — {v.detail}" if v.detail else ""
        out.append(f"| {v.target.label} | {v.measured} | {verdict}{extra} |")
    if chart:
        out += ["", f"![kea vs uv vs pip]({chart})"]
    for s in sets:
        out += ["", f"## Set `{s}`", ""]
        cols = [f"{t} median (min–max)" for t in tools]
        ratios = [f"kea/{t}" for t in tools if t != "kea" and "kea" in tools]
        rss = [f"RSS {t} MB" for t in tools]
        out.append("| scenario | " + " | ".join(cols + ratios + rss) + " |")
        out.append("|---" * (1 + len(cols) + len(ratios) + len(rss)) + "|")
        for sc in scenarios:
            key = (s, sc)
            if key not in results:
                continue
            cells = results[key]
            row = [sc] + [cell_text(cells.get(t)) for t in tools]
            row += [fmt_ratio(ratio(results, key, "kea", t)) for t in tools if t != "kea"]
            for t in tools:
                c = cells.get(t)
                r = c.peak_rss() if c else None
                row.append("—" if r is None else f"{r:.0f}")
            out.append("| " + " | ".join(row) + " |")
        out += ["", "CPU time (user + system, whole process tree), medians:", ""]
        out.append("| scenario | " + " | ".join(f"{t} CPU" for t in tools) + " |")
        out.append("|---" * (1 + len(tools)) + "|")
        for sc in scenarios:
            if (s, sc) not in results:
                continue
            cpu_cells = results[(s, sc)]
            row = [sc]
            for t in tools:
                c = cpu_cells.get(t)
                row.append(fmt_seconds(c.cpu_median() if c else None))
            out.append("| " + " | ".join(row) + " |")
    failures = [
        f"- `{s}` / `{sc}` / {t}: {msg}"
        for (s, sc), cells in results.items()
        for t, c in cells.items()
        for msg in sorted(set(c.failures()))
    ]
    failures += [
        f"- `{s}` / `{sc}` / {t}: {c.note}"
        for (s, sc), cells in results.items()
        for t, c in cells.items()
        if c.note and c.note.startswith("failed")
    ]
    if failures:
        out += ["", "## Failures (exit status and the tool's last stderr line)", "", *failures]
    if profiles:
        out += ["", "## Where kea's time goes (cProfile of kea on the missed scenarios)", ""]
        for name, text in profiles.items():
            out += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def chart(
    results: Results,
    sets: Sequence[str],
    scenarios: Sequence[str],
    tools: Sequence[str],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [sc for sc in scenarios if any((s, sc) in results for s in sets)]
    if not shown:
        return
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.6 * len(shown)), squeeze=False)
    colors = {"kea": "#2a9d8f", "uv": "#6c5ce7", "pip": "#e76f51"}
    width = 0.8 / max(1, len(tools))
    for ax, sc in zip(axes[:, 0], shown, strict=True):
        for j, tool in enumerate(tools):
            xs, ys = [], []
            for i, s in enumerate(sets):
                c = results.get((s, sc), {}).get(tool)
                m = c.median() if c else None
                if m is not None:
                    xs.append(i + (j - (len(tools) - 1) / 2) * width)
                    ys.append(m)
            ax.bar(xs, ys, width=width, label=tool, color=colors.get(tool))
            for x, y in zip(xs, ys, strict=True):
                ax.text(x, y, fmt_seconds(y), ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_yscale("log")
        ax.set_title(sc, fontsize=10)
        ax.set_ylabel("seconds (log)")
        ax.set_xticks(range(len(sets)), list(sets))
        ax.margins(y=0.35)
    axes[0, 0].legend(loc="upper left", fontsize=8, ncols=len(tools))
    fig.suptitle("kea vs uv vs pip — median wall time, lower is better", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
