"""The pipeline of ``kea pip install`` once the request is known: resolve, then prepare every
archive (download/unpack, concurrently), then install — or report, with ``--dry-run``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kea.cli.install_output import Progress, change_lines, dry_run_report, elapsed, packages, say
from kea.errors import KeaError

if TYPE_CHECKING:
    from kea.cli.install_request import InstallOptions, Request
    from kea.dist.installed import InstalledDist
    from kea.install.environment import Target
    from kea.settings import Settings


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
        index_strategy=settings.index_strategy,
        fetch_early=not request.dry_run,  # pinned wheels start downloading while resolving
    )
    async with _open_index(settings, cache) as index:
        chosen = await resolve_request(spec, index, target.interpreter)
        now = time.perf_counter()
        say(f"Resolved {packages(len(chosen))} in {elapsed(now - started)}")
        if request.hash_mode:
            _check_hash_coverage(chosen, spec.hashes)
        reinstall: bool | frozenset[str] = request.reinstall or request.reinstall_packages
        todo = [
            c for c in chosen if _needs_install(c.name, c.version, installed, request.reinstall,
                                                 request.reinstall_packages)
        ]  # fmt: skip
        replaced = [installed[c.name] for c in todo if c.name in installed]
        if not todo:
            say(f"Audited {packages(len(chosen))} in {elapsed(time.perf_counter() - now)}")
            return
        if request.dry_run:
            dry_run_report(todo, replaced, cache)
            return
        prep_start = time.perf_counter()
        archives = await _prepare(todo, index, cache, spec.hashes, options)
        say(f"Prepared {packages(len(todo))} in {elapsed(time.perf_counter() - prep_start)}")
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
        say(f"Uninstalled {packages(len(report.removed))} in {elapsed(report.seconds)}")
    say(f"Installed {packages(len(report.installed))} in {elapsed(report.seconds)}")
    change_lines(report.installed, report.removed)


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
    progress = Progress(len(todo)) if options.show_progress else None

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
    """The run's IndexClient. Its HTTP client is made on the first request that needs the
    network (never with ``--offline``): a resolve answered from a fresh cache imports neither
    kea.http nor aiohttp."""
    from kea.index.client import IndexClient

    opened: list[Any] = []

    async def connect() -> Any:
        from kea.http.client import HttpClient

        http = HttpClient(settings)
        await http.open()
        opened.append(http)
        return http

    try:
        yield IndexClient(settings, None, cache, connect=connect)
    finally:
        for http in opened:
            await http.close()
