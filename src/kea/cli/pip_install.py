"""``kea pip install``: requirements → resolve → prepare (download/unpack, concurrently) → install.

Output is uv's, on stderr: ``Resolved N packages in 1.21s``, ``Prepared N packages in 3.02s``,
``Installed N packages in 412ms``, `` + name==version`` / `` - name==version`` lines, ``Would
install ...`` with ``--dry-run``, ``Audited N packages in ...`` when nothing is to be done. When
every requirement is already satisfied by the environment (and nothing asks for an upgrade or a
reinstall) the command answers from the installed metadata without touching the network.

Heavy modules (aiohttp, the resolver, the installer) are imported inside the functions that use
them, so ``kea pip install --help`` and a no-op install start fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from kea.cli.options import global_options, index_options
from kea.errors import KeaError, UsageError

if TYPE_CHECKING:
    from kea.dist.installed import InstalledDist
    from kea.dist.requirements import Entry, RequirementsSet
    from kea.install.environment import Target
    from kea.settings import Settings


PRERELEASE = ("disallow", "allow", "if-necessary", "explicit", "if-necessary-or-explicit")
RESOLUTION = ("highest", "lowest", "lowest-direct")
LINK_MODES = ("clone", "hardlink", "copy", "symlink")


def _target_options(f: Any) -> Any:
    """``--python/--system/--target/--prefix`` (kea.cli.target_options when it exists)."""
    try:
        from kea.cli.target_options import target_options
    except ImportError:
        decorators = [
            click.option("--python", "-p", "python", help="The interpreter to install into."),
            click.option("--system", is_flag=True, help="Install into the system interpreter."),
            click.option("--target", type=click.Path(file_okay=False), help="Install into DIR."),
            click.option("--prefix", type=click.Path(file_okay=False), help="Install under DIR."),
        ]
        for d in reversed(decorators):
            f = d(f)
        return f
    return target_options(f)


@click.command(
    help="Install packages into an environment.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.argument("packages", nargs=-1)
@click.option(
    "-r", "--requirements", "--requirement", "requirements", multiple=True,
    type=click.Path(dir_okay=False), help="Install from this requirements file.",
)  # fmt: skip
@click.option(
    "-c", "--constraints", "--constraint", "constraints", multiple=True,
    type=click.Path(dir_okay=False), help="Constrain versions with this file.",
)  # fmt: skip
@click.option(
    "--overrides", "--override", "overrides", multiple=True, type=click.Path(dir_okay=False),
    help="Override versions with this file (replaces every requirement on those packages).",
)  # fmt: skip
@click.option("-e", "--editable", "editables", multiple=True, help="Install a project editable.")
@click.option("--require-hashes", is_flag=True, help="Every requirement must carry --hash.")
@click.option("--dry-run", is_flag=True, help="Resolve and report, change nothing.")
@click.option("--no-deps", is_flag=True, help="Install only what is named, not dependencies.")
@click.option("--reinstall", "--force-reinstall", "reinstall", is_flag=True, help="Reinstall all.")
@click.option("--reinstall-package", multiple=True, help="Reinstall this package.")
@click.option("-U", "--upgrade", is_flag=True, help="Allow upgrades of installed packages.")
@click.option("-P", "--upgrade-package", multiple=True, help="Allow upgrades of this package.")
@click.option("--only-binary", multiple=True, help="Only wheels for these packages (:all:).")
@click.option("--no-binary", multiple=True, help="No wheels for these packages (:all:).")
@click.option("--prerelease", type=click.Choice(PRERELEASE), default=None)
@click.option("--pre", is_flag=True, help="Alias of --prerelease allow.")
@click.option("--resolution", type=click.Choice(RESOLUTION), default=None)
@click.option("--exclude-newer", help="Ignore files uploaded after this date/time.")
@click.option("--link-mode", type=click.Choice(LINK_MODES), default=None)
@click.option("--compile-bytecode", "--compile", "compile_bytecode", is_flag=True, default=None)
@_target_options
@index_options
@global_options
def install(**params: Any) -> None:
    run_install(params)


# -- output ------------------------------------------------------------------------------------


def elapsed(seconds: float) -> str:
    """uv's durations: ``412ms`` under a second, else ``1.21s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    return f"{seconds:.2f}s"


def packages(n: int) -> str:
    return f"{n} package" + ("" if n == 1 else "s")


def _say(message: str) -> None:
    from kea.cli.output import info

    info(message)


# -- the request -------------------------------------------------------------------------------


@dataclass
class Request:
    """Everything the user asked for, from the command line and the files."""

    requirements: list[Entry] = field(default_factory=list)
    constraints: list[Entry] = field(default_factory=list)
    overrides: list[Entry] = field(default_factory=list)
    files: RequirementsSet | None = None
    hash_mode: bool = False
    upgrade: bool = False
    upgrade_packages: frozenset[str] = frozenset()
    reinstall: bool = False
    reinstall_packages: frozenset[str] = frozenset()
    no_deps: bool = False
    dry_run: bool = False


def gather_request(params: dict[str, Any]) -> Request:
    """Parse positional requirements and every -r/-c/--overrides file (pops those params)."""
    from packaging.utils import canonicalize_name

    from kea.dist.requirements import (
        RequirementsSet,
        check_hashes,
        parse_requirement,
        parse_requirements,
    )

    files = RequirementsSet()
    for path in params.pop("requirements", ()) or ():
        files.extend(parse_requirements(path))
    for path in params.pop("constraints", ()) or ():
        files.extend(parse_requirements(path, constraint=True))
    overrides = RequirementsSet()
    for path in params.pop("overrides", ()) or ():
        overrides.extend(parse_requirements(path))
    editables = list(params.pop("editables", ()) or ())
    if editables or files.editables:
        raw = editables[0] if editables else files.editables[0].raw
        raise KeaError(
            f"editable installs are not supported yet: {raw}",
            hint="build a wheel of the project and install that",
        )
    reqs = [parse_requirement(p, "command line") for p in params.pop("packages", ()) or ()]
    reqs += files.requirements
    if not reqs:
        raise UsageError(
            "no requirements given",
            hint="name packages (kea pip install requests) or pass -r requirements.txt",
        )
    require_hashes = bool(params.pop("require_hashes", False)) or files.require_hashes
    hash_mode = check_hashes(reqs, require_hashes)

    def names(values: Iterable[str]) -> frozenset[str]:
        return frozenset(canonicalize_name(v) for v in values)

    return Request(
        requirements=reqs,
        constraints=files.constraints,
        overrides=overrides.requirements + overrides.constraints,
        files=files,
        hash_mode=hash_mode,
        upgrade=bool(params.pop("upgrade", False)),
        upgrade_packages=names(params.pop("upgrade_package", ()) or ()),
        reinstall=bool(params.pop("reinstall", False)),
        reinstall_packages=names(params.pop("reinstall_package", ()) or ()),
        no_deps=bool(params.pop("no_deps", False)),
        dry_run=bool(params.pop("dry_run", False)),
    )


def merge_file_indexes(params: dict[str, Any], files: RequirementsSet | None) -> None:
    """Index options found in requirements files apply unless the command line set them."""
    if files is None:
        return
    if files.index_url and not (params.get("index_url") or params.get("default_index")):
        params["index_url"] = files.index_url
    if files.extra_index_urls:
        params["extra_index_url"] = tuple(params.get("extra_index_url") or ()) + tuple(
            u for u in files.extra_index_urls if u not in (params.get("extra_index_url") or ())
        )
    if files.find_links:
        params["find_links"] = tuple(params.get("find_links") or ()) + tuple(files.find_links)
    if files.no_index:
        params["no_index"] = True
    if files.pre and not params.get("prerelease"):
        params["pre"] = True
    if files.only_binary:
        params["only_binary"] = tuple(params.get("only_binary") or ()) + tuple(files.only_binary)
    if files.no_binary:
        params["no_binary"] = tuple(params.get("no_binary") or ()) + tuple(files.no_binary)


# -- the no-op audit -----------------------------------------------------------------------------


def audit_installed(
    request: Request, installed: Mapping[str, InstalledDist], markers: Mapping[str, str]
) -> int | None:
    """The number of installed packages the request needs, if all are already satisfied.

    None as soon as anything is missing, at a wrong version, asked to be upgraded or
    reinstalled, or a direct URL: then the resolver must run. Reads installed metadata only.
    """
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    from kea.resolver.provider import dependencies_of

    overridden = _override_names(request)
    if request.upgrade or request.reinstall or request.upgrade_packages:
        return None
    if request.reinstall_packages or request.hash_mode:
        return None
    pins: dict[str, list[Any]] = {}
    for entry in (*request.constraints, *request.overrides):
        pins.setdefault(entry.name, []).append(entry.requirement)
    env = dict(markers)
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[Any] = [e.requirement for e in request.requirements]
    needed: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not _marker_ok(req.marker, env):
            continue
        if req.url:
            return None
        name = canonicalize_name(req.name)
        dist = installed.get(name)
        if dist is None:
            return None
        try:
            version = Version(dist.version)
        except InvalidVersion:
            return None
        extra_pins = pins.get(name, [])
        specs = extra_pins if name in overridden else [req, *extra_pins]
        if not all(r.specifier.contains(version, prereleases=True) for r in specs):
            return None
        needed.add(name)
        key = (name, frozenset(canonicalize_name(e) for e in req.extras))
        if key in seen or request.no_deps:
            continue
        seen.add(key)
        try:
            meta = dist.metadata()
        except KeaError:
            return None
        todo += dependencies_of(meta, req.extras, markers)
    return len(needed)


def _override_names(request: Request) -> frozenset[str]:
    return frozenset(e.name for e in request.overrides)


def _marker_ok(marker: Any, env: dict[str, str]) -> bool:
    env["extra"] = ""
    try:
        return bool(marker.evaluate(env))
    except Exception:
        return False


# -- the command ---------------------------------------------------------------------------------


def run_install(params: dict[str, Any]) -> None:
    """The whole of ``kea pip install`` after click parsed the options."""
    from kea.cli.options import settings_from
    from kea.dist.installed import find_installed
    from kea.install.environment import resolve_target
    from kea.install.target_cache import interpreter_cache_dir

    started = time.perf_counter()
    request = gather_request(params)
    merge_file_indexes(params, request.files)
    settings = settings_from(params)
    target = resolve_target(
        python=params.pop("python", None),
        system=bool(params.pop("system", False)),
        target=params.pop("target", None),
        prefix=params.pop("prefix", None),
        env=settings.env or os.environ,
        cache_dir=interpreter_cache_dir(settings),
    )
    installed = find_installed(target.roots())
    audited = audit_installed(request, installed, target.interpreter.markers)
    if audited is not None:
        _say(f"Audited {packages(audited)} in {elapsed(time.perf_counter() - started)}")
        return
    resolve_and_install(request, params, settings, target, installed, started)


def resolve_and_install(
    request: Request,
    params: dict[str, Any],
    settings: Settings,
    target: Target,
    installed: Mapping[str, InstalledDist],
    started: float,
) -> None:
    raise KeaError("resolving is not wired yet")
