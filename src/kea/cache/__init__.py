"""kea's on-disk cache: versioned buckets, atomic records, and unpacked wheel archives.

``Cache`` (``kea.cache.store``) is the entry point; ``kea.cache.archive`` unpacks and verifies
wheels; ``kea.cache.maintenance`` implements ``kea cache clean`` / ``prune``.

The names below come from ``kea.cache.store`` on first use, so that importing a submodule alone
(the unpacking worker imports ``kea.cache.unpacker`` and ``kea.cache.archive``) does not load
the store and msgspec with it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs the unpacking workers 5 ms to import
if TYPE_CHECKING:
    from typing import Any

    from kea.cache.store import (
        ARCHIVE,
        BUCKETS,
        INTERPRETERS,
        METADATA,
        RESOLVED,
        SIMPLE,
        WHEELS,
        Cache,
    )
    from kea.cache.store import url_key as url_key

__all__ = [
    "ARCHIVE",
    "BUCKETS",
    "INTERPRETERS",
    "METADATA",
    "RESOLVED",
    "SIMPLE",
    "WHEELS",
    "Cache",
    "url_key",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kea.cache import store

        return getattr(store, name)
    raise AttributeError(f"module 'kea.cache' has no attribute {name!r}")
