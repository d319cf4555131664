"""kea's on-disk cache: versioned buckets, atomic records, and unpacked wheel archives.

``Cache`` (``kea.cache.store``) is the entry point; ``kea.cache.archive`` unpacks and verifies
wheels; ``kea.cache.maintenance`` implements ``kea cache clean`` / ``prune``.
"""

from kea.cache.store import (
    ARCHIVE,
    BUCKETS,
    INTERPRETERS,
    METADATA,
    SIMPLE,
    WHEELS,
    Cache,
    url_key,
)

__all__ = [
    "ARCHIVE",
    "BUCKETS",
    "INTERPRETERS",
    "METADATA",
    "SIMPLE",
    "WHEELS",
    "Cache",
    "url_key",
]
