"""kea's end of one unpacking worker process: starting it, and its pipes.

The event loop talks to the worker over its pipes itself (a request line written, the answer
line awaited with ``add_reader``), so no thread waits on a worker: with a thread per wheel
blocked on its worker's answer, a cold jupyter install made 6,400-7,800 voluntary context
switches, and 1,900 without. The pool that lends workers to wheels is ``kea.cache.unpacker``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from kea.cache.worker import READY
from kea.child import kea_python
from kea.errors import KeaError


class WorkerProcess:
    """One unpacking worker (``kea.cache.worker``), seen from kea: started at once; its requests
    and answers, one line each."""

    def __init__(self) -> None:
        # process_group=0: a Ctrl-C at the terminal reaches kea alone; a worker ends when kea
        # closes its input.
        self.proc = subprocess.Popen(
            kea_python("from kea.cache.worker import main; main()"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            process_group=0,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.out_fd = self.proc.stdout.fileno()
        self._buffer = bytearray()
        self.costs: collections.deque[int] = collections.deque()  # of the parts sent, unanswered
        self.dead = False  # killed, or found dead: no longer counted in ``_started``
        self._turn: asyncio.Future[None] | None = None  # the last part's answer, read or not

    def take_turn(self) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """(the answer to wait for before reading this part's, this part's turn): the worker
        answers in the order it was sent its parts."""
        before, self._turn = self._turn, asyncio.get_running_loop().create_future()
        return before, self._turn

    async def _line(self) -> bytes:
        """The next line the worker writes (with its newline); what is left, possibly b"", at
        end of file. The loop wakes this only when the pipe has something to read."""
        while True:
            line = self._whole_line()
            if line is not None:
                return line
            chunk = await self._read()
            if not chunk:
                line, self._buffer = bytes(self._buffer), bytearray()
                return line
            self._buffer += chunk

    def _whole_line(self) -> bytes | None:
        """The next whole line already read (with its newline), taken from the buffer; None
        when there is none yet."""
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line

    async def _read(self) -> bytes:
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(self.out_fd, wake)
        try:
            await readable
        finally:
            loop.remove_reader(self.out_fd)
        try:
            return os.read(self.out_fd, 1 << 16)
        except OSError:
            return b""

    def ready_now(self) -> bool:
        """Whether the worker has said it is ready already: its ready line is in the pipe,
        read here without waiting. What came before the line is skipped, as ``wait_ready``
        skips it; a line not yet whole stays for ``wait_ready``."""
        import select

        while select.select([self.out_fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.out_fd, 1 << 16)
            except OSError:
                return False
            if not chunk:  # it ended; wait_ready reads the end of file again
                return False
            self._buffer += chunk
        while (line := self._whole_line()) is not None:
            if line.endswith(READY):
                return True
        return False

    async def wait_ready(self) -> bool:
        """Skip what the interpreter printed while starting (a ``sitecustomize``, a ``.pth``
        file) up to the worker's ready line; False when it ended first (kea not importable
        without the working directory, say)."""
        while True:
            line = await self._line()
            if not line.endswith(b"\n"):
                return False
            if line.endswith(READY):
                return True

    def send(
        self,
        wheel: Path,
        target: Path,
        filename: str,
        part: tuple[int, int],
        hashes: Mapping[str, str] | None = None,
    ) -> bool:
        """Hand the worker its request; False when it is gone (it read nothing). The line is
        far shorter than a pipe's buffer (64 KiB), and an idle worker's pipe is empty: this
        does not block. ``hashes``: what the whole wheel must hash to (``unpack_wheel``)."""
        request = json.dumps(
            [os.fspath(wheel), os.fspath(target), filename, *part, dict(hashes) if hashes else None]
        )
        line = memoryview(request.encode("utf-8", "surrogateescape") + b"\n")
        try:
            while line:  # a write to a pipe of more than 4 KiB may be cut short
                line = line[self.stdin.write(line) or 0 :]
        except OSError:
            return False
        return True

    async def receive(self, filename: str) -> str:
        """The worker's answer to the request sent: the dist-info name, or what it raised."""
        line = await self._line()
        if not line.endswith(b"\n"):
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
        for stream in (self.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
