"""Fewer glibc malloc arenas for runs that download and unpack in many threads.

glibc gives each thread that allocates while another holds the main arena an arena of its own,
up to eight per core. Memory a thread frees stays in its arena for that thread's later use, so
a cold install, with downloads, hashing and unpacking spread over a dozen threads, kept tens of
megabytes no thread would use again: installing the bench's large set (332 packages) from an
empty cache peaked at 166 MB, and 133 MB with two arenas. ``limit_arenas`` sets that limit for
the threads started after it (``mallopt(M_ARENA_MAX, 2)``), the way ``MALLOC_ARENA_MAX=2`` would
at process start. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2

_done = False


def limit_arenas() -> bool:
    """Limit the malloc arenas of this process (once); True when glibc accepted it."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return False
    _done = True
    import os

    if os.environ.get("MALLOC_ARENA_MAX"):  # the user's own setting wins
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS))
