"""The pipeline of ``kea pip install`` once the request is known: resolve, then prepare every
archive (download/unpack, concurrently), then install — or report, with ``--dry-run``.

Two ways through it, with the same output: from the cache alone, in the calling thread (a warm
run: no event loop, no asyncio import), or on an event loop with the network on demand."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kea.log
from kea.cli.install_output import Progress, change_lines, dry_run_report, elapsed, packages, say
from kea.dist import parsed
from kea.errors import KeaError

if TYPE_CHECKING:
    from kea.cli.install_request import InstallOptions, Request
    from kea.dist.installed import InstalledDist
    from kea.index.cached import CachedIndex
    from kea.install.environment import Target
    from kea.resolver.provider import Chosen, ResolveInput
    from kea.settings import Settings

log = kea.log.get("kea.cli")

# Archives downloaded at once (as many connections as one host gets: kea.http.client). Their
# unpacking is bounded on its own, by the default executor's threads, so a wheel that waits
# to be unpacked no longer holds back the next download: on the seed path the last wheel
# arrived after 1.8-2.0 s instead of 3.9 s; peak RSS was unchanged (large set, cold: 96 MB).
PREPARE_AT_ONCE = 50


def resolve_and_install(
    request: Request,
    options: InstallOptions,
    settings: Settings,
    target: Target,
    installed: Mapping[str, InstalledDist],
    started: float,
) -> None:
    """Resolve, then prepare and install (or report, with ``--dry-run``).

    A run whose every page, metadata and archive is usable in the cache is carried out in this
    thread with no event loop (``_from_cache``); any other run, or one where that attempt stops
    before printing anything, goes through ``_pipeline`` (asyncio, the network on demand).
    An install on a cache with no archive at all does not try the cache: it could install
    nothing from it, and the attempt cost a cold jupyter install ~27 ms (under cProfile)
    before its first request (a resolver set up, then stopped at the first page missing).
    """
    from kea.cache import Cache
    from kea.index.cached import CachedIndex

    cache = Cache.from_settings(settings)
    parsed.load(cache.root)
    downloads = _downloads_everything(request, settings, cache)
    if downloads:
        from kea.cache import unpacker

        unpacker.launch()
    try:
        lookup = CachedIndex(settings, cache, offline=settings.offline)
        spec = _resolve_input(request, options, settings, installed)
        if not downloads and _from_cache(
            spec, lookup, request, options, target, installed, cache, started
        ):
            return
        kea.log.ensure()  # asyncio and aiohttp log through logging itself
        import asyncio

        from kea.cli.malloc import limit_arenas

        limit_arenas()  # downloads and unpacking run in many threads: see kea.cli.malloc
        prepared = asyncio.run(
            _pipeline(spec, lookup, request, options, settings, target, installed, cache, started)
        )
        if prepared is not None:
            # After the event loop, not in it: asyncio.run's SIGINT handler would only cancel
            # the run once the install had finished (a Ctrl-C while staging installed all).
            _install(*prepared, installed, target, options, request)
    finally:
        parsed.save()
        cache.close()


def _downloads_everything(request: Request, settings: Settings, cache: Any) -> bool:
    """Whether every wheel this run installs is downloaded and unpacked: the cache holds no
    archive at all (a first run, ``--no-cache``), and the run installs and may use the network.
    The unpacking workers are then started at once (``kea.cache.unpacker.launch``)."""
    from kea.cache.store import ARCHIVE

    if request.dry_run or settings.offline:
        return False
    return not os.path.isdir(f"{cache.root}/{ARCHIVE}")


def _resolve_input(
    request: Request,
    options: InstallOptions,
    settings: Settings,
    installed: Mapping[str, InstalledDist],
) -> ResolveInput:
    from kea.resolver.provider import ResolveInput

    return ResolveInput(
        requirements=[e.requirement for e in request.requirements],
        constraints=[e.requirement for e in request.constraints],
        overrides=[e.requirement for e in request.overrides],
        hashes={e.name: frozenset(e.hashes) for e in request.requirements if e.hashes},
        installed={name: dist.version for name, dist in installed.items()},
        # A package to reinstall is resolved anew, not kept at its installed version (as uv
        # and pip --force-reinstall do): --reinstall-package X, like --upgrade-package X.
        upgrade=request.upgrade or request.reinstall,
        upgrade_packages=request.upgrade_packages | request.reinstall_packages,
        no_deps=request.no_deps,
        prerelease=options.prerelease,
        resolution=options.resolution,
        exclude_newer=options.exclude_newer,
        only_binary=options.only_binary,
        no_binary=options.no_binary,
        index_strategy=settings.index_strategy,
        fetch_early=not request.dry_run,  # pinned wheels start downloading while resolving
    )


def _from_cache(
    spec: ResolveInput,
    lookup: CachedIndex,
    request: Request,
    options: InstallOptions,
    target: Target,
    installed: Mapping[str, InstalledDist],
    cache: Any,
    started: float,
) -> bool:
    """The whole run from the cache (see ``resolve_and_install``). False, with nothing printed
    or changed, when the cache cannot answer something the run needs."""
    from kea.resolver.provider import resolve_from_cache

    chosen = resolve_from_cache(spec, lookup, target.interpreter)
    if chosen is None:
        return False
    resolved = time.perf_counter()
    todo = _todo(chosen, installed, request)
    archives: dict[str, Path] = {}
    if not request.dry_run:
        for c in todo:
            archive = _cached_archive(c, lookup, spec.hashes.get(c.name))
            if archive is None:
                log.debug("not installed from the cache alone: no usable archive of %s", c.name)
                return False
            archives[c.name] = archive
    if not _report_resolution(chosen, todo, spec, request, installed, cache, resolved - started):
        return True
    say(f"Prepared {packages(len(todo))} in {elapsed(time.perf_counter() - resolved)}")
    _install(todo, archives, installed, target, options, request)
    return True


async def _pipeline(
    spec: ResolveInput,
    lookup: CachedIndex,
    request: Request,
    options: InstallOptions,
    settings: Settings,
    target: Target,
    installed: Mapping[str, InstalledDist],
    cache: Any,
    started: float,
) -> tuple[list[Chosen], dict[str, Path]] | None:
    """Resolve and prepare; what to install (None: nothing, or ``--dry-run``)."""
    from kea.cache.unpacker import follow_launch
    from kea.resolver.provider import resolve_request

    follow_launch()  # the workers not launched start once the launched ones are ready
    bar = Prepared(Progress if options.show_progress and not request.dry_run else None)
    try:
        async with _open_index(settings, cache, lookup, bar=bar, dry_run=request.dry_run) as index:
            chosen = await resolve_request(spec, index, target.interpreter)
            todo = _todo(chosen, installed, request)
            if not _report_resolution(
                chosen, todo, spec, request, installed, cache, time.perf_counter() - started
            ):
                return None
            prep_start = time.perf_counter()
            archives = await _prepare(todo, index, cache, spec.hashes, bar)
    finally:
        bar.close()
    from kea.cache.unpacker import release

    release()  # the unpacking workers exit while the install runs
    say(f"Prepared {packages(len(todo))} in {elapsed(time.perf_counter() - prep_start)}")
    return todo, archives


def _todo(
    chosen: list[Chosen], installed: Mapping[str, InstalledDist], request: Request
) -> list[Chosen]:
    """The chosen packages that are not installed as they are (or are to be reinstalled)."""
    return [
        c for c in chosen if _needs_install(c.name, c.version, installed, request.reinstall,
                                             request.reinstall_packages, c.direct_url)
    ]  # fmt: skip


def _report_resolution(
    chosen: list[Chosen],
    todo: list[Chosen],
    spec: ResolveInput,
    request: Request,
    installed: Mapping[str, InstalledDist],
    cache: Any,
    took: float,
) -> bool:
    """Print what the resolution found; False when the run ends here (nothing to install, or
    ``--dry-run``)."""
    now = time.perf_counter()
    say(f"Resolved {packages(len(chosen))} in {elapsed(took)}")
    if request.hash_mode:
        _check_hash_coverage(chosen, spec.hashes)
    if not todo:
        say(f"Audited {packages(len(chosen))} in {elapsed(time.perf_counter() - now)}")
        return False
    if request.dry_run:
        replaced = [installed[c.name] for c in todo if c.name in installed]
        dry_run_report(todo, replaced, cache)
        return False
    return True


def _needs_install(
    name: str,
    version: Any,
    installed: Mapping[str, InstalledDist],
    reinstall_all: bool,
    reinstall: frozenset[str],
    direct_url: str | None = None,
) -> bool:
    """Whether ``name`` at ``version`` (from ``direct_url``'s reference, if any) needs an
    install: a wheel from another file or URL than the installed one's does, at the same
    version too (it was 'Audited' and kept)."""
    from packaging.version import InvalidVersion, Version

    from kea.install.plan import from_same_url

    have = installed.get(name)
    if have is None or reinstall_all or name in reinstall:
        return True
    try:
        if Version(have.version) != Version(str(version)):
            return True
    except InvalidVersion:
        return True
    return not from_same_url(have, direct_url)


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
    installed: Mapping[str, InstalledDist],
    target: Target,
    options: InstallOptions,
    request: Request,
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
            filename=c.file.filename,
        )
        for c in todo
    ]
    reinstall = request.reinstall or request.reinstall_packages
    plan = make_plan(wanted, installed, reinstall=reinstall or [c.name for c in todo])
    report = apply_plan(
        target, plan, link_mode=options.link_mode, compile_bytecode=options.compile_bytecode
    )
    if report.removed:
        say(f"Uninstalled {packages(len(report.removed))} in {elapsed(report.seconds)}")
    say(f"Installed {packages(len(report.installed))} in {elapsed(report.seconds)}")
    change_lines(report.installed, report.removed)
    report.raise_if_interrupted()


# -- preparing archives ---------------------------------------------------------------------------


class Prepared:
    """The "Preparing" bar's count: each wheel once, whether it was prepared while the resolver
    still worked (an early download, before the bar's size is known) or after it. Once the
    resolution is known (``size``), only the wheels it installs count. The bar appears with the
    first wheel counted. ``bar`` makes it (``Progress``); None: no bar (not a TTY, ``-q``,
    ``--no-progress``, ``--dry-run``)."""

    def __init__(self, bar: Callable[[int | None], Any] | None) -> None:
        self._make = bar
        self.progress: Any = None
        self.counted: set[str] = set()  # file names of the wheels prepared, layouts kept
        self._todo: set[str] | None = None  # the file names to install, once known
        self._lock = threading.Lock()  # early wheels are counted from the unpacking threads

    def add(self, filename: str, name: str) -> None:
        with self._lock:
            if filename in self.counted:
                return
            self.counted.add(filename)
            if self._make is None or (self._todo is not None and filename not in self._todo):
                return
            if self.progress is None:
                self.progress = self._make(None)
            self.progress.advance(name)

    def size(self, todo: list[Any]) -> None:
        """The resolution is known: the bar counts the wheels of ``todo`` from now on."""
        with self._lock:
            self._todo = {c.file.filename for c in todo}
            if self._make is None or not todo:
                return
            done = len(self._todo & self.counted)
            if self.progress is None:
                self.progress = self._make(len(todo))
            self.progress.set_total(len(todo), done)

    def close(self) -> None:
        with self._lock:
            if self.progress is not None:
                self.progress.close()
            self.progress, self._make = None, None


async def _prepare(
    todo: list[Any],
    index: Any,
    cache: Any,
    hashes: Mapping[str, frozenset[str]],
    bar: Prepared,
) -> dict[str, Path]:
    """Download (or find in the cache) and unpack every wheel, concurrently; each one's
    install layout is worked out as soon as it is unpacked (``keep_layout``)."""
    import asyncio

    from kea.install.wheel import keep_layout

    sem = asyncio.Semaphore(PREPARE_AT_ONCE)
    out: dict[str, Path] = {}
    bar.size(todo)

    async def one(c: Any) -> None:
        async with sem:
            archive = await _archive_for(c, index, cache, hashes.get(c.name))
        if c.file.filename not in bar.counted:  # else its download kept the layout already
            keep_layout(archive)  # on the loop, as ``_open_index``'s are
        out[c.name] = archive
        bar.add(c.file.filename, c.name)

    tasks = [asyncio.create_task(one(c)) for c in todo]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return out


async def _archive_for(c: Any, index: Any, cache: Any, allowed: frozenset[str] | None) -> Path:
    """The unpacked archive of candidate ``c``: from the cache, a local file, or a download."""

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
        archive = await cache.unpack_local_wheel(path, file.hashes or None)
    else:
        archive = await index.fetch_wheel(file)
    if allowed and f"sha256:{archive.name}" not in allowed:
        raise KeaError(
            f"hash mismatch for {file.filename}: its sha256 is {archive.name}, "
            "which is none of the --hash values given",
            hint="the file changed on the index, or the requirements file is out of date",
        )
    return Path(archive)


def _cached_archive(c: Chosen, lookup: CachedIndex, allowed: frozenset[str] | None) -> Path | None:
    """``_archive_for`` answered from the cache alone: None where it would download, unpack a
    local file, or raise (it will, on the run that goes through ``_pipeline``)."""
    file = c.file
    try:
        expected = _expected_hashes(file, allowed)
    except KeaError:
        return None
    if expected and expected != file.hashes:
        import msgspec

        file = msgspec.structs.replace(file, hashes=expected)
    archive = lookup.answer_archive(file)
    if archive is None or (allowed and f"sha256:{archive.name}" not in allowed):
        return None
    return archive


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
async def _open_index(
    settings: Settings, cache: Any, lookup: CachedIndex, *, bar: Prepared, dry_run: bool
) -> AsyncIterator[Any]:
    """The run's IndexClient. Its HTTP client is made on the first request that needs the
    network (never with ``--offline``): a resolve answered from a fresh cache imports neither
    kea.http nor aiohttp. Unless ``dry_run``, each wheel it unpacks has its layout kept at
    once and counts on ``bar``."""
    from kea.index.client import IndexClient

    opened: list[Any] = []

    async def connect() -> Any:
        from kea.http.client import HttpClient

        http = HttpClient(settings)
        await http.open()
        opened.append(http)
        return http

    client = IndexClient(settings, None, cache, connect=connect, cached=lookup)
    if not dry_run:
        from kea.install.wheel import keep_layout

        def unpacked(archive: Path, filename: str) -> None:
            keep_layout(archive)
            bar.add(filename, filename.partition("-")[0])

        client.unpacked = unpacked
    try:
        yield client
    finally:
        for http in opened:
            await http.close()
