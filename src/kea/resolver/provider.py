"""The bridge between the pure resolver core and the index: candidates, metadata, prefetch.

Three layers, each usable on its own:

- ``CandidatePolicy`` + ``select_candidates``: from the project pages of a package, the versions
  that can be installed on the target interpreter (wheel tags, ``Requires-Python``, yanked unless
  pinned ``==``, ``--only-binary``/``--no-binary``, ``--exclude-newer``), best wheel per version,
  plus the reasons other files were rejected (for the failure hints).
- ``Prefetcher``: owns the asyncio side. The resolver runs synchronously in a worker thread and
  asks for versions and metadata through blocking calls; the event loop (in the calling thread)
  does the I/O, ~50 requests in flight. When metadata arrives, the pages of its dependencies are
  requested at once, and for each page the metadata of its best candidate (speculatively).
- ``IndexProvider``: the resolver's Provider protocol on top of a ``Prefetcher``.

The resolver core never imports this module; this module never imports ``kea.http``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from kea.dist.metadata import CoreMetadata
from kea.dist.tags import TagRanker
from kea.errors import KeaError
from kea.index.models import DistFile, ProjectPage

log = logging.getLogger("kea.resolver.provider")

T = TypeVar("T")

ALL = ":all:"
NONE = ":none:"


# -- candidates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """One installable version of a package: the best wheel of that version for the target."""

    name: str  # canonical
    version: Version
    file: DistFile
    index_url: str  # the page the file was listed on
    rank: int = 0  # tag rank of the wheel (lower is better)

    @property
    def yanked(self) -> bool:
        return self.file.is_yanked

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass
class Selection:
    """The candidates of one package (newest first) and why other files were left out."""

    name: str
    candidates: list[Candidate] = field(default_factory=list)
    rejected: dict[str, list[str]] = field(default_factory=dict)  # reason -> filenames
    pages: list[ProjectPage] = field(default_factory=list)

    def by_version(self) -> dict[Version, Candidate]:
        return {c.version: c for c in self.candidates}

    def hint(self) -> str | None:
        """One sentence on why nothing (or little) is installable, for the failure explanation."""
        if self.candidates:
            return None
        if not self.pages or not any(p.files for p in self.pages):
            return f"{self.name} was not found in the package indexes"
        for reason in ("sdist", "no-binary", "tags", "requires-python", "yanked", "exclude-newer"):
            files = self.rejected.get(reason)
            if not files:
                continue
            if reason in ("sdist", "no-binary"):
                return f"building from source is not supported yet: {files[-1]}"
            if reason == "tags":
                return f"no wheel of {self.name} is compatible with the target interpreter"
            if reason == "requires-python":
                return f"every version of {self.name} requires a different Python version"
            if reason == "yanked":
                return f"every version of {self.name} is yanked (pin one with == to use it)"
            return f"every version of {self.name} was published after --exclude-newer"
        return None


def _binary_rule(values: Iterable[str]) -> tuple[bool, frozenset[str]]:
    """``--only-binary``/``--no-binary`` values -> (applies to all, canonical names)."""
    everything = False
    names: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item == ALL:
                everything, names = True, set()
            elif item == NONE:
                everything, names = False, set()
            else:
                names.add(canonicalize_name(item))
    return everything, frozenset(names)


@dataclass
class CandidatePolicy:
    """What the target interpreter accepts and what the user allows."""

    tags: TagRanker
    python_version: Version  # full version of the target, for Requires-Python
    markers: Mapping[str, str] = field(default_factory=dict)  # target marker environment
    only_binary: Sequence[str] = ()
    no_binary: Sequence[str] = ()
    exclude_newer: datetime | None = None
    pinned: Mapping[str, frozenset[Version]] = field(default_factory=dict)  # == pins, yanked ok

    def __post_init__(self) -> None:
        self._only_all, self._only = _binary_rule(self.only_binary)
        self._no_all, self._no = _binary_rule(self.no_binary)
        self._rp_cache: dict[str, bool] = {}

    def wheels_allowed(self, name: str) -> bool:
        if name in self._only:
            return True
        return not (self._no_all or name in self._no)

    def python_ok(self, requires_python: str | None) -> bool:
        if not requires_python:
            return True
        ok = self._rp_cache.get(requires_python)
        if ok is None:
            try:
                ok = SpecifierSet(requires_python).contains(self.python_version, prereleases=True)
            except InvalidSpecifier:
                ok = True  # pip and uv ignore a malformed Requires-Python on an index page
            self._rp_cache[requires_python] = ok
        return ok

    def too_new(self, file: DistFile) -> bool:
        if self.exclude_newer is None or not file.upload_time:
            return False
        try:
            uploaded = datetime.fromisoformat(file.upload_time.replace("Z", "+00:00"))
        except ValueError:
            return False
        limit = self.exclude_newer
        if uploaded.tzinfo is None and limit.tzinfo is not None:
            limit = limit.replace(tzinfo=None)
        elif uploaded.tzinfo is not None and limit.tzinfo is None:
            uploaded = uploaded.replace(tzinfo=None)
        return uploaded > limit


def select_candidates(
    name: str, pages: Sequence[ProjectPage], policy: CandidatePolicy
) -> Selection:
    """The installable versions of ``name`` on ``pages`` (earlier pages win a version)."""
    name = canonicalize_name(name)
    sel = Selection(name=name, pages=list(pages))
    best: dict[Version, Candidate] = {}
    pinned = policy.pinned.get(name, frozenset())
    wheels_ok = policy.wheels_allowed(name)

    def reject(reason: str, file: DistFile) -> None:
        sel.rejected.setdefault(reason, []).append(file.filename)

    for page in pages:
        seen_here: set[Version] = set()
        for file in page.files:
            if not file.is_wheel:
                if file.sdist_info is not None:
                    reject("sdist", file)
                continue
            info = file.wheel_info
            if info is None or canonicalize_name(info[0]) != name:
                continue
            version = info[1]
            if version in best and version not in seen_here:
                continue  # an earlier index already provides this version
            if not wheels_ok:
                reject("no-binary", file)
                continue
            rank = policy.tags.rank(info[2])
            if rank is None:
                reject("tags", file)
                continue
            if not policy.python_ok(file.requires_python):
                reject("requires-python", file)
                continue
            if file.is_yanked and version not in pinned:
                reject("yanked", file)
                continue
            if policy.too_new(file):
                reject("exclude-newer", file)
                continue
            current = best.get(version)
            if current is None or rank < current.rank:
                best[version] = Candidate(name, version, file, page.url, rank)
                seen_here.add(version)
    sel.candidates = sorted(best.values(), key=lambda c: c.version, reverse=True)
    return sel


# -- dependencies ------------------------------------------------------------------------------


def dependencies_of(
    meta: CoreMetadata, extras: Iterable[str], markers: Mapping[str, str]
) -> list[Requirement]:
    """The requirements of ``meta`` that apply on the target for the given extras.

    The base requirements (no extra) are always included; with extras, the requirements whose
    marker holds for ``extra == X`` are added. Unparsable lines are skipped with a debug log.
    """
    extras = sorted({canonicalize_name(e) for e in extras})
    env = dict(markers)
    out: list[Requirement] = []
    for line in meta.requires_dist:
        try:
            req = _parse_req(line)
        except InvalidRequirement:
            log.debug("%s %s: ignoring invalid Requires-Dist %r", meta.name, meta.version, line)
            continue
        if req.marker is None:
            out.append(req)
            continue
        for extra in ("", *extras):
            if _marker_holds(req.marker, env, extra):
                out.append(req)
                break
    return out


_REQ_CACHE: dict[str, Requirement] = {}


def _parse_req(line: str) -> Requirement:
    req = _REQ_CACHE.get(line)
    if req is None:
        req = Requirement(line)
        _REQ_CACHE[line] = req
    return req


def _marker_holds(marker: Marker, env: dict[str, str], extra: str) -> bool:
    env["extra"] = extra
    try:
        return bool(marker.evaluate(env))
    except Exception:  # an undefined marker variable: treat as not applying
        return False


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

    async def _fetch_page(self, name: str, fut: asyncio.Future[Selection]) -> None:
        try:
            async with self._sem:
                pages = await self.source.project_pages(name)
            sel = select_candidates(name, pages, self.policy)
        except BaseException as e:  # kept for the asker
            if not fut.done():
                fut.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        if not fut.done():
            fut.set_result(sel)
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
        try:
            async with self._sem:
                meta = await self.source.metadata(cand.name, cand.file)
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        if not fut.done():
            fut.set_result(meta)
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

    def _wait(self, make: Callable[[], asyncio.Future[T]]) -> T:
        async def get() -> T:
            return await asyncio.shield(make())

        return asyncio.run_coroutine_threadsafe(get(), self.loop).result()

    def versions(self, name: str) -> Selection:
        """Blocking: the candidates of ``name``."""
        return self._wait(lambda: self.page_future(name))

    def metadata(self, cand: Candidate) -> CoreMetadata:
        """Blocking: the metadata of one candidate."""
        return self._wait(lambda: self.metadata_future(cand))

    def prefetch(self, names: Iterable[str]) -> None:
        """Non-blocking: start fetching these pages."""
        names = list(names)
        self.loop.call_soon_threadsafe(self.prefetch_pages, names)


async def run_in_worker(fn: Callable[[], T]) -> T:
    """Run the synchronous ``fn`` (the resolver) in a thread while this loop does the I/O."""
    loop = asyncio.get_running_loop()
    result: ThreadFuture[T] = ThreadFuture()

    def target() -> None:
        try:
            result.set_result(fn())
        except BaseException as e:
            result.set_exception(e)

    thread = threading.Thread(target=target, name="kea-resolver", daemon=True)
    thread.start()
    return await asyncio.wrap_future(result, loop=loop)


__all__ = [
    "Candidate",
    "CandidatePolicy",
    "IndexSource",
    "KeaError",
    "Prefetcher",
    "Selection",
    "dependencies_of",
    "run_in_worker",
    "select_candidates",
]
