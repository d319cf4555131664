"""Ctrl-C held back while an environment changes from its old set of packages to its new one.

An install commits its packages one after another (``kea.install.transaction``: each is whole,
old or new, even after kill -9). A Ctrl-C between two of them used to stop the run there and
leave a mixed set: one package new and requiring versions of others that were still old. The
renames of a commit take milliseconds, so ``held()`` lets them all finish, with what they leave
to clean up; then the ``KeyboardInterrupt`` the user asked for is raised, once the run has
said what it did: the environment is wholly new, and the run still ends as interrupted (exit
130).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Held:
    """What ``held`` saw: ``came`` is True once a Ctrl-C arrived while it held them."""

    came = False


@contextlib.contextmanager
def held() -> Iterator[Held]:
    """Run the block with SIGINT noted instead of raised (``Held.came``): the caller says what
    was done, then raises the KeyboardInterrupt. Outside the main thread, or when SIGINT has a
    handler that is not Python's default, the block runs as it is (only the main thread may
    set handlers; someone else chose this one)."""
    seen = Held()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield seen
        return

    def note(signum: int, frame: FrameType | None) -> None:
        seen.came = True

    signal.signal(signal.SIGINT, note)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
