"""The project list of ``/simple/``: the names each route the client may read answers for.

- A local route lists its directory's projects.
- A proxy route lists its upstream's own project list (the upstream's ``/simple/``), fetched with
  the upstream's credentials as its pages are, and cached the same way: on disk with its
  validators and freshness, revalidated when stale, served stale when the upstream is down.
  An upstream that has no list (404) adds no names.
- A redirect route lists the exact names of its patterns: kea serve never talks to those
  upstreams (the clients authenticate to them), so it cannot know their other names.

A name is listed under a route only when that route answers for it (first match, private names,
deny routes: ``kea.serve.routes``), so the list shows what ``/simple/<name>/`` serves. An upstream
that lists a private name on a public route does not get it listed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from kea.errors import KeaError
from kea.serve.config import Route, ServeConfig, Upstream
from kea.serve.entries import Validated
from kea.serve.names import valid_names
from kea.serve.proxy import Proxy, UpstreamError, single_flight
from kea.serve.routes import routed_to

log = logging.getLogger("kea.serve")


@dataclass(kw_only=True)
class ListEntry(Validated):
    names: list[str]  # normalised, each once, sorted
    # The names each route answers for, worked out once per list: (route name) -> names.
    routed: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        # one string: a list of ~700,000 strings takes json.dumps (holding the GIL) ten times
        # as long
        return {"names": "\n".join(self.names), **self.validators_json()}

    @classmethod
    def from_json(cls, obj: Any) -> Self | None:
        try:
            names = obj["names"]
            if not isinstance(names, str):
                return None
            return cls(names=names.split("\n") if names else [], **cls.validators_from(obj))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def list_url(upstream: Upstream) -> str:
    """Where an upstream's project list is: its URL up to ``{project}``, or the URL itself."""
    return upstream.base_url.rstrip("/") + "/"


def _parse(body: bytes, url: str, headers: Mapping[str, str]) -> list[str]:
    """The names of a project list (HTML or JSON): normalised, unique and sorted; what is not a
    project name is left out."""
    from kea.index.page import parse_root_page

    return valid_names(parse_root_page(body, url, headers.get("Content-Type")).names)


class ProjectLists:
    def __init__(self, config: ServeConfig, proxy: Proxy) -> None:
        self.config = config
        self.proxy = proxy
        self._lists: dict[str, ListEntry] = {}  # by upstream name
        self._flights: dict[str, asyncio.Future[ListEntry]] = {}

    async def names(self, route: Route) -> tuple[list[str], bool]:
        """The names ``route`` answers for, and whether they come from a stale list.
        An ``UpstreamError`` when a proxy route's upstream has no list to give."""
        if route.mode == "redirect":
            exact = [p.text for p in route.patterns if p.kind == "exact"]
            return routed_to(self.config, route, exact), False
        assert route.mode == "proxy" and route.upstream is not None
        entry = await self._entry(route.upstream)
        routed = entry.routed.get(route.name)
        if routed is None:
            # a whole public index's list is ~700,000 names: seconds, off the event loop
            routed = await asyncio.to_thread(routed_to, self.config, route, entry.names)
            entry.routed[route.name] = routed
        return routed, entry.stale

    async def _entry(self, upstream: Upstream) -> ListEntry:
        entry = self._lists.get(upstream.name)
        if entry is None:
            entry = await ListEntry.load(self.proxy.store.list_path(upstream.name))
            if entry is not None:
                self._lists[upstream.name] = entry
        if entry is not None and entry.fresh(time.time()):
            self.proxy.metrics.cache_hits["list"] += 1
            return entry
        return await single_flight(
            self._flights, upstream.name, lambda: self._fetch(upstream, entry)
        )

    async def _fetch(self, upstream: Upstream, entry: ListEntry | None) -> ListEntry:
        self.proxy.metrics.cache_misses["list"] += 1
        url = list_url(upstream)
        got = await self.proxy.revalidate(upstream, url, entry, "its project list", "list")
        if isinstance(got, ListEntry):
            if not got.stale:  # a 304: fresh again
                await self._save(upstream, got)
            return got
        resp = got
        if resp.status != 200:  # 404 or 410: this upstream has no list
            log.info("upstream %s has no project list (%s)", upstream.name, resp.status)
            names: list[str] = []
        else:
            try:
                names = await asyncio.to_thread(_parse, resp.body, resp.url, resp.headers)
            except KeaError:
                raise UpstreamError(
                    502, f"upstream {upstream.name} sent a malformed project list"
                ) from None
            except Exception as e:  # a parser bug must not become a traceback to a client
                raise UpstreamError(
                    502,
                    f"upstream {upstream.name} sent a malformed project list ({type(e).__name__})",
                ) from None
        new = ListEntry(names=names, **self.proxy.validators(resp))
        self._lists[upstream.name] = new
        await self._save(upstream, new)
        return new

    async def _save(self, upstream: Upstream, entry: ListEntry) -> None:
        await entry.save(self.proxy.store.list_path(upstream.name))


__all__ = ["ListEntry", "ProjectLists", "list_url"]
