"""Each tool's command line and environment, per scenario.

Honest equivalents (see bench/README.md):
- every tool installs into a fresh venv made by ``uv venv`` outside the timing, through
  ``--python <venv>/bin/python`` (pip: ``pip --python``, which re-runs pip under that interpreter);
- resolve-* is ``pip install --dry-run`` for all three (uv/kea: ``uv|kea pip install --dry-run``)
  on the set's unpinned input file, into an empty venv; pip fetches only PEP 658 metadata;
- install-warm-offline: ``--offline`` for uv and kea; pip has no offline mode that uses its
  cache, so it has no figure there;
- each tool keeps its defaults otherwise (pip compiles bytecode by default, uv and kea do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TOOLS: tuple[str, ...] = ("kea", "uv", "pip")


@dataclass(frozen=True)
class Scenario:
    name: str
    requirements: str  # "pinned" (<set>.txt) or "input" (<set>.in)
    cache: str  # "warm" (kept) or "cold" (emptied before every run)
    venv: str  # "fresh" (new before every run) or "full" (already holds the set)
    offline: bool = False
    dry_run: bool = False
    seed: bool = False  # through the router -> 302 -> authenticated, delayed upstream
    about: str = ""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("install-warm", "pinned", "warm", "fresh", about="fresh venv, warm cache"),
        Scenario(
            "install-warm-offline", "pinned", "warm", "fresh", offline=True, about="--offline"
        ),
        Scenario("install-cold", "pinned", "cold", "fresh", about="fresh venv, empty cache"),
        Scenario("install-noop", "pinned", "warm", "full", about="everything already installed"),
        Scenario("resolve-warm", "input", "warm", "fresh", dry_run=True, about="--dry-run"),
        Scenario("resolve-cold", "input", "cold", "fresh", dry_run=True, about="--dry-run"),
        Scenario(
            "seed",
            "pinned",
            "cold",
            "fresh",
            seed=True,
            about="router 302 -> upstream (Basic auth via netrc, +50 ms per response), cold",
        ),
    )
}
QUICK_SCENARIOS: tuple[str, ...] = tuple(SCENARIOS)


@dataclass(frozen=True)
class Ctx:
    bin: Path  # the tools venv's bin/ (kea, uv, python with pip)
    venv: Path  # the target environment
    cache: Path  # this tool's cache directory for this scenario
    requirements: Path
    index_url: str


def command(tool: str, scenario: Scenario, ctx: Ctx) -> list[str] | None:
    """The command line, or None when the tool has no honest equivalent of the scenario."""
    target = str(ctx.venv / "bin" / "python")
    common = ["-r", str(ctx.requirements), "--index-url", ctx.index_url]
    if tool == "kea":
        cmd = [str(ctx.bin / "kea"), "pip", "install", "--python", target, *common]
        cmd += ["--cache-dir", str(ctx.cache), "--no-progress"]
    elif tool == "uv":
        cmd = [str(ctx.bin / "uv"), "pip", "install", "--python", target, *common]
        cmd += ["--cache-dir", str(ctx.cache), "--no-progress"]
    elif tool == "pip":
        if scenario.offline:
            return None
        cmd = [str(ctx.bin / "python"), "-m", "pip", "--python", target, "install", *common]
        cmd += ["--cache-dir", str(ctx.cache), "--progress-bar", "off", "--no-input"]
    else:
        raise ValueError(f"unknown tool {tool!r}")
    if scenario.offline:
        cmd.append("--offline")
    if scenario.dry_run:
        cmd.append("--dry-run")
    return cmd


def environment(tool: str, home: Path, tmp: Path, netrc: Path | None, path: str) -> dict[str, str]:
    """A clean environment: no user config, each tool's config files off, a private HOME, and
    temporary files on the filesystem the venvs and caches are on."""
    env = {
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    if netrc is not None:
        env["NETRC"] = str(netrc)
    if tool == "pip":
        env["PIP_CONFIG_FILE"] = "/dev/null"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    elif tool == "uv":
        env["UV_NO_CONFIG"] = "1"
    elif tool == "kea":
        env["KEA_NO_CONFIG"] = "1"
    return env


def rotation(tools: list[str], run: int) -> list[str]:
    """The order of the tools in run ``run``: rotated by one each run, so none is always first."""
    if not tools:
        return []
    k = run % len(tools)
    return tools[k:] + tools[:k]
