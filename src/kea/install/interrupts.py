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
    """Run the block with SIGINT noted instead of acted on (``Held.came``): the caller says
    what was done, then raises the KeyboardInterrupt. Whatever handler was there before
    (Python's default, or asyncio's while ``asyncio.run`` runs, which would cancel the run's
    task on a second Ctrl-C) is put back after the block. Outside the main thread, where no
    handler can be set, the block runs as it is."""
    seen = Held()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def note(signum: int, frame: FrameType | None) -> None:
        seen.came = True

    before = signal.signal(signal.SIGINT, note)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, before)
