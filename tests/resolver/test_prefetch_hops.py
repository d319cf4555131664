"""The resolver thread asks the event loop only for what is not known yet.

A warm resolve's loop runs ahead of the resolver (pages and metadata answered from the cache,
speculation following the dependencies), so most of the resolver's asks find a done future: those
are answered in the resolver's own thread, with no hop through the loop. Shown here with the loop
stopped (or closed) after the cache-like source answered everything: an ask that still needed the
loop would hang (stopped) or raise (closed).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from packaging.version import Version

from kea.dist.metadata import CoreMetadata
from kea.dist.tags import TagRanker
from kea.index.models import DistFile, ProjectPage
from kea.resolver.prefetch import Prefetcher
from kea.resolver.provider import Candidate, CandidatePolicy

T = TypeVar("T")

PROJECTS = {
    "app": ("1.0", ("lib>=1", 'tester; extra == "test"')),
    "lib": ("2.0", ("leaf",)),
    "leaf": ("3.0", ()),
}


class Source:
    """An index in memory, answering at once (as ``IndexClient`` does from a fresh cache)."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.metadata_asks: list[str] = []

    async def project_pages(self, name: str) -> list[ProjectPage]:
        self.pages.append(name)
        if name not in PROJECTS:
            return []
        version = PROJECTS[name][0]
        wheel = f"{name}-{version}-py3-none-any.whl"
        url = f"http://127.0.0.1:9/simple/{name}/"
        return [ProjectPage(name=name, url=url, files=[DistFile(wheel, url + wheel)])]

    async def metadata(self, name: str, file: DistFile) -> CoreMetadata:
        self.metadata_asks.append(name)
        version, requires = PROJECTS[name]
        return CoreMetadata(name=name, version=version, requires_dist=requires)


def warm_prefetcher() -> tuple[Prefetcher, Source, asyncio.AbstractEventLoop]:
    """A prefetcher whose speculation has already walked app -> lib -> leaf; loop stopped."""
    source = Source()
    loop = asyncio.new_event_loop()
    policy = CandidatePolicy(tags=TagRanker(["py3-none-any"]), python_version=Version("3.11"))

    async def prime() -> Prefetcher:
        pre = Prefetcher(source, policy, asyncio.get_running_loop())
        pre.prefetch_pages(["app"])
        for _ in range(50):  # let the speculation run to the leaves
            await asyncio.sleep(0)
        return pre

    return loop.run_until_complete(prime()), source, loop


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in another thread (as the resolver runs), failing instead of hanging."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the ask waited for the (stopped) event loop"
    return box[0]


def test_known_answers_need_no_hop_to_the_loop() -> None:
    pre, source, loop = warm_prefetcher()
    try:
        assert sorted(source.pages) == ["app", "leaf", "lib"]
        assert sorted(source.metadata_asks) == ["app", "leaf", "lib"]
        sel = in_thread(lambda: pre.versions("App"))  # the loop is not running
        assert [str(c) for c in sel.candidates] == ["app==1.0"]
        meta = in_thread(lambda: pre.metadata(sel.candidates[0]))
        assert meta.requires_dist == PROJECTS["app"][1]
    finally:
        loop.close()
    # closed now: anything scheduled on it would raise; hints about known things are dropped
    pre.prefetch(["lib", "Leaf"])
    lib = in_thread(lambda: pre.versions("lib")).candidates[0]
    pre.want_metadata(lib)
    with pytest.raises(RuntimeError):
        pre.prefetch(["tester"])  # unknown: must go to the loop
    assert sorted(source.pages) == ["app", "leaf", "lib"]  # nothing asked twice


def test_unknown_answers_still_go_through_the_loop() -> None:
    pre, source, loop = warm_prefetcher()
    try:
        result: list[object] = []
        unknown = Candidate("tester", Version("1"), DistFile("tester-1-py3-none-any.whl", "x"), "")

        def ask() -> None:
            result.append(pre.versions("tester"))
            try:
                pre.metadata(unknown)
            except KeyError as e:  # the in-memory index has no such project
                result.append(e)
            loop.call_soon_threadsafe(loop.stop)

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        loop.run_forever()
        thread.join(timeout=10)
        assert not result[0].candidates  # type: ignore[attr-defined]
        assert isinstance(result[1], KeyError)
        assert "tester" in source.pages and "tester" in source.metadata_asks
    finally:
        loop.close()
