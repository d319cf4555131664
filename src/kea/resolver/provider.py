"""The bridge between the pure resolver core and the index: candidates, metadata, prefetch.

Three layers, each usable on its own:

- ``CandidatePolicy`` + ``select_candidates`` (``kea.resolver.provider_select``, re-exported
  here): the installable versions of a package on the target, and why other files were left out.
- ``Prefetcher``: owns the asyncio side. The resolver runs synchronously in a worker thread and
  asks for versions and metadata through blocking calls; the event loop (in the calling thread)
  does the I/O, ~50 requests in flight. When metadata arrives, the pages of its dependencies are
  requested at once, and for each page the metadata of its best candidate (speculatively).
- ``IndexProvider``: the resolver's Provider protocol on top of a ``Prefetcher``.

The resolver core never imports this module; this module never imports ``kea.http``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import InvalidStateError
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from kea.dist.metadata import CoreMetadata
from kea.dist.tags import TagRanker
from kea.errors import KeaError
from kea.index.models import DistFile, ProjectPage
from kea.resolver.deps import Requirements
from kea.resolver.provider_hints import other_index_hints
from kea.resolver.provider_select import (
    Candidate,
    CandidatePolicy,
    Selection,
    _marker_holds,
    _parse_req,
    dependencies_of,
    needed_extra,
    select_candidates,
)

log = logging.getLogger("kea.resolver.provider")

T = TypeVar("T")


# -- the async side ----------------------------------------------------------------------------


class IndexSource(Protocol):
    """What the provider needs from the index client (``kea.index.client.IndexClient``)."""

    async def project_pages(self, name: str) -> list[ProjectPage]:
        """The pages listing ``name`` (per the index strategy); ``[]`` when not found."""
        ...

    async def metadata(self, name: str, file: DistFile) -> CoreMetadata:
        """Core metadata of one distribution file."""
        ...


class Prefetcher:
    """Blocking accessors for a worker thread, concurrent I/O on an event loop.

    Construct it inside the loop's thread (``loop`` running), hand ``versions``/``metadata`` to
    the resolver thread. Each page and each metadata is requested once; failures are kept and
    re-raised to whoever asks for that result.
    """

    def __init__(
        self,
        source: IndexSource,
        policy: CandidatePolicy,
        loop: asyncio.AbstractEventLoop,
        *,
        concurrency: int = 50,
        speculate: bool = True,
    ) -> None:
        self.source = source
        self.policy = policy
        self.loop = loop
        self.speculate = speculate
        self._sem = asyncio.Semaphore(concurrency)
        self._pages: dict[str, asyncio.Future[Selection]] = {}
        self._meta: dict[tuple[str, Version], asyncio.Future[CoreMetadata]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.requested_pages = 0
        self.requested_metadata = 0
        self._closed = False

    # -- on the loop -------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def page_future(self, name: str) -> asyncio.Future[Selection]:
        name = canonicalize_name(name)
        fut = self._pages.get(name)
        if fut is None:
            fut = self.loop.create_future()
            self._pages[name] = fut
            self.requested_pages += 1
            self._spawn(self._fetch_page(name, fut))
        return fut

    @staticmethod
    async def _settle(fut: asyncio.Future[T], work: Awaitable[T]) -> T | None:
        """Await ``work`` into ``fut``: its result, or None when it failed (the exception is
        kept in ``fut`` for the asker; a cancellation is re-raised too)."""
        try:
            result = await work
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return None
        if not fut.done():
            fut.set_result(result)
        return result

    async def _fetch_page(self, name: str, fut: asyncio.Future[Selection]) -> None:
        async def select() -> Selection:
            async with self._sem:
                pages = await self.source.project_pages(name)
            return select_candidates(name, pages, self.policy)

        sel = await self._settle(fut, select())
        if sel is None:
            return
        if self.speculate and sel.candidates:
            self.metadata_future(sel.candidates[0])

    def metadata_future(self, cand: Candidate) -> asyncio.Future[CoreMetadata]:
        key = (cand.name, cand.version)
        fut = self._meta.get(key)
        if fut is None:
            fut = self.loop.create_future()
            self._meta[key] = fut
            self.requested_metadata += 1
            self._spawn(self._fetch_metadata(cand, fut))
        return fut

    async def _fetch_metadata(self, cand: Candidate, fut: asyncio.Future[CoreMetadata]) -> None:
        async def fetch() -> CoreMetadata:
            async with self._sem:
                return await self.source.metadata(cand.name, cand.file)

        meta = await self._settle(fut, fetch())
        if meta is None:
            return
        if self.speculate and not self._closed:
            for req in dependencies_of(meta, (), self.policy.markers):
                self.page_future(req.name)

    def prefetch_pages(self, names: Iterable[str]) -> None:
        for name in names:
            self.page_future(name)

    async def aclose(self) -> None:
        """Cancel speculative work still in flight."""
        self._closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        futures: list[asyncio.Future[Any]] = [*self._pages.values(), *self._meta.values()]
        for fut in futures:
            if fut.done() and not fut.cancelled():
                fut.exception()  # mark retrieved: no "never retrieved" warnings

    # -- from the worker thread --------------------------------------------------------------

    # Every hop to the loop (a self-pipe write, then the GIL handed back and forth) costs far
    # more than the answer when it is already known: a warm resolve's loop runs ahead of the
    # resolver (speculation), so most asks find a done future and need no hop. Reading the
    # dicts and a done future from this thread is safe: entries are only ever added, and a
    # future's result never changes once set.

    def _wait(self, ready: asyncio.Future[T] | None, make: Callable[[], asyncio.Future[T]]) -> T:
        if ready is not None and ready.done() and not ready.cancelled():
            return ready.result()

        async def get() -> T:
            return await asyncio.shield(make())

        return asyncio.run_coroutine_threadsafe(get(), self.loop).result()

    def versions(self, name: str) -> Selection:
        """Blocking: the candidates of ``name``."""
        ready = self._pages.get(canonicalize_name(name))
        return self._wait(ready, lambda: self.page_future(name))

    def metadata(self, cand: Candidate) -> CoreMetadata:
        """Blocking: the metadata of one candidate."""
        ready = self._meta.get((cand.name, cand.version))
        return self._wait(ready, lambda: self.metadata_future(cand))

    def prefetch(self, names: Iterable[str]) -> None:
        """Non-blocking: start fetching these pages (no hop when all are asked for already)."""
        names = [n for n in names if canonicalize_name(n) not in self._pages]
        if names:
            self.loop.call_soon_threadsafe(self.prefetch_pages, names)

    def want_metadata(self, cand: Candidate) -> None:
        """Non-blocking: start fetching the metadata of ``cand`` (no hop when asked already)."""
        if (cand.name, cand.version) not in self._meta:
            self.loop.call_soon_threadsafe(self.metadata_future, cand)


async def run_in_worker(fn: Callable[[], T]) -> T:
    """Run the synchronous ``fn`` (the resolver) in a thread while this loop does the I/O."""
    loop = asyncio.get_running_loop()
    result: ThreadFuture[T] = ThreadFuture()

    def target() -> None:
        # A cancelled run (Ctrl-C) closes the loop under the worker: whatever it then raises or
        # returns has no one left to tell, and must not surface as a thread traceback.
        try:
            value = fn()
        except BaseException as e:
            if not result.cancelled():
                with contextlib.suppress(InvalidStateError):
                    result.set_exception(e)
            return
        if not result.cancelled():
            with contextlib.suppress(InvalidStateError):
                result.set_result(value)

    thread = threading.Thread(target=target, name="kea-resolver", daemon=True)
    thread.start()
    return await asyncio.wrap_future(result, loop=loop)


# -- the resolver's Provider ------------------------------------------------------------------


class IndexProvider:
    """``kea.resolver.protocol.Provider`` over a ``Prefetcher`` (called from the worker thread).

    ``direct`` maps names given as ``name @ URL`` to their one candidate: no index is asked about
    them. Requires-Python is checked again against the metadata (an index page may not list it).
    """

    def __init__(
        self,
        prefetcher: Prefetcher,
        direct: Mapping[str, Candidate] | None = None,
        *,
        index_strategy: str = "first-index",
    ) -> None:
        self.pre = prefetcher
        self.index_strategy = index_strategy
        self.direct = dict(direct or {})
        self.selections: dict[str, Selection] = {}
        self._metadata: dict[tuple[str, Version], CoreMetadata] = {}

    def candidate(self, name: str, version: Version) -> Candidate | None:
        if name in self.direct:
            cand = self.direct[name]
            return cand if cand.version == version else None
        sel = self.selections.get(name)
        if sel is None:
            return None
        for c in sel.candidates:
            if c.version == version:
                return c
        return None

    def versions(self, name: str) -> Any:
        from kea.resolver.protocol import Unavailable

        if name in self.direct:
            return [self.direct[name].version]
        sel = self.pre.versions(name)
        self.selections[name] = sel
        if not sel.candidates:
            return Unavailable(sel.reason())
        return [c.version for c in sel.candidates]

    def version_tiers(self, name: str) -> list[list[Version]] | None:
        """``unsafe-first-match``: the first index's versions are exhausted before the next's."""
        if self.index_strategy != "unsafe-first-match" or name in self.direct:
            return None
        sel = self.selections.get(name)
        return None if sel is None else sel.tiers()

    def dependencies(self, name: str, version: Version) -> Any:
        from kea.resolver.protocol import Unavailable

        cand = self.candidate(name, version)
        if cand is None:
            return Unavailable("is not available")
        try:
            meta = self.pre.metadata(cand)
        except KeaError as e:
            if _is_network_error(e):
                raise
            return Unavailable(f"has invalid metadata ({e.message})")
        self._metadata[(name, version)] = meta
        if canonicalize_name(meta.name) != name:
            return Unavailable(f"has metadata for another package ({meta.name})")
        if not self.pre.policy.python_ok(meta.requires_python):
            return Unavailable(f"requires Python {meta.requires_python}")

        def parse(line: str) -> Requirement | None:
            try:
                return _parse_req(line)
            except InvalidRequirement:
                log.debug("%s %s: ignoring invalid Requires-Dist %r", name, version, line)
                return None

        lines = [(needed_extra(line), line) for line in meta.requires_dist]
        reqs = Requirements(lines, parse)
        base = [canonicalize_name(r.name) for r in reqs if r.marker is None]
        if base:
            self.pre.prefetch(base)
        return reqs

    def prefetch(self, names: Sequence[str]) -> None:
        self.pre.prefetch(n for n in names if n not in self.direct)

    def on_decision(self, name: str, version: Version) -> None:
        cand = self.candidate(name, version)
        if cand is not None:
            self.pre.want_metadata(cand)

    def metadata_of(self, name: str, version: Version) -> CoreMetadata | None:
        return self._metadata.get((name, version))


def _is_network_error(e: KeaError) -> bool:
    try:
        from kea.http.errors import HttpError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(e, HttpError)


@dataclass
class ResolveInput:
    """What ``kea pip install`` asks the resolver for (parsed requirements and policies)."""

    requirements: list[Requirement]
    constraints: list[Requirement] = field(default_factory=list)
    overrides: list[Requirement] = field(default_factory=list)
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    installed: Mapping[str, str] = field(default_factory=dict)  # name -> version
    upgrade: bool = False
    upgrade_packages: frozenset[str] = frozenset()
    no_deps: bool = False
    prerelease: str = "if-necessary-or-explicit"
    resolution: str = "highest"
    exclude_newer: datetime | None = None
    only_binary: Sequence[str] = ()
    no_binary: Sequence[str] = ()
    index_strategy: str = "first-index"
    # Start downloading pinned wheels while resolving (``kea.resolver.provider_fetch``); only
    # for a run that will install them (never ``--dry-run``), through ``source.fetch_wheel``.
    fetch_early: bool = False


@dataclass(frozen=True)
class Chosen:
    """One package of the solution, with the file to install."""

    name: str
    version: Version
    file: DistFile
    display_name: str
    direct_url: str | None = None  # direct_url.json text for ``name @ URL`` requirements


class InterpreterFacts(Protocol):
    """What the bridge needs to know about the target (``kea.install.environment.Interpreter``)."""

    @property
    def tags(self) -> list[str]: ...

    @property
    def markers(self) -> dict[str, str]: ...

    @property
    def python_full_version(self) -> str: ...


def direct_candidate(req: Requirement) -> Candidate:
    """The candidate for ``name @ URL`` (a wheel URL or file)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    from kea.auth.redact import redact_url

    assert req.url is not None
    url = req.url
    filename = url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    from urllib.parse import unquote

    filename = unquote(filename)
    try:
        wname, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        raise KeaError(
            f"building from source is not supported yet: {redact_url(url)}",
            hint="point to a wheel (.whl) instead",
        ) from None
    name = canonicalize_name(req.name)
    if canonicalize_name(wname) != name:
        raise KeaError(f"{req.name} @ {redact_url(url)}: the wheel is for {wname}, not {req.name}")
    hashes: dict[str, str] = {}
    if "#" in url:
        frag = url.split("#", 1)[1]
        algo, _, digest = frag.partition("=")
        if algo in ("sha256", "sha384", "sha512") and digest:
            hashes[algo] = digest.lower()
    file = DistFile(filename=filename, url=url.split("#", 1)[0], hashes=hashes)
    return Candidate(name, version, file, index_url=url, rank=0)


def _direct_url_json(cand: Candidate) -> str:
    import json

    from kea.cache.store import strip_credentials

    archive: dict[str, Any] = {}
    if cand.file.hashes:
        algo, digest = next(iter(sorted(cand.file.hashes.items())))
        archive = {"hash": f"{algo}={digest}", "hashes": dict(cand.file.hashes)}
    return json.dumps({"url": strip_credentials(cand.file.url), "archive_info": archive})


async def resolve_request(
    spec: ResolveInput,
    source: IndexSource,
    interpreter: InterpreterFacts,
    *,
    concurrency: int = 50,
) -> list[Chosen]:
    """Resolve ``spec`` for ``interpreter`` with pages and metadata from ``source``.

    The PubGrub core runs in a worker thread; this coroutine's loop serves its I/O. Raises
    ``ResolutionError`` (with hints) when there is no solution.
    """
    from kea.resolver.protocol import Options, ResolutionError
    from kea.resolver.solver import resolve

    direct: dict[str, Candidate] = {}
    requirements: list[Requirement] = []
    for req in spec.requirements:
        if req.url:
            cand = direct_candidate(req)
            direct[cand.name] = cand
            pinned = Requirement(str(req).split("@", 1)[0].strip() + f"=={cand.version}")
            pinned.marker = req.marker
            requirements.append(pinned)
        else:
            requirements.append(req)
    pins: dict[str, set[Version]] = {}
    for req in (*requirements, *spec.constraints, *spec.overrides):
        for sp in req.specifier:
            if sp.operator in ("==", "===") and "*" not in sp.version:
                try:
                    pins.setdefault(canonicalize_name(req.name), set()).add(Version(sp.version))
                except ValueError:
                    pass
    policy = CandidatePolicy(
        tags=TagRanker(interpreter.tags),
        python_version=Version(interpreter.python_full_version),
        markers=interpreter.markers,
        only_binary=spec.only_binary,
        no_binary=spec.no_binary,
        exclude_newer=spec.exclude_newer,
        pinned={k: frozenset(v) for k, v in pins.items()},
        allowed_hashes=spec.hashes,
    )
    preferences: dict[str, str] = {}
    if not spec.upgrade:
        preferences = {n: v for n, v in spec.installed.items() if n not in spec.upgrade_packages}
    options = Options(
        prerelease=spec.prerelease,  # type: ignore[arg-type]
        resolution=spec.resolution,  # type: ignore[arg-type]
        environment=interpreter.markers,
        constraints=spec.constraints,
        overrides=spec.overrides,
        preferences=preferences,
    )
    loop = asyncio.get_running_loop()
    pre = Prefetcher(source, policy, loop, concurrency=concurrency)
    provider = IndexProvider(pre, direct, index_strategy=spec.index_strategy)
    pre.prefetch_pages(canonicalize_name(r.name) for r in requirements if r.name not in direct)
    early = _early_fetch(spec, source, requirements, direct, interpreter.markers)
    if early is not None:
        for name in early.pins:
            early.watch(name, pre.page_future(name))
    try:
        if spec.no_deps:
            solution = await run_in_worker(lambda: _no_deps(requirements, provider, options))
        else:
            resolution = await run_in_worker(lambda: resolve(requirements, provider, options))
            solution = dict(resolution.packages)
    except ResolutionError as e:
        for sel in provider.selections.values():
            hint = sel.hint()
            if hint:
                e.add_hint(hint)
        auth = getattr(source, "auth_failures", {}) or {}
        for name, errors in auth.items():
            if errors:
                e.add_hint(f"{name} was refused by an index: {errors[0].message}")
        for hint in await other_index_hints(e.explanation, provider.selections, source, policy):
            e.add_hint(hint)
        raise
    finally:
        await pre.aclose()
        if early is not None:
            await early.aclose()
    out: list[Chosen] = []
    for name, version in sorted(solution.items()):
        chosen = provider.candidate(name, version)
        if chosen is None:  # pragma: no cover - the solver only picks offered versions
            raise KeaError(f"internal error: {name}=={version} was chosen but never offered")
        meta = provider.metadata_of(name, version)
        out.append(
            Chosen(
                name=name,
                version=version,
                file=chosen.file,
                display_name=meta.name if meta else name,
                direct_url=_direct_url_json(chosen) if name in direct else None,
            )
        )
    return out


def _early_fetch(
    spec: ResolveInput,
    source: IndexSource,
    requirements: Sequence[Requirement],
    direct: Mapping[str, Candidate],
    markers: Mapping[str, str],
) -> Any:
    """The ``EarlyFetch`` of this run, or None (not asked for, or nothing to fetch)."""
    if not spec.fetch_early or not hasattr(source, "fetch_wheel"):
        return None
    from kea.resolver.provider_fetch import EarlyFetch, early_pins

    skip = [*direct, *spec.hashes, *(r.name for r in spec.overrides)]
    pins = early_pins(requirements, markers=markers, skip=skip, installed=spec.installed)
    return EarlyFetch(source, pins) if pins else None  # type: ignore[arg-type]


def _no_deps(
    requirements: Sequence[Requirement], provider: IndexProvider, options: Any
) -> dict[str, Version]:
    """``--no-deps``: the best version of each requirement alone (markers evaluated)."""
    from kea.resolver.protocol import ResolutionError, Unavailable

    env = dict(options.environment or {})
    out: dict[str, Version] = {}
    overrides = {canonicalize_name(r.name): r for r in options.overrides}
    constraints: dict[str, list[Requirement]] = {}
    for c in options.constraints:
        constraints.setdefault(canonicalize_name(c.name), []).append(c)
    for req in requirements:
        if req.marker is not None and not _marker_holds(req.marker, env, ""):
            continue
        name = canonicalize_name(req.name)
        specs = [overrides[name]] if name in overrides else [req, *constraints.get(name, [])]
        found = provider.versions(name)
        if isinstance(found, Unavailable):
            raise ResolutionError(f"Because {name} {found.reason}, we can't install it.")
        allowed = [
            v
            for v in found
            if all(r.specifier.contains(v, prereleases=True) for r in specs)
            and (not v.is_prerelease or options.prerelease == "allow" or _explicit_pre(specs))
        ]
        if not allowed:
            raise ResolutionError(
                f"Because there is no version of {req} available, we can't install it."
            )
        best = max(allowed) if options.resolution == "highest" else min(allowed)
        if name in out and out[name] != best:
            raise ResolutionError(
                f"Because you require {name} twice with different versions, we can't install it."
            )
        out[name] = best
        provider.dependencies(name, best)  # loads metadata (display name); deps ignored
    return out


def _explicit_pre(specs: Sequence[Requirement]) -> bool:
    return any(sp.prereleases for r in specs for sp in r.specifier)


__all__ = [
    "Candidate",
    "CandidatePolicy",
    "Chosen",
    "IndexProvider",
    "IndexSource",
    "Prefetcher",
    "ResolveInput",
    "Selection",
    "dependencies_of",
    "direct_candidate",
    "resolve_request",
    "run_in_worker",
    "select_candidates",
]
