"""SHA-256 for small inputs (cache keys, file digests, RECORD rows) without importing hashlib.

``hashlib`` loads OpenSSL's ``_hashlib`` when first imported, about 3 ms of every warm run that
only hashes a few hundred bytes at a time. CPython's own SHA-256 module loads in a fraction of
that and gives the same digests; large inputs (wheels being stored) keep using hashlib. The
module is asked for by its name in this Python version: importing one that is not there would
cost a search of sys.path.
"""

from __future__ import annotations

import sys

try:
    if sys.version_info >= (3, 12):
        from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]
    else:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - a Python built without them
    from hashlib import sha256


def short(data: bytes) -> int:
    """64 bits of the sha256 of ``data``, as an int (a cache key, a stamp's check)."""
    return int.from_bytes(sha256(data).digest()[:8], "big")


__all__ = ["sha256", "short"]
