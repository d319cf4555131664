"""The asyncio side of the provider bridge: ``Prefetcher`` and ``run_in_worker``.

The resolver runs synchronously in a worker thread and asks for versions and metadata through
blocking calls; the event loop (in the calling thread) does the I/O, ~50 requests in flight. When
metadata arrives, the pages of its dependencies are requested at once, and for each page the
metadata of its best candidate, or of the version a requirement pins (speculatively). This
module never imports ``kea.http``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import InvalidStateError
from typing import Any, Protocol, TypeVar

from packaging.version import Version

from kea.dist.metadata import CoreMetadata
from kea.dist.names import canonicalize_name
from kea.index.models import DistFile, ProjectPage
from kea.resolver.provider_select import (
    Candidate,
    CandidatePolicy,
    Selection,
    dependencies_of,
    select_candidates,
)

T = TypeVar("T")


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
        pins: Mapping[str, Version] | None = None,
    ) -> None:
        self.source = source
        self.policy = policy
        self.loop = loop
        self.speculate = speculate
        # name -> the version a requirement pins: the candidate to speculate on, rather than
        # the best one (a locked file behind the latest releases would fetch both).
        self.pins = dict(pins or {})
        self._sem = asyncio.Semaphore(concurrency)
        self._pages: dict[str, asyncio.Future[Selection]] = {}
        self._meta: dict[tuple[str, Version], asyncio.Future[CoreMetadata]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.requested_pages = 0
        self.requested_metadata = 0
        self._closed = False
        # Called with each page's selection as soon as it is known, in the same step (no turn
        # of the loop in between): the early downloads (``kea.resolver.provider_fetch``).
        self._page_listeners: list[Callable[[str, Selection], None]] = []
        self._decision_listeners: list[Callable[[Candidate], None]] = []

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
        for listener in self._page_listeners:
            listener(name, sel)
        if self.speculate and sel.candidates:
            pin = self.pins.get(name)
            pinned = [c for c in sel.candidates if c.version == pin] if pin is not None else []
            self.metadata_future(pinned[0] if pinned else sel.candidates[0])

    def on_page(self, listener: Callable[[str, Selection], None]) -> None:
        """Call ``listener(name, selection)`` for each page fetched from now on, as it arrives
        (a page that failed is not announced)."""
        self._page_listeners.append(listener)

    def on_decided(self, listener: Callable[[Candidate], None]) -> None:
        """Call ``listener(candidate)`` on the loop for each decision the resolver reports as
        standing (``decided``)."""
        self._decision_listeners.append(listener)

    def _announce(self, cand: Candidate) -> None:
        if not self._closed:
            for listener in self._decision_listeners:
                listener(cand)

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

    def decided(self, cand: Candidate) -> None:
        """Non-blocking: the resolver's decision for ``cand`` stood its propagation; the
        listeners hear of it on the loop (none: no hop)."""
        if self._decision_listeners:
            self.loop.call_soon_threadsafe(self._announce, cand)

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
