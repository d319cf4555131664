"""The resolution memo: a warm resolve answered by an earlier one, when nothing it used changed.

``resolve_from_cache`` reads ~200 records and runs the PubGrub search: ~30 ms of a ~105 ms warm
``kea pip install --dry-run`` of jupyter (97 packages). Its answer depends on nothing but

- the request: requirements, constraints, overrides, ``--hash`` lists, the installed versions
  (preferred), and the policies (``--upgrade``, pre-releases, resolution, ``--exclude-newer``,
  binary choices, the index strategy);
- the target: its marker values, tags and Python version;
- the indexes asked, in order, and ``--offline``;
- the records it read (pages and metadata), and, unless ``--offline``, the time: a page is used
  only while it is fresh;
- the code: kea's, packaging's and msgspec's modules.

``remember`` keeps a warm resolve's answer in ``<cache>/resolved-v1/<digest>.msgpack`` with all
of that: a digest of the request, target and indexes (credentials taken out of their URLs); the
identity (``kea.filestamp``) of each record read, taken from the open file; the identity of each
module file; and the time until which every page it used is fresh. ``recall`` gives the answer
back when the digest is the same, every identity unchanged and that time not reached. Records
are replaced, never written in place, so a page fetched again has another identity. The same
requests run again (a CI job that installs its dependencies, then its test tools; a reinstall)
are what this is for: past ``MOST`` answers, the least recently written go, down to ``KEEP``.

Nothing is kept or recalled for a request with direct references (their files may change under
the same name), with find-links, or under a refresh; nothing is kept when a module file changed
in the last two seconds (the answer may come from the code before the change).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from packaging.version import Version

import kea.log
from kea.auth.redact import holds_secret
from kea.cache.store import RESOLVED, strip_credentials
from kea.digest import sha256
from kea.filestamp import RACY_NS, Identity, code_files, identity, trim
from kea.index.models import DistFile

if TYPE_CHECKING:
    from kea.index.cached import CachedIndex
    from kea.resolver.provider import Chosen, InterpreterFacts, ResolveInput

log = kea.log.get("kea.resolver")

FORMAT = 1
MOST = 64  # answers kept; past that, trimmed to KEEP
KEEP = 32


_NOT_KEY = frozenset({"fetch_early"})  # how the wheels are fetched, not what is chosen


def _key_fields(spec: ResolveInput) -> list[str]:
    return [f for f in spec.__struct_fields__ if f not in _NOT_KEY]


def _canonical(value: Any) -> Any:
    """``value`` as plain data that encodes the same whenever it means the same."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return sorted((str(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # a requirement: its text, markers included


class _Answer(msgspec.Struct, frozen=True):
    key: str
    code: list[tuple[str, Identity]]
    records: list[tuple[str, Identity]]
    fresh_until: float | None  # None: --offline (the time does not matter)
    chosen: list[tuple[str, str, DistFile, str]]  # name, version, file, display name


class Memo:
    """The memo of one warm resolve (``for_run``): ``recall`` before, ``remember`` after."""

    def __init__(self, lookup: CachedIndex, key: str) -> None:
        self.lookup = lookup
        self.key = key
        self.name = f"{key}.msgpack"
        self.started_ns = time.time_ns()

    @classmethod
    def for_run(cls, spec: ResolveInput, lookup: Any, interpreter: InterpreterFacts) -> Memo | None:
        """The memo for this request, or None where none is kept (see the module docstring)."""
        from kea.index.cached import CachedIndex

        if not isinstance(lookup, CachedIndex):
            return None
        settings = lookup.settings
        if settings.find_links or lookup.refresh or lookup.refresh_packages:
            return None
        if any(r.url for r in (*spec.requirements, *spec.constraints, *spec.overrides)):
            return None
        request = [
            FORMAT,
            # every field of the request, so that a field added later is never left out
            [(f, _canonical(getattr(spec, f))) for f in _key_fields(spec)],
            sorted(interpreter.markers.items()),
            [str(t) for t in interpreter.tags],
            interpreter.python_full_version,
            [(strip_credentials(i.url), i.name, i.explicit) for i in settings.indexes],
            lookup.strategy,
            lookup.offline,
        ]
        key = sha256(msgspec.msgpack.encode(request)).hexdigest()
        return cls(lookup, key)

    def recall(self) -> list[Chosen] | None:
        """The answer kept for this request, if everything it depended on is as it was."""
        answer = self.lookup.cache.read_record(RESOLVED, self.name, _Answer)
        if answer is None or answer.key != self.key:
            return None
        if answer.fresh_until is not None and time.time() >= answer.fresh_until:
            return None
        for path, ident in (*answer.records, *answer.code):
            if identity(path) != ident:
                return None
        from kea.resolver.provider import Chosen

        log.debug(
            "resolved from the memo of an earlier warm resolve (%d packages)", len(answer.chosen)
        )
        return [
            Chosen(name=name, version=Version(version), file=file, display_name=display)
            for name, version, file, display in answer.chosen
        ]

    def watch(self) -> None:
        """Have the cache note what the resolve reads from now on."""
        self.lookup.watch()

    def remember(self, chosen: list[Chosen]) -> None:
        """Keep ``chosen``, the answer of the resolve ``watch`` saw, unless a module file it ran
        changed too recently to tell."""
        seen = self.lookup.seen
        if seen is None:  # not watched: nothing to vouch for the answer
            return
        code = [(path, ident) for path in code_files() if (ident := identity(path)) is not None]
        cutoff = self.started_ns - RACY_NS
        if any(ident[0] >= cutoff or ident[3] >= cutoff for _, ident in code):
            return
        fresh = self.lookup.fresh_until
        if not self.lookup.offline and not math.isfinite(fresh):
            return  # no page was used fresh: nothing bounds the answer in time
        answer = _Answer(
            key=self.key,
            code=code,
            records=list(dict.fromkeys(seen)),
            fresh_until=None if self.lookup.offline else fresh,
            chosen=[(c.name, str(c.version), c.file, c.display_name) for c in chosen],
        )
        try:
            private = any(holds_secret(c.file.url) for c in chosen)
            self.lookup.cache.write_record(RESOLVED, self.name, answer, private=private)
        except OSError as e:  # a memo is never worth failing a run for
            log.debug("the resolution memo was not written: %s", e)
            return
        trim(str(self.lookup.cache.bucket(RESOLVED)), most=MOST, keep=KEEP)
