"""When and how long to wait before trying a request again."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5  # seconds: 0.5, 1, 2, ...
BACKOFF_CAP = 10.0
RETRY_AFTER_CAP = 60.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
) -> float:
    """Delay before retry number ``attempt`` (0-based): Retry-After when the server gave one
    (capped at RETRY_AFTER_CAP), else exponential ``base * 2**attempt`` capped at ``cap``."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP)
    return min(base * (2**attempt), cap)


__all__ = ["RETRY_STATUSES", "backoff_delay", "parse_retry_after"]
