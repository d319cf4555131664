"""Files written whole or not at all, for kea's cache and ``kea serve``'s.

The data goes to a temporary file beside the target (named with ``TMP_PREFIX``, which both caches'
sweepers look for), which is then renamed over it: a reader sees the old file, the new one, or
none, never half of one. Only ``os`` is imported here: the warm install path writes through it.
"""

from __future__ import annotations

import os

TMP_PREFIX = ".tmp-"


def atomic_write(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``path`` whole or not at all; the temporary file is removed if the write fails.
    ``private``: readable by its owner only (it holds a credential)."""
    head, name = os.path.split(os.fspath(path))
    tmp = os.path.join(head, f"{TMP_PREFIX}{name}.{os.urandom(6).hex()}")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        with open(os.open(tmp, flags, 0o600 if private else 0o666), "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
