"""Unpack wheels into the cache in worker processes.

Unpacking is many small steps per member (read, inflate, hash, create, write, close), each of
which releases and takes back the GIL. Run in threads of the installing process, they took
turns with each other and with the event loop that downloads: a cold jupyter install made
444,278 futex calls (strace), and on tmpfs one thread unpacked jedi faster (185 ms) than
three (270-320 ms). A worker process has a GIL of its own. Cold jupyter install from loopback
to a journaled ext4, 3 runs each: "Prepared" 1.36-1.60 s with threads, 0.66-0.74 s with two
workers.

``unpack(wheel, target, filename)`` blocks its calling thread until the wheel is unpacked
(``kea.cache.archive.unpack_wheel``, with every check it makes) into ``target``; a
``WheelError`` is raised again here, message and hint intact, an ``OSError`` as the same
``OSError``. A worker takes one wheel at a time, on one thread; a wheel of ``SPLIT_MIN``
members or more is split across the workers free at that moment (jedi's 5,626 members:
370-395 ms -> 186-242 ms on tmpfs). Workers start on first use, at most ``processes()`` of
them, and stay for the rest of the run: each says it is ready on its stdout (what the
interpreter printed before that is skipped), then reads one request per line on its stdin and
answers on a copy of its stdout (stdout itself then leads nowhere), and ends at end of file,
which comes when kea exits, however it exits. Workers are in a process group of their own and
ignore Ctrl-C: an interrupted kea stops the workers still busy for it before it cleans up.
A worker that ends while idle is replaced; one that ends (or answers nonsense) while it
unpacks fails that wheel, with a hint. Where no worker can be started, or one ends before it
is ready (kea importable only from the working directory, say), wheels are unpacked in the
calling thread.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from kea.errors import KeaError

log = logging.getLogger("kea.cache")

_MAX = 4  # beyond this, the downloads rather than the unpacking set the pace
SPLIT_MIN = 1000  # members: a wheel this large is split across the workers free at the time


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


_READY = b"kea-unpacker ready\n"


class _Worker:
    def __init__(self) -> None:
        # -P: the working directory must not shadow modules. The interpreter's isolation flags
        # and UTF-8 mode carry over (paths travel as text). process_group=0: a Ctrl-C at the
        # terminal reaches kea alone; a worker ends when kea closes its input.
        flags = ["-P", "-X", f"utf8={sys.flags.utf8_mode}"]
        flags += ["-I"] if sys.flags.isolated else []
        flags += ["-E"] if sys.flags.ignore_environment and not sys.flags.isolated else []
        flags += ["-s"] if sys.flags.no_user_site and not sys.flags.isolated else []
        self.proc = subprocess.Popen(
            [sys.executable, *flags, "-m", "kea.cache.unpacker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            process_group=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout

    def wait_ready(self) -> bool:
        """Skip what the interpreter printed while starting (a ``sitecustomize``, a ``.pth``
        file) up to the worker's ready line; False when it ended first (kea not importable
        without the working directory, say)."""
        while True:
            try:
                line = self.stdout.readline()
            except OSError:
                return False
            if not line:
                return False
            if line.endswith(_READY):
                return True

    def send(self, wheel: Path, target: Path, filename: str, part: tuple[int, int]) -> bool:
        """Hand the worker its request; False when it is gone (it read nothing)."""
        request = json.dumps([os.fspath(wheel), os.fspath(target), filename, *part])
        try:
            self.stdin.write(request.encode("utf-8", "surrogateescape") + b"\n")
            self.stdin.flush()
        except OSError:
            return False
        return True

    def receive(self, filename: str) -> str:
        """The worker's answer to the request sent: the dist-info name, or what it raised."""
        try:
            line = self.stdout.readline()
        except OSError:
            line = b""
        if not line:
            raise self._failed(filename, "ended")
        try:
            kind, *rest = json.loads(line)
            if kind == "ok":
                return str(rest[0])
            if kind == "wheel":
                from kea.cache.archive import WheelError

                error: Exception = WheelError(str(rest[0]), hint=rest[1])
            elif kind == "os":  # as the calling thread would have met it (disk full...)
                error = OSError(rest[0], rest[1], rest[2])
            else:
                error = KeaError(f"cannot unpack {filename}: {rest[0]}", hint=rest[1])
        except (ValueError, TypeError, IndexError):
            raise self._failed(filename, "answered what kea cannot read") from None
        raise error

    def _failed(self, filename: str, what: str) -> KeaError:
        """The worker is not to be trusted further: it is stopped (so it writes nothing more)
        and the wheel fails."""
        self.kill()
        code = self.proc.returncode
        return KeaError(
            f"cannot unpack {filename}: the unpacking process {what}"
            + (f" (exit status {code})" if code is not None and code > 0 else ""),
            hint="run the command again; if this happens again, report it as a bug in kea",
        )

    def kill(self) -> None:
        """Stop the worker and wait for it, so nothing of it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close()

    def close(self) -> None:
        try:
            self.stdin.close()
        except OSError:
            pass


class Unpacker:
    """Up to ``limit`` workers, each lent to one calling thread at a time. ``broken``: no
    worker is started, every wheel is unpacked in the calling thread."""

    def __init__(self, limit: int, *, broken: bool = False) -> None:
        self.limit = limit
        self._idle: list[_Worker] = []
        self._started = 0
        self._broken = broken  # also set once a worker could not start
        self._cond = threading.Condition()

    def unpack(self, wheel: Path, target: Path, filename: str) -> str:
        from kea.cache.archive import unpack_wheel

        first = self._acquire(wait=True)
        if first is None:
            return unpack_wheel(wheel, target, filename)
        workers = [first]
        if self.limit > 1 and member_count(wheel) >= SPLIT_MIN:
            while len(workers) < self.limit:  # only workers that are free now
                more = self._acquire(wait=False)
                if more is None:
                    break
                workers.append(more)
        n = len(workers)
        pending: list[_Worker] = []
        here: list[int] = []
        for k, worker in enumerate(workers):
            if worker.send(wheel, target, filename, (k, n)):
                pending.append(worker)
            else:  # it died while idle and read nothing: that part is done here instead
                worker.kill()
                self._release(worker, healthy=False)
                here.append(k)
        results: list[str] = []
        errors: list[BaseException] = []
        try:
            for k in here:
                try:
                    results.append(unpack_wheel(wheel, target, filename, part=(k, n)))
                except (KeaError, OSError) as e:
                    errors.append(e)
            while pending:  # every part is waited for: none may still be writing afterwards
                worker = pending.pop(0)
                healthy = False
                try:
                    results.append(worker.receive(filename))
                    healthy = True
                except (KeaError, OSError) as e:
                    errors.append(e)
                    healthy = worker.proc.poll() is None  # the wheel's or the disk's fault
                finally:
                    if not healthy:  # dead already, or interrupted while it still writes
                        worker.kill()
                    self._release(worker, healthy)
        except BaseException:
            for worker in pending:  # interrupted: the parts still running are stopped
                worker.kill()
                self._release(worker, healthy=False)
            raise
        if errors:
            raise errors[0]
        return results[0]

    def _acquire(self, *, wait: bool) -> _Worker | None:
        """An idle worker, else a new one if there is room; else wait for one (``wait``) or
        None. None also when no worker can be started: the caller unpacks by itself."""
        with self._cond:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.proc.poll() is None:
                        return worker
                    self._started -= 1  # it died while idle
                if self._broken:
                    return None
                if self._started < self.limit:
                    self._started += 1
                    break
                if not wait:
                    return None
                self._cond.wait()
        return self._spawn()  # outside the lock: other threads may take idle ones meanwhile

    def _spawn(self) -> _Worker | None:
        """A new worker, ready, for a slot already counted in ``_started``; None (and the
        slot given back, the unpacker broken) when none can be started."""
        new: _Worker | None = None
        try:
            new = _Worker()
            if new.wait_ready():
                return new
        except OSError:
            pass
        if new is not None:
            new.kill()
        log.debug("no unpacking process could be started: wheels are unpacked in this one")
        with self._cond:
            self._started -= 1
            self._broken = True
            self._cond.notify_all()
        return None

    def prestart(self) -> None:
        """Start the workers in the background, each put in the pool once it is ready: the
        caller knows wheels are coming (a download has begun), and a worker takes about
        40 ms to start."""

        def start() -> None:
            while True:
                with self._cond:
                    if self._broken or self._started >= self.limit:
                        return
                    self._started += 1
                worker = self._spawn()
                if worker is None:
                    return
                self._release(worker, healthy=True)

        threading.Thread(target=start, name="kea-unpacker-start", daemon=True).start()

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            if healthy:
                self._idle.append(worker)
            else:
                self._started -= 1
                worker.close()
            self._cond.notify()

    def close(self) -> None:
        """End the idle workers (they exit at end of input); busy ones end when kea does."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._started -= len(idle)
        for worker in idle:
            worker.close()
        for worker in idle:  # each ends within milliseconds of its end of input
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()


_SHARED: Unpacker | None = None
_SHARED_LOCK = threading.Lock()


def _shared() -> Unpacker:
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            import atexit

            _SHARED = Unpacker(processes(), broken=not sys.executable)
            atexit.register(_SHARED.close)
        return _SHARED


_PRESTARTED = False


def prestart() -> None:
    """Have the workers start now (once per run), while a first wheel downloads."""
    global _PRESTARTED
    if not _PRESTARTED:
        _PRESTARTED = True
        _shared().prestart()


def unpack(wheel: Path, target: Path, filename: str) -> str:
    """Unpack ``wheel`` into the existing, empty ``target`` in a worker process; returns the
    name of its ``.dist-info`` directory. Raises what ``unpack_wheel`` raises."""
    return _shared().unpack(wheel, target, filename)


def _serve() -> None:
    """A worker: one JSON request per line on stdin, one reply per line on stdout."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the installing process decides about Ctrl-C
    from kea.cache.archive import WheelError, unpack_wheel

    # Replies go to a copy of stdout; stdout itself now leads nowhere, so that nothing printed
    # from here on can come between them.
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    out.write(_READY)
    out.flush()
    for line in sys.stdin.buffer:
        wheel, target, filename, k, n = json.loads(line.decode("utf-8", "surrogateescape"))
        reply: list[object]
        try:
            # One thread: the threads of one process would take turns with the GIL; the other
            # workers are the parallelism (a large wheel is split across them).
            dist_info = unpack_wheel(Path(wheel), Path(target), filename, part=(k, n), threads=1)
            reply = ["ok", dist_info]
        except WheelError as e:
            reply = ["wheel", e.message, e.hint]
        except KeaError as e:
            reply = ["kea", e.message, e.hint]
        except OSError as e:
            reply = ["os", e.errno, e.strerror, e.filename]
        except Exception as e:  # reported to the installing process, which fails the run
            reply = ["kea", f"{type(e).__name__}: {e}", "this is a bug in kea"]
        out.write(json.dumps(reply).encode("utf-8", "surrogateescape") + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
