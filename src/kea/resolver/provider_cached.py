"""The provider bridge of a resolve answered from the cache alone (``resolve_from_cache``).

``CacheOnly`` gives ``IndexProvider`` what ``Prefetcher`` gives it, but in the calling thread:
each page and metadata is read from the cache when first asked for, and anything the cache
cannot answer (missing, stale, refreshed) stops the resolve with ``NotCached``; the caller then
starts over with the network (``resolve_request``). No event loop, no worker thread, no hop
between them: for a warm run, the whole of its I/O is a few hundred small file reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from packaging.version import Version

from kea.dist.metadata import CoreMetadata
from kea.dist.names import canonicalize_name
from kea.index.models import DistFile, ProjectPage
from kea.resolver.provider_select import Candidate, CandidatePolicy, Selection, select_candidates


class CacheLookup(Protocol):
    """What the cache can answer (``kea.index.cached.CachedIndex``); None where it cannot."""

    def answer_pages(self, name: str) -> list[ProjectPage] | None: ...

    def answer_metadata(self, file: DistFile) -> CoreMetadata | None: ...


class NotCached(Exception):
    """The resolve needs something the cache does not answer."""


class CacheOnly:
    """Pages and metadata from a ``CacheLookup``, each read once, in the calling thread."""

    def __init__(self, lookup: CacheLookup, policy: CandidatePolicy) -> None:
        self.lookup = lookup
        self.policy = policy
        self._pages: dict[str, Selection] = {}
        self._meta: dict[tuple[str, Version], CoreMetadata] = {}

    def versions(self, name: str) -> Selection:
        name = canonicalize_name(name)
        sel = self._pages.get(name)
        if sel is None:
            pages = self.lookup.answer_pages(name)
            if pages is None:
                raise NotCached(f"the page of {name}")
            sel = self._pages[name] = select_candidates(name, pages, self.policy)
        return sel

    def metadata(self, cand: Candidate) -> CoreMetadata:
        key = (cand.name, cand.version)
        meta = self._meta.get(key)
        if meta is None:
            meta = self.lookup.answer_metadata(cand.file)
            if meta is None:
                raise NotCached(f"the metadata of {cand.file.filename}")
            self._meta[key] = meta
        return meta

    def prefetch(self, names: Iterable[str]) -> None:
        """Nothing to start: every answer is read when asked for."""

    def want_metadata(self, cand: Candidate) -> None:
        """Nothing to start: every answer is read when asked for."""
