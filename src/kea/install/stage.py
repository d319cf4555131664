"""Carry out the staging plans of one install together, the work split evenly across threads.

Staging one wheel per thread leaves the install as long as its largest wheel: jedi alone has
959 directories and 5,620 files of jupyter's 2,786 and 12,114, and on a filesystem where each
``mkdir`` costs a fraction of a millisecond (an ext4 without a journal scans recently freed inodes
on every allocation) that one thread was half the install. Here every plan's directories are
created a depth at a time (a parent always exists before its children), then every file is linked
or written, each step in even chunks over the pool. Siblings stay in one chunk, so threads rarely
wait on the same parent directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from itertools import chain
from typing import TypeVar

from kea.errors import KeaError
from kea.install.link import Linker
from kea.install.wheel import StagePlan, WheelLayout, missing_file, write_new

T = TypeVar("T")

# Below these sizes a step runs in the calling thread: a hand-off costs more. An mkdir costs far
# more than a link (it allocates an inode), so directories are split into smaller chunks.
_MIN_DIRS = 8
_MIN_FILES = 64


def run_stages(plans: Sequence[StagePlan], linker: Linker, pool: Executor, workers: int) -> None:
    """Create the directories, then the files, of every plan; the first failure is raised
    (what was created stays for the caller's transaction to roll back)."""
    by_depth: dict[int, list[str]] = {}
    for plan in plans:
        for d in plan.dirs:
            by_depth.setdefault(d.count("/"), []).append(d)
    for depth in sorted(by_depth):
        _split(pool, workers, _mkdirs, by_depth[depth], _MIN_DIRS)
    link = linker.link

    def links(chunk: list[tuple[str, str, str]]) -> None:
        for src, dst, rel in chunk:
            try:
                link(src, dst)
            except KeaError:
                if not os.path.isfile(src):
                    raise missing_file(_layout_of(plans, src), rel) from None
                raise

    _split(pool, workers, links, list(chain.from_iterable(p.links for p in plans)), _MIN_FILES)
    _split(pool, workers, _writes, [w for p in plans for w in p.writes], _MIN_FILES)


def _layout_of(plans: Sequence[StagePlan], src: str) -> WheelLayout:
    """The layout whose archive ``src`` is in (for an error message)."""
    return next(p.layout for p in plans if src.startswith(f"{p.layout.archive}/"))


def _mkdirs(chunk: list[str]) -> None:
    try:
        for d in chunk:
            os.mkdir(d)
    except OSError as e:
        raise KeaError(f"cannot create directory {e.filename}: {e.strerror}") from None


def _writes(chunk: list[tuple[str, bytes, int]]) -> None:
    for path, data, mode in chunk:
        write_new(path, data, mode)


def _split(
    pool: Executor, workers: int, fn: Callable[[list[T]], None], items: list[T], least: int
) -> None:
    """``fn`` over ``items`` in contiguous chunks, about four per worker (so a slow chunk does
    not hold the others up), and waits for them all."""
    if not items:
        return
    n = min(workers * 4, len(items) // least)
    if n <= 1:
        fn(items)
        return
    size = -(-len(items) // n)
    futures = [pool.submit(fn, items[i : i + size]) for i in range(0, len(items), size)]
    error: BaseException | None = None
    for f in futures:  # every chunk ends before the caller rolls back
        try:
            f.result()
        except BaseException as e:
            if error is None:
                error = e
    if error is not None:
        raise error
