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

import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kea.cli.options import global_options, index_options
from kea.cli.target_options import target_options
from kea.errors import KeaError, UsageError

if TYPE_CHECKING:
    from kea.dist.installed import InstalledDist
    from kea.dist.requirements import Entry, RequirementsSet
    from kea.install.environment import Target
    from kea.settings import Settings


PRERELEASE = ("disallow", "allow", "if-necessary", "explicit", "if-necessary-or-explicit")
RESOLUTION = ("highest", "lowest", "lowest-direct")
LINK_MODES = ("clone", "hardlink", "copy", "symlink")


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
@click.option(
    "--compile-bytecode", "--compile", "compile_bytecode", is_flag=True, default=None,
    help="Compile .py files to .pyc after installing.",
)  # fmt: skip
@target_options
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


_QUIET = [False]


def _say(message: str) -> None:
    """A summary line on stderr (through the redacting writer); nothing with ``-q``."""
    if _QUIET[0]:
        return
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
    # (requirement, marker still to check): dependencies_of already evaluated its markers
    todo: list[tuple[Any, bool]] = [(e.requirement, True) for e in request.requirements]
    needed: set[str] = set()
    while todo:
        req, check = todo.pop()
        if check and req.marker is not None and not _marker_ok(req.marker, env):
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
        todo += [(dep, False) for dep in dependencies_of(meta, req.extras, markers)]
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
    from kea.cli.target_options import target_from
    from kea.dist.installed import find_installed

    started = time.perf_counter()
    request = gather_request(params)
    merge_file_indexes(params, request.files)
    settings = settings_from(params)
    _QUIET[0] = settings.quiet > 0
    options = InstallOptions.from_params(params, settings)
    target = target_from(params, settings)
    installed = find_installed(target.roots())
    audited = audit_installed(request, installed, target.interpreter.markers)
    if audited is not None:
        _say(f"Audited {packages(audited)} in {elapsed(time.perf_counter() - started)}")
        return
    resolve_and_install(request, options, settings, target, installed, started)


def resolve_and_install(
    request: Request,
    options: InstallOptions,
    settings: Settings,
    target: Target,
    installed: Mapping[str, InstalledDist],
    started: float,
) -> None:
    """Resolve, then prepare and install (or report, with ``--dry-run``)."""
    import asyncio

    from kea.cache import Cache

    cache = Cache.from_settings(settings)
    try:
        asyncio.run(_pipeline(request, options, settings, target, installed, cache, started))
    finally:
        cache.close()


@dataclass
class InstallOptions:
    prerelease: str = "if-necessary-or-explicit"
    resolution: str = "highest"
    exclude_newer: Any = None  # datetime | None
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    link_mode: str | None = None
    compile_bytecode: bool = False
    show_progress: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], settings: Settings) -> InstallOptions:
        import sys

        extra = settings.extra
        prerelease = params.get("prerelease") or extra.get("prerelease")
        if params.get("pre"):
            prerelease = "allow"
        compile_bytecode = params.get("compile_bytecode")
        if compile_bytecode is None:
            compile_bytecode = bool(extra.get("compile-bytecode", False))
        raw_newer = params.get("exclude_newer") or settings.env.get("KEA_EXCLUDE_NEWER")
        raw_newer = raw_newer or extra.get("exclude-newer")
        return cls(
            prerelease=prerelease or "if-necessary-or-explicit",
            resolution=params.get("resolution") or extra.get("resolution") or "highest",
            exclude_newer=parse_exclude_newer(raw_newer) if raw_newer else None,
            only_binary=tuple(params.get("only_binary") or ()),
            no_binary=tuple(params.get("no_binary") or ()),
            link_mode=params.get("link_mode") or extra.get("link-mode"),
            compile_bytecode=bool(compile_bytecode),
            show_progress=(
                not settings.no_progress and settings.quiet == 0 and sys.stderr.isatty()
            ),
        )


def parse_exclude_newer(value: Any) -> Any:
    """``2024-03-01`` (end of that day, UTC) or an RFC 3339 timestamp → aware datetime."""
    from datetime import UTC, datetime, timedelta

    text = str(value).strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid --exclude-newer value {text!r}",
            hint="use a date (2024-03-01) or an RFC 3339 time (2024-03-01T12:00:00Z)",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def _pipeline(
    request: Request,
    options: InstallOptions,
    settings: Settings,
    target: Target,
    installed: Mapping[str, InstalledDist],
    cache: Any,
    started: float,
) -> None:
    from kea.resolver.provider import ResolveInput, resolve_request

    spec = ResolveInput(
        requirements=[e.requirement for e in request.requirements],
        constraints=[e.requirement for e in request.constraints],
        overrides=[e.requirement for e in request.overrides],
        hashes={e.name: frozenset(e.hashes) for e in request.requirements if e.hashes},
        installed={name: dist.version for name, dist in installed.items()},
        upgrade=request.upgrade,
        upgrade_packages=request.upgrade_packages,
        no_deps=request.no_deps,
        prerelease=options.prerelease,
        resolution=options.resolution,
        exclude_newer=options.exclude_newer,
        only_binary=options.only_binary,
        no_binary=options.no_binary,
    )
    async with _open_index(settings, cache) as index:
        chosen = await resolve_request(spec, index, target.interpreter)
        now = time.perf_counter()
        _say(f"Resolved {packages(len(chosen))} in {elapsed(now - started)}")
        if request.hash_mode:
            _check_hash_coverage(chosen, spec.hashes)
        reinstall: bool | frozenset[str] = request.reinstall or request.reinstall_packages
        todo = [
            c for c in chosen if _needs_install(c.name, c.version, installed, request.reinstall,
                                                 request.reinstall_packages)
        ]  # fmt: skip
        replaced = [installed[c.name] for c in todo if c.name in installed]
        if not todo:
            _say(f"Audited {packages(len(chosen))} in {elapsed(time.perf_counter() - now)}")
            return
        if request.dry_run:
            _dry_run_report(todo, replaced, cache)
            return
        prep_start = time.perf_counter()
        archives = await _prepare(todo, index, cache, spec.hashes, options)
        _say(f"Prepared {packages(len(todo))} in {elapsed(time.perf_counter() - prep_start)}")
    _install(todo, archives, replaced, installed, target, options, request, reinstall)


def _needs_install(
    name: str,
    version: Any,
    installed: Mapping[str, InstalledDist],
    reinstall_all: bool,
    reinstall: frozenset[str],
) -> bool:
    from packaging.version import InvalidVersion, Version

    have = installed.get(name)
    if have is None or reinstall_all or name in reinstall:
        return True
    try:
        return Version(have.version) != Version(str(version))
    except InvalidVersion:
        return True


def _check_hash_coverage(chosen: Iterable[Any], hashes: Mapping[str, frozenset[str]]) -> None:
    missing = sorted(f"{c.name}=={c.version}" for c in chosen if c.name not in hashes)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise KeaError(
            f"in hash-checking mode every package needs a --hash; missing for {missing[0]}{more}",
            hint="list every dependency pinned with its hashes (uv pip compile --generate-hashes)",
        )


def _change_lines(added: Iterable[tuple[str, str]], removed: Iterable[tuple[str, str]]) -> None:
    """uv's `` - name==old`` / `` + name==new`` lines, sorted by name, removals first."""
    from packaging.utils import canonicalize_name

    rows = [(canonicalize_name(n), 0, f" - {canonicalize_name(n)}=={v}") for n, v in removed]
    rows += [(canonicalize_name(n), 1, f" + {canonicalize_name(n)}=={v}") for n, v in added]
    for _, _, line in sorted(rows):
        _say(line)


def _dry_run_report(todo: list[Any], replaced: list[InstalledDist], cache: Any) -> None:
    fetch = [c for c in todo if cache.find_archive(c.file.filename, url=c.file.url,
                                                   hashes=c.file.hashes) is None]  # fmt: skip
    if fetch:
        _say(f"Would download {packages(len(fetch))}")
    if replaced:
        _say(f"Would uninstall {packages(len(replaced))}")
    _say(f"Would install {packages(len(todo))}")
    _change_lines(
        [(c.display_name, str(c.version)) for c in todo],
        [(d.name, d.version) for d in replaced],
    )


def _install(
    todo: list[Any],
    archives: Mapping[str, Path],
    replaced: list[InstalledDist],
    installed: Mapping[str, InstalledDist],
    target: Target,
    options: InstallOptions,
    request: Request,
    reinstall: bool | frozenset[str],
) -> None:
    from kea.install.installer import apply_plan
    from kea.install.plan import WantedDist, make_plan

    direct = {e.name for e in request.requirements}
    wanted = [
        WantedDist(
            name=c.name,
            version=str(c.version),
            archive=archives[c.name],
            direct_url=c.direct_url,
            requested=c.name in direct,
        )
        for c in todo
    ]
    plan = make_plan(wanted, installed, reinstall=reinstall or [c.name for c in todo])
    report = apply_plan(
        target, plan, link_mode=options.link_mode, compile_bytecode=options.compile_bytecode
    )
    if report.removed:
        _say(f"Uninstalled {packages(len(report.removed))} in {elapsed(report.seconds)}")
    _say(f"Installed {packages(len(report.installed))} in {elapsed(report.seconds)}")
    _change_lines(report.installed, report.removed)


# -- preparing archives ---------------------------------------------------------------------------


async def _prepare(
    todo: list[Any],
    index: Any,
    cache: Any,
    hashes: Mapping[str, frozenset[str]],
    options: InstallOptions,
) -> dict[str, Path]:
    """Download (or find in the cache) and unpack every wheel, concurrently."""
    import asyncio

    sem = asyncio.Semaphore(16)
    out: dict[str, Path] = {}
    progress = _Progress(len(todo)) if options.show_progress else None

    async def one(c: Any) -> None:
        async with sem:
            out[c.name] = await _archive_for(c, index, cache, hashes.get(c.name))
        if progress is not None:
            progress.advance(c.name)

    tasks = [asyncio.create_task(one(c)) for c in todo]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if progress is not None:
            progress.close()
    return out


class _Progress:
    """A transient rich progress bar on stderr (only used on a TTY without -q/--no-progress)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("Preparing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("", total=total)
        self._progress.start()

    def advance(self, name: str) -> None:
        self._progress.update(self._task, advance=1, description=name)

    def close(self) -> None:
        self._progress.stop()


async def _archive_for(c: Any, index: Any, cache: Any, allowed: frozenset[str] | None) -> Path:
    """The unpacked archive of candidate ``c``: from the cache, a local file, or a download."""
    import asyncio

    from kea.dist.wheel_name import require_wheel
    from kea.index.findlinks import is_local, local_path

    file = c.file
    require_wheel(file.filename)
    expected = _expected_hashes(file, allowed)
    if expected and expected != file.hashes:
        import msgspec

        file = msgspec.structs.replace(file, hashes=expected)
    if is_local(file.url):
        path = local_path(file.url)
        archive = await asyncio.to_thread(cache.unpack_local_wheel, path, file.hashes or None)
    else:
        archive = await index.fetch_wheel(file)
    if allowed and f"sha256:{archive.name}" not in allowed:
        raise KeaError(
            f"hash mismatch for {file.filename}: its sha256 is {archive.name}, "
            "which is none of the --hash values given",
            hint="the file changed on the index, or the requirements file is out of date",
        )
    return Path(archive)


def _expected_hashes(file: Any, allowed: frozenset[str] | None) -> dict[str, str]:
    if not allowed:
        return {}
    known = file.hashes.get("sha256")
    if known and f"sha256:{known}" in allowed:
        return {"sha256": known}
    if known:
        raise KeaError(
            f"hash mismatch for {file.filename}: the index lists sha256 {known}, "
            "which is none of the --hash values given",
            hint="the file changed on the index, or the requirements file is out of date",
        )
    return {}


@contextlib.asynccontextmanager
async def _open_index(settings: Settings, cache: Any) -> AsyncIterator[Any]:
    """The run's IndexClient; with ``--offline`` no HTTP client is even created."""
    from kea.index.client import IndexClient

    if settings.offline:
        yield IndexClient(settings, None, cache)
        return
    from kea.http.client import HttpClient

    async with HttpClient(settings) as http:
        yield IndexClient(settings, http, cache)
