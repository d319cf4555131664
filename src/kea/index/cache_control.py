"""What a response's ``Cache-Control`` says about storing and freshness (RFC 9111 §5.2.2).

kea has two HTTP caches that read this header: the installer's page cache
(``kea.index.pagecache``, a private cache) and ``kea serve``'s (``kea.serve.entries``, a shared
one). Both read it here, and each applies its own rule: a private cache ignores ``s-maxage``; a
shared one takes it before ``max-age`` (RFC 9111 §5.2.2.10). It lives here, not in
``kea.http``: a run answered from the page cache reads it and never imports the network layer.

The reading:
- directive names are case-insensitive; a quoted value is unquoted;
- a directive given twice counts once, the first time (RFC 9111 §4.2.1);
- a ``max-age`` or ``s-maxage`` whose value is not a number of seconds makes the response stale
  (0), as the RFC advises for invalid freshness; one past 2^31 counts as 2^31 (§1.2.2);
- ``no-cache`` with a list of fields counts as ``no-cache``: kea revalidates the whole response.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

_LIMIT = 2**31  # RFC 9111 §1.2.2: a larger delta-seconds is taken as this


class CacheControl(NamedTuple):
    max_age: int | None = None
    s_maxage: int | None = None
    no_cache: bool = False
    no_store: bool = False


NOTHING = CacheControl()


def cache_control(value: str | None) -> CacheControl:
    """The directives of a ``Cache-Control`` value (None or empty: none)."""
    return _parse(value) if value else NOTHING


@lru_cache(maxsize=64)  # an index answers every page with the same header
def _parse(value: str) -> CacheControl:
    max_age: int | None = None
    s_maxage: int | None = None
    no_cache = no_store = False
    for part in value.split(","):
        name, _, arg = part.partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "no-store":
            no_store = True
        elif name == "max-age" and max_age is None:
            max_age = _seconds(arg)
        elif name == "s-maxage" and s_maxage is None:
            s_maxage = _seconds(arg)
    return CacheControl(max_age, s_maxage, no_cache, no_store)


def _seconds(arg: str) -> int:
    text = arg.strip().strip('"')
    if not (text.isascii() and text.isdigit()):
        return 0
    return min(int(text), _LIMIT)
