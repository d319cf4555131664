"""Early downloads: a wheel starts downloading while the resolver is still walking the rest of
the graph, as soon as it is known to be wanted.

Two kinds of wheel are known so early:

- The wheel of a top-level ``name==version`` (no wildcard, no override, no ``--hash`` list,
  marker true on the target) that is not already installed at that version, whose chosen file
  would be the same one the provider hands the installer (the best-ranked file of that
  version): it starts as soon as its page is known.
- The wheel of each version the resolver decides, once the decision has stood its
  dependencies, while the search has met no conflict (``Solver._report``): most resolutions
  never backtrack, and their decisions are the solution. On the seed path (every upstream
  answer 50 ms late) the resolution waits on the network, and jupyter's cold install took
  0.87 of the time it took when its wheels waited for the whole resolution (8 alternated pairs;
  from loopback, where the resolution keeps a core busy, 0.99 over 10). A decision the search
  undoes later is the cost: its download is cancelled when the resolution ends (``aclose``).
  Nothing is decided early for a requirement with ``--hash`` values, a direct reference, or a
  package installed at the decided version.

The download is the source's shared task for the file (``start_wheel``), so the installer's
later request for it joins the same task. At most ``LIMIT`` early downloads are on the wire at
a time, leaving connections for the resolver's pages and metadata, and at most ``LIMIT`` more
have their bytes in and wait to be unpacked; the others wait in a queue. A download's turn on
the wire ends when its last byte is in (``start_wheel``'s ``downloaded``), not once it is
unpacked: held until then, jupyter's last 30 wheels on the seed path (every upstream answer
50 ms late) were requested only as the first ones were unpacked, 0.8-1.5 s into the run, and
the unpacking workers waited for them at the end. Those still queued when the resolution ends
are dropped (the installer asks for what it needs itself); a download already started runs on
inside the source if the solution has its file.

When every requirement is such a pin (a locked file: ``uv pip compile``'s output), every one of
those wheels is needed whatever the resolver finds, and nothing else waits for the resolution
to download. Then up to ``LOCKED_LIMIT`` downloads run at once and the source is told to take
each pinned wheel's metadata from the wheel itself (``metadata_with_wheel``) instead of
fetching it separately: one request fewer per package. On the seed path (every upstream answer
50 ms late, 50 connections to it) the 97 metadata requests of jupyter took turns with the
downloads for the same connections.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.version import InvalidVersion, Version

import kea.log
from kea.dist import parsed
from kea.dist.names import canonicalize_name
from kea.index.models import DistFile
from kea.resolver.provider_select import Candidate, Selection, _marker_holds

if TYPE_CHECKING:
    from packaging.requirements import Requirement

log = kea.log.get("kea.resolver.provider")


LIMIT = 8  # early downloads on the wire, leaving connections for the resolver's pages and metadata
LOCKED_LIMIT = 50  # the same when every requirement is pinned (as many as one host gets)


class WheelSource(Protocol):
    def start_wheel(
        self, file: DistFile, downloaded: Callable[[], None] | None = None
    ) -> asyncio.Future[Path]:
        """The download (and unpacking) of a wheel, started now as a task shared with whoever
        asks for the same file later in the run. ``downloaded`` is called once its bytes are
        all in, before it is unpacked, if this call starts the task and it downloads."""
        ...

    def metadata_with_wheel(self, file: DistFile) -> None:
        """Read ``file``'s metadata from the wheel when the resolver asks for it."""
        ...


def early_pins(
    requirements: Iterable[Requirement],
    *,
    markers: Mapping[str, str],
    skip: Iterable[str] = (),
    installed: Mapping[str, str] | None = None,
) -> dict[str, Version]:
    """name -> the one version each eligible requirement pins (see the module docstring)."""
    skipped = {canonicalize_name(n) for n in skip}
    out: dict[str, Version] = {}
    conflicting: set[str] = set()
    for req in requirements:
        name = canonicalize_name(req.name)
        if name in skipped or req.url:
            continue
        if req.marker is not None and not _marker_holds(req.marker, dict(markers), ""):
            continue
        pairs, _ = parsed.specifier_parts(parsed.specifier_text(req))
        if len(pairs) != 1 or pairs[0][0] != "==" or "*" in pairs[0][1]:
            continue
        try:
            version = Version(pairs[0][1])
        except InvalidVersion:
            continue
        if name in out and out[name] != version:
            conflicting.add(name)
        out[name] = version
    for clash in conflicting:
        del out[clash]
    return narrowed(out, installed=installed)


def narrowed(
    pins: Mapping[str, Version],
    *,
    skip: Iterable[str] = (),
    installed: Mapping[str, str] | None = None,
) -> dict[str, Version]:
    """``pins`` (from ``early_pins``) without the names in ``skip`` and those installed at
    their pin: what ``early_pins`` answers given those too, without reading the requirements
    again."""
    skipped = {canonicalize_name(n) for n in skip}
    out = {name: v for name, v in pins.items() if name not in skipped}
    for raw, have in (installed or {}).items():
        key = canonicalize_name(raw)
        try:
            if key in out and Version(have) == out[key]:
                del out[key]
        except InvalidVersion:
            continue
    return out


def locked(
    requirements: Iterable[Requirement],
    pins: Mapping[str, Version],
    *,
    markers: Mapping[str, str],
    installed: Mapping[str, str] | None = None,
) -> bool:
    """Whether every requirement (its marker true on the target) is one of ``pins`` or is
    installed (``early_pins`` leaves out those installed at their pin)."""
    have = {canonicalize_name(n) for n in installed or {}}
    for req in requirements:
        if req.marker is not None and not _marker_holds(req.marker, dict(markers), ""):
            continue
        name = canonicalize_name(req.name)
        if name not in pins and name not in have:
            return False
    return bool(pins)


class EarlyFetch:
    """Starts the early downloads (on the event loop): of ``pins`` as their pages arrive
    (``page_ready``), and of each decision the resolver reports as standing (``decided``);
    ``whole``: the pins are the whole request (``locked``), see the module docstring.

    A download starts in the very step that learns its page (``page_ready``, called by the
    prefetcher), as the source's shared task: no task of its own and no semaphore in between.
    Each of those was a turn of the event loop, and on a fast index every turn also carries the
    handling of every other page that has just arrived: in a cold jupyter install from loopback
    the first wheel was requested 41 ms after its page had arrived, four turns later."""

    def __init__(
        self,
        source: WheelSource,
        pins: Mapping[str, Version],
        *,
        whole: bool = False,
        skip: Iterable[str] = (),
        installed: Mapping[str, str] | None = None,
    ):
        self.source = source
        self.pins = dict(pins)
        self.whole = whole
        self.limit = LOCKED_LIMIT if whole else LIMIT
        self.skip = {canonicalize_name(n) for n in skip}
        self.installed: dict[str, Version] = {}
        for raw, have in (installed or {}).items():
            try:
                self.installed[canonicalize_name(raw)] = Version(have)
            except InvalidVersion:
                continue
        self._on_wire: set[str] = set()  # URLs of downloads whose bytes are not all in yet
        self._open = 0  # downloads started and not ended (on the wire, or being unpacked)
        self._queue: deque[DistFile] = deque()  # over the limits: started as others move on
        self._asked: set[str] = set()  # URLs started or queued
        self._started: dict[str, asyncio.Future[Path]] = {}  # URL -> the source's task
        self._closed = False

    def page_ready(self, name: str, selection: Selection) -> None:
        """``name``'s page is known: start the download of its pin's wheel (or queue it)."""
        version = self.pins.get(name)
        if version is None or self._closed:
            return
        cand = next((c for c in selection.candidates if c.version == version), None)
        if cand is None:
            return
        if self.whole and self._remote_wheel(cand.file):
            self.source.metadata_with_wheel(cand.file)
        self._want(cand.file)

    def decided(self, cand: Candidate) -> None:
        """The resolver decided ``cand`` and the decision stood (``Solver._report``):
        start its wheel's download (or queue it), unless it is installed at that version or
        its requirement lists ``--hash`` values (the installer checks those)."""
        if self._closed or cand.name in self.skip or self.installed.get(cand.name) == cand.version:
            return
        self._want(cand.file)

    @staticmethod
    def _remote_wheel(file: DistFile) -> bool:
        # local files are unpacked by the installer straight from the disk
        return file.is_wheel and file.url.startswith(("http://", "https://"))

    def _want(self, file: DistFile) -> None:
        if not self._remote_wheel(file) or file.url in self._asked:
            return
        self._asked.add(file.url)
        self._queue.append(file)
        self._next()

    def _next(self) -> None:
        """Start queued downloads while there is room: fewer than ``limit`` on the wire, and
        fewer than twice that not yet ended."""
        while (
            self._queue
            and not self._closed
            and len(self._on_wire) < self.limit
            and self._open < 2 * self.limit
        ):
            self._start(self._queue.popleft())

    def _start(self, file: DistFile) -> None:
        url = file.url
        self._on_wire.add(url)
        self._open += 1
        task = self._started[url] = self.source.start_wheel(file, lambda: self._off_wire(url))
        task.add_done_callback(lambda fut: self._ended(file, fut))

    def _off_wire(self, url: str) -> None:
        """The download of ``url`` has its bytes in (or ended without them): its turn on the
        wire goes to the next one."""
        if url in self._on_wire:
            self._on_wire.remove(url)
            self._next()

    def _ended(self, file: DistFile, fut: asyncio.Future[Path]) -> None:
        """A download ended (unpacked, failed, found in the cache or cancelled)."""
        self._open -= 1
        if not fut.cancelled() and fut.exception() is not None:
            # the installer meets it again and reports it
            log.debug("early download of %s failed: %s", file.filename, fut.exception())
        self._on_wire.discard(file.url)  # if its bytes never all came in
        self._next()

    async def aclose(self, keep: Collection[str] = ()) -> None:
        """Start nothing more: downloads not started are left to the installer. Those started
        for a file in ``keep`` (the URLs of the solution's files) run on inside the source,
        where the installer joins them; the others (a decision the search undid later, or
        every one when the resolution failed) are cancelled, and their end waited for: a
        download cancelled halfway leaves nothing in the cache."""
        self._closed = True
        self._queue.clear()
        dropped = [t for url, t in self._started.items() if url not in keep and not t.done()]
        for task in dropped:
            task.cancel()
        if dropped:
            await asyncio.wait(dropped)
