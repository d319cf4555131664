"""The bridge between the pure resolver core and the index: candidates, metadata, prefetch.

Three layers, each usable on its own:

- ``CandidatePolicy`` + ``select_candidates`` (``kea.resolver.provider_select``, re-exported
  here): the installable versions of a package on the target, and why other files were left out.
- ``Prefetcher`` (``kea.resolver.prefetch``, re-exported here): owns the asyncio side. The
  resolver runs synchronously in a worker thread and asks for versions and metadata through
  blocking calls; the event loop (in the calling thread) does the I/O, ~50 requests in flight.
  When metadata arrives, the pages of its dependencies are requested at once, and for each page
  the metadata of its best candidate (speculatively).
- ``IndexProvider``: the resolver's Provider protocol on top of a ``Prefetcher``, or of a
  ``CacheOnly`` (``kea.resolver.provider_cached``) when ``resolve_from_cache`` tries to answer
  the whole resolve from the cache in the calling thread, with no event loop.

The resolver core never imports this module; this module never imports ``kea.http``, and
imports asyncio only for ``resolve_request``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from packaging.version import Version

import kea.log
from kea.dist import parsed
from kea.dist.metadata import CoreMetadata
from kea.dist.names import canonicalize_name
from kea.dist.parsed import InvalidRequirement
from kea.dist.tags import TagRanker
from kea.errors import KeaError
from kea.index.models import DistFile
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

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from kea.resolver.prefetch import IndexSource
    from kea.resolver.provider_cached import CacheLookup

log = kea.log.get("kea.resolver.provider")


# -- the resolver's Provider ------------------------------------------------------------------


class Bridge(Protocol):
    """What ``IndexProvider`` asks its pages and metadata of: a ``Prefetcher`` (blocking calls
    from the resolver's worker thread) or a ``CacheOnly``."""

    policy: CandidatePolicy

    def versions(self, name: str) -> Selection: ...

    def metadata(self, cand: Candidate) -> CoreMetadata: ...

    def prefetch(self, names: Iterable[str]) -> None: ...

    def want_metadata(self, cand: Candidate) -> None: ...


class IndexProvider:
    """``kea.resolver.protocol.Provider`` over a ``Bridge`` (called from the resolver's thread).

    ``direct`` maps names given as ``name @ URL`` to their one candidate: no index is asked about
    them. Requires-Python is checked again against the metadata (an index page may not list it).
    """

    def __init__(
        self,
        prefetcher: Bridge,
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

    def decided(self, name: str, version: Version) -> None:
        """The solver's decision for ``name`` stood its propagation (``Solver``): passed on to
        a bridge that acts on it (the ``Prefetcher``: early downloads)."""
        tell: Callable[[Candidate], None] | None = getattr(self.pre, "decided", None)
        if tell is None or name in self.direct:
            return
        cand = self.candidate(name, version)
        if cand is not None:
            tell(cand)

    def metadata_of(self, name: str, version: Version) -> CoreMetadata | None:
        return self._metadata.get((name, version))


def _is_network_error(e: KeaError) -> bool:
    try:
        from kea.http.errors import HttpError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(e, HttpError)


class ResolveInput(msgspec.Struct):
    """What ``kea pip install`` asks the resolver for (parsed requirements and policies).

    Records here are msgspec Structs: a dataclass generates and compiles its methods at import.
    """

    requirements: list[Requirement]
    constraints: list[Requirement] = msgspec.field(default_factory=list)
    overrides: list[Requirement] = msgspec.field(default_factory=list)
    hashes: Mapping[str, frozenset[str]] = msgspec.field(default_factory=dict)
    installed: Mapping[str, str] = msgspec.field(default_factory=dict)  # name -> version
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
    # for a run that will install them (never ``--dry-run``), through ``source.start_wheel``.
    fetch_early: bool = False


class Chosen(msgspec.Struct, frozen=True):
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

    from kea.auth.redact import mask_secret_params
    from kea.cache.store import strip_credentials

    archive: dict[str, Any] = {}
    if cand.file.hashes:
        algo, digest = next(iter(sorted(cand.file.hashes.items())))
        archive = {"hash": f"{algo}={digest}", "hashes": dict(cand.file.hashes)}
    # PEP 610: no credential in it. A signed query's values are credentials too (and the
    # file is world-readable): masked, as in any output; the rest of the URL kept as it is.
    url = mask_secret_params(strip_credentials(cand.file.url))
    return json.dumps({"url": url, "archive_info": archive})


class _Setup(msgspec.Struct):
    """What a resolve of ``spec`` starts from, with either bridge."""

    requirements: list[Requirement]  # ``name @ URL`` ones pinned to their wheel's version
    direct: dict[str, Candidate]
    policy: CandidatePolicy
    options: Any  # kea.resolver.protocol.Options


def _pinned(req: Requirement, cand: Candidate) -> Requirement:
    """``req`` (``name[extras] @ URL``) as ``name[extras]==V``, V the version of its one
    candidate ``cand``; its marker kept."""
    from packaging.requirements import Requirement

    pinned = Requirement(str(req).split("@", 1)[0].strip() + f"=={cand.version}")
    pinned.marker = req.marker
    return pinned


def _setup(spec: ResolveInput, interpreter: InterpreterFacts) -> _Setup:
    from kea.resolver.protocol import Options

    direct: dict[str, Candidate] = {}
    requirements: list[Requirement] = []
    for req in spec.requirements:
        if req.url:
            cand = direct_candidate(req)
            direct[cand.name] = cand
            requirements.append(_pinned(req, cand))
        else:
            requirements.append(req)
    # A constraint with a URL (``name @ URL`` in a -c file, as pip and uv read it) says where
    # the package comes from if anything needs it: its file is the one candidate, at its
    # version. It was dropped without a word (only its name was kept).
    constraints: list[Requirement] = []
    for req in spec.constraints:
        if req.url:
            cand = direct_candidate(req)
            direct.setdefault(cand.name, cand)  # a requirement's own URL comes first
            constraints.append(_pinned(req, cand))
        else:
            constraints.append(req)
    pins: dict[str, set[Version]] = {}
    for req in (*requirements, *constraints, *spec.overrides):
        for op, version in parsed.specifier_parts(parsed.specifier_text(req))[0]:
            if op in ("==", "===") and "*" not in version:
                try:
                    pins.setdefault(canonicalize_name(req.name), set()).add(Version(version))
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
        constraints=constraints,
        overrides=spec.overrides,
        preferences=preferences,
    )
    return _Setup(requirements, direct, policy, options)


def _solve(setup: _Setup, provider: IndexProvider, spec: ResolveInput) -> dict[str, Version]:
    from kea.resolver.solver import resolve

    if spec.no_deps:
        return _no_deps(setup.requirements, provider, setup.options)
    return dict(resolve(setup.requirements, provider, setup.options).packages)


def resolve_from_cache(
    spec: ResolveInput, lookup: CacheLookup, interpreter: InterpreterFacts
) -> list[Chosen] | None:
    """``resolve_request`` answered from the cache alone, in this thread, with no event loop:
    None when something is not in the cache (``NotCached``), or when there is no solution (an
    error that ``resolve_request`` explains better, with hints that may need the network)."""
    from kea.resolver.provider_cached import CacheOnly, NotCached
    from kea.resolver.provider_memo import Memo

    memo = Memo.for_run(spec, lookup, interpreter)
    if memo is not None:
        recalled = memo.recall()
        if recalled is not None:
            return recalled
        memo.watch()
    setup = _setup(spec, interpreter)
    provider = IndexProvider(
        CacheOnly(lookup, setup.policy), setup.direct, index_strategy=spec.index_strategy
    )
    try:
        solution = _solve(setup, provider, spec)
    except (NotCached, KeaError) as e:  # ResolutionError is a KeaError
        log.debug("not answered from the cache alone: %s", e)
        return None
    chosen = _chosen(solution, provider, setup.direct)
    if memo is not None:
        memo.remember(chosen)
    return chosen


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
    import asyncio

    from kea.resolver.prefetch import Prefetcher, run_in_worker
    from kea.resolver.protocol import ResolutionError

    setup = _setup(spec, interpreter)
    requirements, direct, policy = setup.requirements, setup.direct, setup.policy
    loop = asyncio.get_running_loop()
    from kea.resolver.provider_fetch import early_pins

    skip = [*direct, *(r.name for r in spec.overrides)]
    pins = early_pins(requirements, markers=interpreter.markers, skip=skip)
    pre = Prefetcher(source, policy, loop, concurrency=concurrency, pins=pins)
    provider = IndexProvider(pre, direct, index_strategy=spec.index_strategy)
    early = _early_fetch(spec, source, requirements, pins, interpreter.markers)
    if early is not None:
        pre.on_page(early.page_ready)
        pre.on_decided(early.decided)
    pre.prefetch_pages(canonicalize_name(r.name) for r in requirements if r.name not in direct)
    kept: set[str] = set()
    try:
        solution = await run_in_worker(lambda: _solve(setup, provider, spec))
        chosen = _chosen(solution, provider, direct)
        kept = {c.file.url for c in chosen}
    except ResolutionError as e:
        for sel in provider.selections.values():
            hint = sel.hint()
            if hint:
                e.add_hint(hint)
        from kea.resolver.incompat import Incompatibility

        if isinstance(e.incompatibility, Incompatibility):
            from kea.resolver.report import left_out_hints

            sels = provider.selections
            for hint in left_out_hints(
                e.incompatibility, lambda n: sels[n].left_out() if n in sels else {}
            ):
                e.add_hint(hint)
        auth = getattr(source, "auth_failures", {}) or {}
        for name, errors in auth.items():
            if errors:
                e.add_hint(f"{name} was refused by an index: {errors[0].message}")
        for hint in await other_index_hints(e.explanation, provider.selections, source, policy):
            e.add_hint(hint)
        settings = getattr(source, "settings", None)
        if settings is not None and not settings.indexes and not settings.find_links:
            # --no-index without --find-links: "not found" only because nothing was asked
            e.add_hint("no index and no --find-links: pass --find-links DIR (or drop --no-index)")
        raise
    finally:
        await pre.aclose()
        if early is not None:
            await early.aclose(keep=kept)
    return chosen


def _chosen(
    solution: Mapping[str, Version], provider: IndexProvider, direct: Mapping[str, Candidate]
) -> list[Chosen]:
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
    pins: Mapping[str, Version],
    markers: Mapping[str, str],
) -> Any:
    """The ``EarlyFetch`` of this run, or None (not asked for). ``pins``: the run's
    ``early_pins`` (direct references and overrides left out already)."""
    if not spec.fetch_early or not hasattr(source, "start_wheel"):
        return None
    from kea.resolver.provider_fetch import EarlyFetch, locked, narrowed

    pins = narrowed(pins, skip=spec.hashes, installed=spec.installed)
    whole = locked(requirements, pins, markers=markers, installed=spec.installed)
    return EarlyFetch(
        source,  # type: ignore[arg-type]
        pins,
        whole=whole,
        skip=spec.hashes,
        installed=spec.installed,
    )


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
    return any(parsed.specifier_parts(parsed.specifier_text(r))[1] for r in specs)


__all__ = [
    "Candidate",
    "CandidatePolicy",
    "Chosen",
    "IndexProvider",
    "ResolveInput",
    "Selection",
    "dependencies_of",
    "direct_candidate",
    "resolve_from_cache",
    "resolve_request",
    "select_candidates",
]
