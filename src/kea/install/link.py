"""Put one file from an (immutable) archive at a new path: clone, hardlink, copy or symlink.

The default (``mode=None``) tries a copy-on-write clone (Linux ``FICLONE``), then a hard link,
then a copy (across filesystems); the first method that fails for a reason of the filesystem is
not tried again by the same ``Linker``. An explicit ``clone`` or ``hardlink`` falls back to copy.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from typing import Literal

from kea.errors import KeaError

LinkMode = Literal["clone", "hardlink", "copy", "symlink"]
LINK_MODES: tuple[str, ...] = ("clone", "hardlink", "copy", "symlink")

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
# errnos meaning "this filesystem/pair cannot do that", as opposed to a real failure.
_UNSUPPORTED = {
    errno.EXDEV,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EINVAL,
    errno.ENOTTY,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOSYS,
    errno.EBADF,
    errno.EACCES,
}


def _clone(src: str, dst: str) -> None:
    if sys.platform != "linux":
        raise OSError(errno.EOPNOTSUPP, "clone is only implemented on Linux")
    import fcntl

    sfd = os.open(src, os.O_RDONLY)
    try:
        st = os.fstat(sfd)
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o777)
        try:
            fcntl.ioctl(dfd, FICLONE, sfd)
        except OSError:
            os.close(dfd)
            os.unlink(dst)
            raise
        os.close(dfd)
    finally:
        os.close(sfd)


def _copy(src: str, dst: str) -> None:
    import shutil  # only when a link cannot be made: a warm install never imports it

    shutil.copyfile(src, dst)
    shutil.copymode(src, dst)


def _hardlink(src: str, dst: str) -> None:
    os.link(src, dst)


def _symlink(src: str, dst: str) -> None:
    os.symlink(os.path.abspath(src), dst)


_METHODS = {"clone": _clone, "hardlink": _hardlink, "copy": _copy, "symlink": _symlink}


class Linker:
    """Links files with a mode and its fallbacks; remembers which method works (thread-safe)."""

    def __init__(self, mode: str | None = None) -> None:
        if mode is not None and mode not in LINK_MODES:
            raise KeaError(
                f"invalid link mode {mode!r}", hint="expected one of " + ", ".join(LINK_MODES)
            )
        self.mode = mode
        if mode is None:
            chain = ["clone", "hardlink", "copy"]
        elif mode in ("clone", "hardlink"):
            chain = [mode, "copy"]
        else:
            chain = [mode]
        self._chain = chain
        self._lock = threading.Lock()
        self.used: set[str] = set()  # methods that succeeded at least once (for tests/logging)

    @property
    def chain(self) -> list[str]:
        return list(self._chain)

    def settled_hardlink(self) -> bool:
        """Whether hard links are what this linker makes now (and one has worked): then a
        caller may call ``os.link`` itself and come to ``link`` only when that fails."""
        return self._chain[0] == "hardlink" and "hardlink" in self.used

    def link(self, src: str, dst: str) -> None:
        """Make ``dst`` (which must not exist) have ``src``'s content and mode."""
        chain = self._chain
        for i, name in enumerate(chain):
            try:
                _METHODS[name](src, dst)
            except OSError as e:
                if i + 1 < len(chain) and e.errno in _UNSUPPORTED:
                    with self._lock:
                        if self._chain and self._chain[0] == name and len(self._chain) > 1:
                            self._chain = self._chain[1:]
                    continue
                raise KeaError(f"cannot {name} {src} to {dst}: {e.strerror}") from None
            if name not in self.used:
                with self._lock:
                    self.used.add(name)
            return
