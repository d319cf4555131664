"""``kea pip uninstall|list|freeze|show|check``: inspect or trim an environment."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from kea.cli.install_output import elapsed, packages
from kea.cli.options import global_options, target_options
from kea.cli.params import settings_from, target_from

if TYPE_CHECKING:
    from kea.dist.installed import InstalledDist
    from kea.install.environment import Target


def _open(
    params: dict[str, Any], *, changes: bool = False
) -> tuple[Target, dict[str, InstalledDist]]:
    from kea.errors import KeaError
    from kea.install.installer import installed_dists
    from kea.install.transaction import recover

    settings = settings_from(params)
    target = target_from(params, settings, changes=changes)
    try:
        recover(target)  # finish or undo what an interrupted kea left behind
    except (KeaError, OSError):
        pass  # read-only environment: nothing we could have left there
    return target, installed_dists(target)


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


@click.command(help="Uninstall packages from an environment.")
@click.argument("names", nargs=-1)
@click.option("-r", "--requirement", "requirements", multiple=True, type=click.Path(dir_okay=False))
@click.option(
    "-y", "--yes", "assume_yes", is_flag=True, help="Accepted as pip takes it; kea never asks."
)
@target_options
@global_options
def uninstall(**params: Any) -> None:
    from kea.cli.output import info, warn
    from kea.dist.names import canonicalize_name
    from kea.errors import UsageError
    from kea.install.installer import uninstall as do_uninstall

    params.pop("assume_yes")  # `pip uninstall -y x` in scripts: kea removes without a prompt
    names: list[str] = []
    for raw in params.pop("names"):
        from kea.dist.requirements import parse_requirement

        names.append(str(parse_requirement(raw).name))
    for path in params.pop("requirements"):
        from kea.dist.requirements import parse_requirements

        names.extend(str(e.name) for e in parse_requirements(path).requirements)
    if not names:
        raise UsageError("no packages to uninstall", hint="name one or more packages, or -r FILE")
    target, installed = _open(params, changes=True)
    wanted = list(dict.fromkeys(canonicalize_name(n) for n in names))
    for name in wanted:
        if name not in installed:
            warn(f"Skipping {name} as it is not installed")
    present = [n for n in wanted if n in installed]
    if not present:
        warn("No packages to uninstall")
        return
    report = do_uninstall(target, present)
    info(f"Uninstalled {packages(len(report.removed))} in {elapsed(report.seconds)}")
    for removed_name, version in sorted(report.removed):
        info(f" - {removed_name}=={version}")
    report.raise_if_interrupted()


@click.command("list", help="List installed packages.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["columns", "freeze", "json"]),
    default="columns",
    help="Output format.",
)
@target_options
@global_options
def list_(**params: Any) -> None:
    fmt = params.pop("fmt")
    _, installed = _open(params)
    dists = sorted(installed.values(), key=lambda d: d.name)
    if fmt == "json":
        rows = [{"name": d.pretty_name, "version": d.version} for d in dists]
        _out(json.dumps(rows))
        return
    if fmt == "freeze":
        for d in dists:
            _out(f"{d.pretty_name}=={d.version}")
        return
    if not dists:
        return
    width_n = max(len("Package"), *(len(d.pretty_name) for d in dists))
    width_v = max(len("Version"), *(len(d.version) for d in dists))
    _out(f"{'Package':<{width_n}} {'Version':<{width_v}}".rstrip())
    _out(f"{'-' * width_n} {'-' * width_v}")
    for d in dists:
        _out(f"{d.pretty_name:<{width_n}} {d.version}")


def _freeze_line(d: InstalledDist) -> str:
    direct = d.read_text("direct_url.json")
    if direct:
        try:
            url = json.loads(direct).get("url")
        except ValueError:
            url = None
        if isinstance(url, str) and url:
            return f"{d.pretty_name} @ {url}"
    return f"{d.pretty_name}=={d.version}"


@click.command(help="List installed packages in requirements format.")
@target_options
@global_options
def freeze(**params: Any) -> None:
    _, installed = _open(params)
    for d in sorted(installed.values(), key=lambda d: d.name):
        _out(_freeze_line(d))


def _requires(d: InstalledDist, markers: dict[str, str]) -> list[Any]:
    """The requirements of ``d`` that apply in this environment (no extras)."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for text in d.metadata().requires_dist:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({**markers, "extra": ""}):
            continue
        out.append(req)
    return out


@click.command(help="Show information about installed packages.")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--files", "show_files", is_flag=True, help="List the installed files.")
@target_options
@global_options
def show(**params: Any) -> None:
    from kea.cli.output import warn
    from kea.dist.names import canonicalize_name
    from kea.errors import KeaError

    names = [canonicalize_name(n) for n in params.pop("names")]
    show_files = params.pop("show_files")
    target, installed = _open(params)
    markers = dict(target.interpreter.markers)
    missing = [n for n in names if n not in installed]
    if missing:
        warn("Package(s) not found for: " + ", ".join(missing))
    found = [installed[n] for n in names if n in installed]
    if not found:
        raise KeaError("none of the packages are installed")
    required_by: dict[str, list[str]] = {}
    for other in installed.values():
        for req in _requires(other, markers):
            required_by.setdefault(canonicalize_name(req.name), []).append(other.name)
    for i, d in enumerate(found):
        if i:
            _out("---")
        meta = d.metadata()
        requires = sorted({canonicalize_name(r.name) for r in _requires(d, markers)})
        _out(f"Name: {meta.name}")
        _out(f"Version: {meta.version}")
        if meta.summary:
            _out(f"Summary: {meta.summary}")
        _out(f"Location: {d.root}")
        _out(f"Requires: {', '.join(requires)}")
        _out(f"Required-by: {', '.join(sorted(required_by.get(d.name, [])))}")
        if show_files:
            _out("Files:")
            for entry in d.record():
                _out(f"  {entry.path}")


@click.command(help="Check that installed packages have compatible dependencies.")
@target_options
@global_options
def check(**params: Any) -> None:
    from kea.dist.names import canonicalize_name

    start = time.perf_counter()
    target, installed = _open(params)
    markers = dict(target.interpreter.markers)
    problems: list[str] = []
    for d in sorted(installed.values(), key=lambda d: d.name):
        for req in _requires(d, markers):
            dep = installed.get(canonicalize_name(req.name))
            if dep is None:
                problems.append(f"The package `{d.name}` requires `{req}`, but it's not installed")
            elif not req.specifier.contains(dep.version, prereleases=True):
                problems.append(
                    f"The package `{d.name}` requires `{req}`, but `{dep.version}` is installed"
                )
    from kea.cli.output import info

    info(f"Checked {packages(len(installed))} in {elapsed(time.perf_counter() - start)}")
    if not problems:
        info("All installed packages are compatible")
        return
    n = len(problems)
    info(f"Found {n} incompatibilit{'y' if n == 1 else 'ies'}")
    for p in problems:
        info(p)
    sys.exit(1)  # problems were reported above; not an error line of their own
