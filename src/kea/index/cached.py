"""What the cache alone can tell a run: project pages, core metadata and unpacked wheels.

``CachedIndex`` holds the rules for trusting the cache: a page is used while it is fresh (its
max-age) and not refreshed (``--refresh``, ``--refresh-package``), or always with ``--offline``; a
file listed without a sha256 is known only by its URL, so under a refresh its cached metadata and
archive are not used (nor ever the cached metadata of a local file without one). ``IndexClient``
asks it before going to the network, and a run whose every answer is here resolves and installs
without an event loop (``kea.cli.install_pipeline``): each ``answer_*`` method returns None where
only the network, a local source or find-links could answer. This module imports neither asyncio
nor kea.http.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import kea.log
from kea.auth.redact import redact_url
from kea.filestamp import Identity
from kea.index.findlinks import is_local
from kea.index.models import DistFile, ProjectPage, normalize_name
from kea.index.pagecache import CachedPage, load_metadata, load_page

if TYPE_CHECKING:
    from kea.cache import Cache
    from kea.dist.metadata import CoreMetadata
    from kea.settings import Settings

log = kea.log.get("kea.index")


class CachedIndex:
    """The run's view of its cache (see the module docstring). ``offline``: nothing may be asked
    of the network, so whatever is cached is used, fresh or not."""

    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        *,
        offline: bool,
        refresh: bool = False,
        refresh_packages: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.offline = offline
        self.strategy = settings.index_strategy
        self.indexes = [i for i in settings.indexes if not i.explicit]
        self.refresh = refresh or settings.refresh
        self.refresh_packages = {
            normalize_name(n) for n in (*refresh_packages, *settings.refresh_packages)
        }
        if settings.offline and (self.refresh or self.refresh_packages):
            what = "--refresh" if self.refresh else "--refresh-package"
            log.warning("%s is ignored: network access is disabled (--offline)", what)
        # While watched (``watch``): the path and identity of every record read, and the
        # time until which every page used is fresh (the resolution memo keeps both).
        self.seen: list[tuple[str, Identity]] | None = None
        self.fresh_until = math.inf

    def watch(self) -> None:
        """Note, from now on, each record read and how long the pages used stay fresh."""
        self.seen = []
        self.fresh_until = math.inf

    def refreshed(self, name: str) -> bool:
        """Whether ``--refresh`` / ``--refresh-package`` covers the project ``name`` (normalised)
        in this run: nothing cached about it is trusted without asking the index."""
        return not self.offline and (self.refresh or name in self.refresh_packages)

    def url_keyed_stale(self, file: DistFile) -> bool:
        """A file the page lists without a sha256 is known to the cache only by its URL, and the
        index may serve other bytes there now: under a refresh its cached metadata and archive
        are not used (a file with a sha256 is immutable, refresh or not). A local file without
        a sha256 may be rebuilt in place under the same name at any time: its metadata, keyed by
        its path alone, is never used (it is read again from the file, a cheap local read; its
        archive is unpacked again by size and mtime, ``Cache.unpack_local_wheel``)."""
        if file.hashes.get("sha256"):
            return False
        if is_local(file.url):
            return True
        return self.refreshed(normalize_name(file.filename.split("-", 1)[0]))

    def page(self, index_url: str, name: str) -> tuple[CachedPage | None, bool]:
        """The cached page of project ``name`` (normalised) on ``index_url``, and whether it
        answers without asking the index (then logged as such)."""
        entry = load_page(self.cache, index_url, name, self.seen)
        if entry is None or not (self.offline or (entry.is_fresh() and not self.refreshed(name))):
            return entry, False
        if self.seen is not None and not self.offline:
            until = entry.fresh_until()  # not None: the page is fresh
            self.fresh_until = min(self.fresh_until, math.inf if until is None else until)
        if log.isEnabledFor(kea.log.DEBUG):  # redacting every page's URL for nothing cost ~1 ms
            log.debug("%s: fresh in the cache (%s)", name, redact_url(entry.page.url))
        return entry, True

    def answer_pages(self, name: str) -> list[ProjectPage] | None:
        """The pages listing ``name`` as ``IndexClient.project_pages`` would give them, when
        every index it would ask answers from the cache; else None."""
        if self.settings.find_links or not self.indexes:
            return None
        name = normalize_name(name)
        pages: list[ProjectPage] = []
        for index in self.indexes:
            if is_local(index.url):
                return None
            entry, usable = self.page(index.url, name)
            if entry is None or not usable:
                return None
            if entry.missing:
                continue
            pages.append(entry.page)
            if self.strategy == "first-index":
                break
        return pages

    def answer_metadata(self, file: DistFile) -> CoreMetadata | None:
        """The cached core metadata of ``file``, if it may be used."""
        if self.url_keyed_stale(file):
            return None
        return load_metadata(self.cache, file, self.seen)

    def answer_archive(self, file: DistFile) -> Path | None:
        """The cached unpacked archive of the wheel ``file`` (an index file, not a local one),
        if it may be used."""
        if not file.is_wheel or is_local(file.url) or self.url_keyed_stale(file):
            return None
        return self.cache.find_archive(file.filename, url=file.url, hashes=file.hashes)
