"""Unpack wheels into the cache in worker processes, driven from the event loop.

Unpacking is many small steps per member (read, inflate, hash, create, write, close), each of
which releases and takes back the GIL. Run in threads of the installing process, they took
turns with each other and with the event loop that downloads: a cold jupyter install made
444,278 futex calls (strace), and on tmpfs one thread unpacked jedi faster (185 ms) than
three (270-320 ms). A worker process has a GIL of its own. Cold jupyter install from loopback
to a journaled ext4, 3 runs each: "Prepared" 1.36-1.60 s with threads, 0.66-0.74 s with two
workers.

The event loop talks to each worker over its pipes (``kea.cache.worker_pipe``).

``await unpack(wheel, target, filename)`` returns once the wheel is unpacked
(``kea.cache.archive.unpack_wheel``, with every check it makes) into ``target``; a
``WheelError`` is raised again here, message and hint intact, an ``OSError`` as the same
``OSError``. A worker takes one wheel at a time, on one thread. When wheels wait for a
worker (they arrive faster than they are unpacked), the costliest goes first: in arrival
order, a cold jupyter install ended with jupyterlab (12 MB) unpacked by one worker alone,
141 ms, while the other had nothing left to do. A wheel of ``SPLIT_MIN`` members or more that
gets a worker while no other wheel waits for one is split into one part per worker (jedi's
5,626 members: 370-395 ms -> 186-242 ms on tmpfs), each further part waiting for a worker as a
wheel does. While others wait (or are queued behind a worker, below) it goes whole: every
part reads the wheel's directory and RECORD and makes every check again, and the other workers
have wheels of their own. Splitting jupyter's three such wheels whatever the queue cost its
cold install 150-210 ms of user CPU and 120-150 ms of wall time (two batches of 10 alternated
runs).

A worker may be sent one part more while it unpacks another, if what it has left costs at most
``QUEUE_BEHIND`` (~20 ms of work): it reads the next request as soon as it has answered, and
answers in order. Sent only once the answer was read, the next part started 3-4 ms later
(median, timed in the workers: the loop's turns to read the answer, give the worker back and
send): ~150 ms per worker in a cold jupyter install of ~45 parts each, most of the wheels being
small. Paired cold installs against waiting for the answer: jupyter 0.947 and 0.939 (16 pairs
each), the large set (333 wheels) 1.005 and 1.002 (8 pairs each). Splitting large wheels while
parts were queued behind cost the large set 3-5% (user CPU +6%): every part repeats the
wheel's checks, and no worker was left idle to spare. Parts already waiting are queued behind
too (``_pass_behind``): the costliest of them is lent a worker as soon as that worker has one
small part left, not once it is free. Lent only when free, each waited for the loop to read the
answer, give the worker back and wake the waiter; with every download of a locked jupyter
install in by ~0.8 s (``kea.resolver.provider_fetch``), dozens wait, and the two workers sat
idle 80-140 ms each between parts. Paired cold installs against lending only free workers:
0.955 from loopback and 0.967 on the seed path (24 pairs each).

Workers start on first use (or ``prestart``), at most ``processes()`` of them, and stay for
the rest of the run: each says it is ready on its stdout (what the interpreter printed before
that is skipped), then reads one request per line on its stdin and answers on a copy of its
stdout (stdout itself then leads nowhere), and ends at end of file, which comes when the run
releases it or kea exits, however it exits. Workers are in a process group of their own and
ignore Ctrl-C: an interrupted kea stops the workers still busy for it before it cleans up. A
worker that ends while idle is replaced; one that ends (or answers nonsense) while it unpacks
fails that wheel, with a hint, and the part queued behind it. Where no worker can be started,
or one ends before it is ready (kea importable only from the working directory, say), wheels
are unpacked in a thread of the calling process.

A run that will download every wheel it installs (an empty cache) has workers launched
before its event loop exists (``launch``): they start on the cores that kea's own start-up and
resolution leave idle, and wait there, ready, for the first wheel. Started on the first
download instead, they were ready 50-80 ms after the first wheel landed (a traced cold jupyter
install). One core is left to kea's own thread, which is busy throughout its start-up: on two
cores, the second worker starting beside the first took ~25 ms of CPU from it before its first
request (a sampled cold jupyter install). The others start once the launched ones are ready
(``follow_launch``, as the event loop starts), on the core those leave idle until the first
wheel lands. Paired cold jupyter installs, against both launched at once: 0.954, 0.976 and
0.985 (14, 14 and 20 pairs) with the second started at the first download; then 0.970, 0.960,
1.007 and 0.965 (16, 16, 14 and 16 pairs) started when the first is ready, against that.

The pool is used from one event loop at a time (kea runs one); it outlives the loop, and a
later loop may use it again.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import kea.log
from kea.cache.worker_pipe import WorkerProcess
from kea.errors import KeaError

log = kea.log.get("kea.cache")

_MAX = 4  # beyond this, the downloads rather than the unpacking set the pace
SPLIT_MIN = 1000  # members: a wheel this large may be split into a part per worker
# What a member costs to unpack beside its bytes, in compressed bytes of the same cost: the
# order in which waiting wheels get a worker (the costliest first, so that the last ones are
# small). jupyterlab, 12 MB in 1,057 members, took 141 ms; a file costs ~25 us to create.
MEMBER_BYTES = 2500
# A part may be sent to a busy worker when what that worker has left costs at most this (~20 ms
# of work): it starts as soon as the part before it ends, not a turn of kea's loop later.
QUEUE_BEHIND = 2_000_000


def member_count(path: Path) -> int:
    """The number of members a zip's end record announces; 0 when it is not at the very end
    (a zip comment, zip64), which only means the wheel is not split."""
    try:
        with open(path, "rb") as f:
            f.seek(-22, os.SEEK_END)
            tail = f.read(22)
    except OSError:
        return 0
    if len(tail) != 22 or tail[:4] != b"PK\x05\x06":
        return 0
    return int.from_bytes(tail[10:12], "little")


def processes() -> int:
    """How many workers at most: one per core this process may use, up to ``_MAX``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(_MAX, cores))


class Unpacker:
    """Up to ``limit`` workers, each lent to one wheel (or part of one) at a time, or two when
    the first is small (``_nearly_free``). ``broken``: no worker is started, every wheel is
    unpacked in a thread of this process."""

    def __init__(self, limit: int, *, broken: bool = False) -> None:
        self.limit = limit
        self._idle: list[WorkerProcess] = []
        self._started = 0  # workers alive or starting, idle or lent
        self._broken = broken  # also set once a worker could not start
        # (-cost, arrival, future, takes a busy worker) of each part waiting, as a heap; the
        # future's result is the worker lent to it (``_pass_behind``), or None: look again
        self._waiting: list[tuple[int, int, asyncio.Future[WorkerProcess | None], bool]] = []
        self._queued = 0
        self._starting: set[asyncio.Task[None]] = set()  # held until done (``_hold``)
        self._ending: list[WorkerProcess] = []  # closed by close(wait=False), not waited for yet
        self._launched: list[WorkerProcess] = []  # started by launch(), not yet seen ready
        self._busy: set[WorkerProcess] = set()  # lent to one part or more

    async def unpack(
        self, wheel: Path, target: Path, filename: str, hashes: Mapping[str, str] | None = None
    ) -> str:
        members = member_count(wheel)
        try:
            cost = os.path.getsize(wheel) + members * MEMBER_BYTES
        except OSError:
            cost = 0
        if self.limit == 1 or members < SPLIT_MIN:
            return await self._part(wheel, target, filename, (0, 1), cost, hashes)
        # A large wheel is split only when the worker it gets would otherwise leave the others
        # idle: no other wheel waits for one then (see the module docstring).
        worker = await self._acquire(wait=True, cost=cost, behind=False)
        if worker is None or self._waiting or any(len(w.costs) > 1 for w in self._busy):
            return await self._on(worker, wheel, target, filename, (0, 1), hashes)
        n = self.limit
        # The first part alone checks the whole file's hashes: the others write under the
        # same new directory, which is kept only if every part succeeds (a mismatch fails the
        # first, and so the whole), and each member is checked against RECORD by the part
        # writing it. Every part hashing the whole file hashed jupyterlab's 17 MB twice.
        others = [
            asyncio.ensure_future(self._part(wheel, target, filename, (k, n), cost // n, None))
            for k in range(1, n)
        ]
        # Every part is waited for, failed or not: none may still be writing afterwards. If
        # this is cancelled, so are the other parts, and each stops its worker (``_part``).
        try:
            first = await self._on(worker, wheel, target, filename, (0, n), hashes)
        except Exception:
            await asyncio.gather(*others, return_exceptions=True)
            raise
        except BaseException:
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            raise
        for result in await asyncio.gather(*others, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        return first

    async def _part(
        self,
        wheel: Path,
        target: Path,
        filename: str,
        part: tuple[int, int],
        cost: int,
        hashes: Mapping[str, str] | None,
    ) -> str:
        """Part ``part`` of the wheel, unpacked by the next free worker (the costliest waiting
        part first), or in a thread when no worker can be had."""
        worker = await self._acquire(wait=True, cost=cost)
        return await self._on(worker, wheel, target, filename, part, hashes)

    async def _on(
        self,
        worker: WorkerProcess | None,
        wheel: Path,
        target: Path,
        filename: str,
        part: tuple[int, int],
        hashes: Mapping[str, str] | None,
    ) -> str:
        """Part ``part`` of the wheel, unpacked by ``worker`` (lent to this call, which gives
        it back), or in a thread when it is None."""
        # Nothing between here and the try below may fail: the worker would never be released.
        if worker is not None and not worker.send(wheel, target, filename, part, hashes):
            worker.kill()  # it died while idle and read nothing: the part is done here instead
            self._release(worker, healthy=False)
            worker = None
        if worker is None:
            from kea.cache.archive import unpack_wheel

            return await _in_a_thread(
                unpack_wheel, wheel, target, filename, part=part, hashes=hashes
            )
        before, mine = worker.take_turn()
        healthy = False
        try:
            if before is not None:
                await asyncio.shield(before)
            result = await worker.receive(filename)
            healthy = True
            return result
        except (KeaError, OSError):
            healthy = worker.proc.poll() is None  # the wheel's or the disk's fault
            raise
        finally:
            mine.set_result(None)
            if not healthy:  # dead already, or interrupted while it still writes
                worker.kill()
            self._release(worker, healthy)

    async def _acquire(
        self, *, wait: bool, cost: int = 0, behind: bool = True
    ) -> WorkerProcess | None:
        """An idle worker, else a new one if there is room, else (``behind``) a busy one with
        little left to do (``_nearly_free``); else wait for one (``wait``; the waiter with the
        highest ``cost`` is served first, and one that takes ``behind`` may be handed a busy
        worker, ``_pass_behind``) or None. None also when no worker can be started: the
        caller unpacks by itself."""
        self._adopt()
        while True:
            while self._idle:
                worker = self._idle.pop()
                if worker.proc.poll() is None:
                    return self._lend(worker, cost)
                self._started -= 1  # it died while idle
                worker.dead = True
                worker.close()
            if self._broken:
                return None
            if self._started < self.limit:
                self._started += 1
                new = await self._spawn()
                return None if new is None else self._lend(new, cost)
            # Not ahead of parts already waiting: the costliest of those goes first.
            behind_one = self._nearly_free() if behind and not self._waiting else None
            if behind_one is not None:
                return self._lend(behind_one, cost)
            if not wait:
                return None
            woken: asyncio.Future[WorkerProcess | None]
            woken = asyncio.get_running_loop().create_future()
            self._queued += 1
            entry = (-cost, self._queued, woken, behind)
            heapq.heappush(self._waiting, entry)
            try:
                handed = await woken
            except BaseException:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                elif woken.done() and not woken.cancelled():
                    handed = woken.result()
                    if handed is None:
                        self._wake(everyone=False)  # woken, then interrupted: the next one goes
                    else:
                        self._unlend(handed, cost)
                raise
            if handed is not None:
                return handed

    def _lend(self, worker: WorkerProcess, cost: int) -> WorkerProcess:
        worker.costs.append(cost)
        self._busy.add(worker)
        self._pass_behind(worker)
        return worker

    def _unlend(self, worker: WorkerProcess, cost: int) -> None:
        """A part lent ``worker`` (``_pass_behind``) was interrupted before it sent anything:
        its place goes to the next waiter, or the worker is idle if that was all it had."""
        worker.costs.remove(cost)  # any entry of this cost: they count alike
        if worker.costs:
            self._pass_behind(worker)
            return
        self._busy.discard(worker)
        if not worker.dead:
            self._idle.append(worker)
            self._wake(everyone=False)

    def _pass_behind(self, worker: WorkerProcess) -> None:
        """While parts wait, a worker with one small part (``QUEUE_BEHIND``) is lent at once
        to the costliest waiter that takes a busy worker: its part is sent while this one is
        unpacked, and starts as soon as it ends."""
        if worker.dead or len(worker.costs) != 1 or worker.costs[0] > QUEUE_BEHIND:
            return
        takers = [e for e in self._waiting if e[3] and not e[2].done()]
        if not takers:
            return
        entry = min(takers)
        self._waiting.remove(entry)
        heapq.heapify(self._waiting)
        worker.costs.append(-entry[0])
        entry[2].set_result(worker)

    def _nearly_free(self) -> WorkerProcess | None:
        """The busy worker with the least left to do, if that is one part costing at most
        ``QUEUE_BEHIND``: a part sent to it now starts as soon as that one ends."""
        best: WorkerProcess | None = None
        for worker in self._busy:
            if worker.dead or len(worker.costs) != 1 or worker.costs[0] > QUEUE_BEHIND:
                continue
            if best is None or worker.costs[0] < best.costs[0]:
                best = worker
        return best

    async def _spawn(self, new: WorkerProcess | None = None) -> WorkerProcess | None:
        """A new worker (or ``new``, launched already), ready, for a slot already counted in
        ``_started``; None (and the slot given back, the unpacker broken) when none can be
        started."""
        try:
            new = new or WorkerProcess()
            if await new.wait_ready():
                return new
        except OSError:
            pass
        except BaseException:
            if new is not None:
                new.kill()
            self._started -= 1
            self._wake(everyone=True)
            raise
        if new is not None:
            new.kill()
        log.debug("no unpacking process could be started: wheels are unpacked in this one")
        self._started -= 1
        self._broken = True
        self._wake(everyone=True)
        return None

    def launch(self) -> None:
        """Start the processes of all workers but one now (at least one), with no event loop
        needed: they join the pool on a loop (``follow_launch``, or ``_adopt`` when one first
        asks for a worker). A process that cannot be started leaves the unpacker broken, as
        in ``_spawn``."""
        count = max(1, self.limit - 1)  # one core for kea's own thread (module docstring)
        while not self._broken and self._started < count:
            try:
                self._launched.append(WorkerProcess())
            except OSError:
                self._broken = True
                return
            self._started += 1

    def follow_launch(self) -> None:
        """After ``launch``, on the running event loop: the launched workers join the pool as
        they say they are ready, and once all have, the others start (``prestart``). A no-op
        when nothing was launched."""
        if not self._launched:
            return
        self._adopt()
        joining = set(self._starting)
        if not joining:  # all ready already
            self.prestart()
            return

        async def then_the_rest() -> None:
            await asyncio.wait(joining)
            self.prestart()

        self._hold(then_the_rest())

    def prestart(self) -> None:
        """Start the workers now, each put in the pool once it is ready: the caller knows
        wheels are coming (a download has begun), and a worker takes 40-80 ms to start.
        Called on the running event loop."""
        self._adopt()
        while not self._broken and self._started < self.limit:
            self._started += 1
            self._join(self._spawn())

    def _adopt(self) -> None:
        """The launched workers join the pool: at once each one that has said it is ready,
        the others as they say it (on the running loop). Joining through a task took the
        first worker 40-55 ms on a cold jupyter install: the task's few steps each waited for
        a turn of a loop busy with dozens of downloads, while the first 40 wheels waited."""
        launched, self._launched = self._launched, []
        for worker in launched:
            if worker.ready_now():
                self._release(worker, healthy=True)
            else:
                self._join(self._spawn(worker))

    def _join(self, spawn: Coroutine[Any, Any, WorkerProcess | None]) -> None:
        """Put the worker ``spawn`` gives in the pool once it is ready; the task is held
        until then."""

        async def start() -> None:
            worker = await spawn
            if worker is not None:
                self._release(worker, healthy=True)

        self._hold(start())

    def _hold(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task held in ``_starting`` until it is done."""
        task = asyncio.ensure_future(work)
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    def _release(self, worker: WorkerProcess, healthy: bool) -> None:
        """``worker`` is done with one part (its oldest): idle again once it has none left. A
        waiter is woken when a worker is idle or there is room for a new one; while the worker
        is on its next part, that part may take one behind it instead (``_pass_behind``)."""
        if worker.costs:
            worker.costs.popleft()
        if not worker.costs:
            self._busy.discard(worker)
        elif healthy and not worker.dead:
            self._pass_behind(worker)
        if not healthy:
            if not worker.dead:
                worker.dead = True
                self._started -= 1
                worker.close()
                self._wake(everyone=False)
        elif not worker.costs and not worker.dead:
            self._idle.append(worker)
            self._wake(everyone=False)

    def _wake(self, *, everyone: bool) -> None:
        """Wake the waiter with the costliest part, the oldest of those (a worker is free, or
        there is room for one), or all."""
        while self._waiting:
            woken = heapq.heappop(self._waiting)[2]
            if not woken.done():
                woken.set_result(None)
                if not everyone:
                    return

    def close(self, *, wait: bool = True) -> None:
        """End the idle workers (they exit at end of input); busy ones end when kea does.
        ``wait=False``: do not wait for them to exit now; a later ``close()`` does."""
        idle, self._idle = self._idle + self._launched, []
        self._launched = []
        self._started -= len(idle)
        for worker in idle:
            worker.close()
        self._ending.extend(idle)
        if not wait:
            return
        ending, self._ending = self._ending, []
        for worker in ending:  # each ends within milliseconds of its end of input
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()


async def _in_a_thread(fn: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    """``fn(*args, **kwargs)`` in a thread. Cancelled, it still waits for the thread, which
    cannot be stopped: the caller removes the target directory next, and a thread still
    writing into it would leave files behind (a ``.tmp-*`` directory in the cache)."""
    done = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])
        if not done.cancelled():
            done.exception()  # retrieved: the interruption is what is reported
        raise


_SHARED: Unpacker | None = None


def _shared() -> Unpacker:
    global _SHARED
    if _SHARED is None:
        import atexit

        _SHARED = Unpacker(processes(), broken=not sys.executable)
        atexit.register(_SHARED.close)
    return _SHARED


def release() -> None:
    """The run unpacks nothing more: the idle workers are told to end now, and exit while the
    run goes on (installing), not at its very end. A later ``unpack`` starts new ones."""
    if _SHARED is not None:
        _SHARED.close(wait=False)


def launch() -> None:
    """Have the workers start now, before the event loop runs: the run will download the
    wheels it installs (see the module docstring)."""
    _shared().launch()


def follow_launch() -> None:
    """On the running loop of a run that ``launch``-ed workers: the others start once those are
    ready (see the module docstring)."""
    if _SHARED is not None:
        _SHARED.follow_launch()


def prestart() -> None:
    """Have the workers start now, while a first wheel downloads (on the running loop)."""
    _shared().prestart()


async def unpack(
    wheel: Path, target: Path, filename: str, hashes: Mapping[str, str] | None = None
) -> str:
    """Unpack ``wheel`` into the existing, empty ``target`` in a worker process; returns the
    name of its ``.dist-info`` directory. Raises what ``unpack_wheel`` raises; ``hashes`` are
    what the whole wheel must hash to, checked before anything is written."""
    return await _shared().unpack(wheel, target, filename, hashes)
