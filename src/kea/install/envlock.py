"""The environment lock: ``flock`` on ``.kea.lock`` at the environment's root.

Every install and uninstall takes it (``kea.install.transaction``). It is the same kind of lock
``filelock.FileLock`` takes on POSIX (an exclusive ``flock`` on an open descriptor, released by
the OS if the process dies), so kea processes of any version exclude each other; it is written
out here because importing filelock costs 11-15 ms (``python -X importtime``, filelock 4.3), which
every install would pay for one system call. filelock keeps this lock on systems without
``fcntl``.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any


class LockTimeout(Exception):
    """The lock was not acquired in time."""


class EnvLock:
    """An exclusive, blocking (with a time-out) inter-process lock on ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._fallback: Any = None

    def acquire(self, timeout: float) -> None:
        """Block until the lock is held; ``LockTimeout`` after ``timeout`` seconds, ``OSError``
        when the lock file cannot be opened."""
        try:
            import fcntl
        except ImportError:  # not POSIX
            import filelock

            self._fallback = filelock.FileLock(self.path)
            try:
                self._fallback.acquire(timeout=timeout)
            except filelock.Timeout:
                raise LockTimeout(self.path) from None
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    os.close(fd)
                    raise
            else:
                self._fd = fd
                return
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(self.path)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def release(self) -> None:
        if self._fallback is not None:
            self._fallback.release()
            self._fallback = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock
