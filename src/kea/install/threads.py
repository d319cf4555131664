"""The installer's few threads: ``submit`` a call, ``map`` one over items, and end.

In place of ``concurrent.futures.ThreadPoolExecutor``, which imports ``logging`` (and with it
``traceback``, ``linecache``, ``tokenize``, ``string``) and ``queue``: modules that a warm
``kea pip install`` loads for nothing else (``kea.log`` keeps ``logging`` out of a run that
writes no record). Leaving the pool, even by an exception, drops the calls not started yet and
waits for those running: a failed install rolls back only once no thread writes any more.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Job(Generic[R]):
    """One submitted call: ``result()`` waits for it, then returns its value or raises what
    it raised."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: R | None = None
        self._error: BaseException | None = None

    def result(self) -> R:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class Threads:
    """Up to ``size`` threads, started as calls are submitted; use as a context manager."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._calls: deque[tuple[Job[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[..., R], *args: Any) -> Job[R]:
        job: Job[R] = Job()
        with self._lock:
            if self._closed:
                raise RuntimeError("the installer's threads have ended")
            self._calls.append((job, fn, args))
            if self._idle:
                self._lock.notify()
            elif len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name="kea-install", daemon=True)
                self._threads.append(thread)
                thread.start()
        return job

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` of each item, in order, once every call has ended; the first failure (in
        item order) is raised."""
        jobs = [self.submit(fn, item) for item in items]
        for job in jobs:
            job._done.wait()
        return [job.result() for job in jobs]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._calls and not self._closed:
                    self._idle += 1
                    self._lock.wait()
                    self._idle -= 1
                if not self._calls:
                    return
                job, fn, args = self._calls.popleft()
            try:
                job._value = fn(*args)
            except BaseException as e:  # handed to whoever waits for the job
                job._error = e
            job._done.set()

    def close(self) -> None:
        """Drop the calls not started, and wait for the running ones (and the threads) to end."""
        with self._lock:
            self._closed = True
            dropped = list(self._calls)
            self._calls.clear()
            self._lock.notify_all()
        for job, _, _ in dropped:
            job._error = RuntimeError("the installer's threads ended before this call started")
            job._done.set()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> Threads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
