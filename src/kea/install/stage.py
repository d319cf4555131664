"""Carry out the staging plans of one install together, the work split evenly across threads.

Staging one wheel per thread leaves the install as long as its largest wheel: jedi alone has
959 directories and 5,620 files of jupyter's 2,786 and 12,114, and on a filesystem where each
``mkdir`` costs a fraction of a millisecond (an ext4 without a journal scans recently freed inodes
on every allocation) that one thread was half the install. Here the directories are created
subtree by subtree (``_dir_tasks``), then every file is linked or written in even chunks over the
pool.

Directories go by subtree, not by depth: two threads making entries in one directory take turns
on its lock, and the kernel spins the waiting one (a warm jupyter install spent 2.6% of its
samples in ``rwsem_spin_on_owner`` under ``mkdir`` when each depth was cut into chunks, its top
level all in site-packages).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from kea.errors import KeaError
from kea.install.link import Linker
from kea.install.threads import Threads
from kea.install.wheel import StagePlan, WheelLayout, missing_file, write_new

T = TypeVar("T")

# Below these sizes a step runs in the calling thread: a hand-off costs more. An mkdir costs far
# more than a link (it allocates an inode), so directories are split into smaller chunks.
_MIN_DIRS = 8
_MIN_FILES = 64


def run_stages(plans: Sequence[StagePlan], linker: Linker, pool: Threads, workers: int) -> None:
    """Create the directories, then the files, of every plan; the first failure is raised
    (what was created stays for the caller's transaction to roll back)."""
    first, subtrees = _dir_tasks([d for p in plans for d in p.dirs], workers)
    _mkdirs(first)
    _run(pool, _mkdirs, subtrees)
    link = linker.link

    def kept(task: list[tuple[StagePlan, int, int]]) -> None:
        # Most files of an install go through here: once the linker has settled on hard links,
        # os.link is called directly (jupyter: 12,000 calls), the linker only after a failure.
        # A task that starts before it has settled asks again after each file it links.
        hardlink = os.link if linker.settled_hardlink() else None
        for plan, start, stop in task:
            arch, bases = f"{plan.layout.archive}/", plan.bases
            for rel in plan.staged.kept[start:stop]:
                src, dst = arch + rel, bases[rel.partition("/")[0]] + rel
                if hardlink is not None:
                    try:
                        hardlink(src, dst)
                        continue
                    except OSError:
                        pass  # the linker tries again, and falls back or reports
                try:
                    link(src, dst)
                except KeaError:
                    if not os.path.isfile(src):
                        raise missing_file(plan.layout, rel) from None
                    raise
                if hardlink is None and linker.settled_hardlink():
                    hardlink = os.link

    def links(chunk: list[tuple[str, str, str, WheelLayout]]) -> None:
        for src, dst, rel, layout in chunk:
            try:
                link(src, dst)
            except KeaError:
                if not os.path.isfile(src):
                    raise missing_file(layout, rel) from None
                raise

    _run(pool, kept, _kept_tasks(plans, workers))
    _split(pool, workers, links, [(*t, p.layout) for p in plans for t in p.links], _MIN_FILES)
    _split(pool, workers, _writes, [w for p in plans for w in p.writes], _MIN_FILES)


def _dir_tasks(dirs: list[str], workers: int) -> tuple[list[str], list[list[str]]]:
    """Directories (absolute, each parent before its children or already there) as what the
    calling thread creates first and tasks for the pool: whole subtrees, so that threads rarely
    share a parent. A subtree larger than its share is split below its root (which then goes
    first). The subtrees are packed, largest first, into about four tasks per worker."""
    dirs = sorted(dirs, key=lambda d: d.count("/"))  # stable: parents first
    limit = max(_MIN_DIRS, len(dirs) // (workers * 2))
    first: list[str] = []
    done: list[list[str]] = []
    todo = [dirs]
    while todo:
        for tree in _subtrees(todo.pop()):
            if len(tree) > limit:
                first.append(tree[0])
                todo.append(tree[1:])
            else:
                done.append(tree)
    if len(dirs) < _MIN_DIRS * 2:
        return first + [d for tree in done for d in tree], []
    done.sort(key=len, reverse=True)
    tasks: list[list[str]] = [[] for _ in range(min(len(done), workers * 4))]
    for tree in done:  # each into the task with the fewest so far
        min(tasks, key=len).extend(tree)
    return first, tasks


def _subtrees(dirs: list[str]) -> list[list[str]]:
    """``dirs`` (parents first) grouped by their topmost ancestor among them, each group in
    order."""
    root_of: dict[str, str] = {}
    trees: dict[str, list[str]] = {}
    for d in dirs:
        root = root_of.get(d.rpartition("/")[0])
        if root is None:
            root = d
            trees[d] = []
        trees[root].append(d)
        root_of[d] = root
    return list(trees.values())


def _kept_tasks(plans: Sequence[StagePlan], workers: int) -> list[list[tuple[StagePlan, int, int]]]:
    """The plans' kept files as (plan, start, stop) ranges, cut into about four tasks per
    worker of an even number of files each (a range may span plans, a plan several tasks)."""
    total = sum(len(p.staged.kept) for p in plans)
    size = max(_MIN_FILES, -(-total // (workers * 4)))
    tasks: list[list[tuple[StagePlan, int, int]]] = []
    task: list[tuple[StagePlan, int, int]] = []
    room = size
    for plan in plans:
        start, end = 0, len(plan.staged.kept)
        while start < end:
            stop = min(end, start + room)
            task.append((plan, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                tasks.append(task)
                task, room = [], size
    if task:
        tasks.append(task)
    return tasks


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
    pool: Threads, workers: int, fn: Callable[[list[T]], None], items: list[T], least: int
) -> None:
    """``fn`` over ``items`` in contiguous chunks, about four per worker (so a slow chunk does
    not hold the others up), and waits for them all."""
    if not items:
        return
    n = min(workers * 4, len(items) // least)
    size = -(-len(items) // max(n, 1))
    _run(pool, fn, [items[i : i + size] for i in range(0, len(items), size)])


def _run(pool: Threads, fn: Callable[[T], None], tasks: list[T]) -> None:
    """``fn`` over each task, in the pool when there are several (else in this thread); waits
    for them all and raises the first failure."""
    if len(tasks) <= 1:
        for task in tasks:
            fn(task)
        return
    futures = [pool.submit(fn, task) for task in tasks]
    error: BaseException | None = None
    for f in futures:  # every chunk ends before the caller rolls back
        try:
            f.result()
        except BaseException as e:
            if error is None:
                error = e
    if error is not None:
        raise error
