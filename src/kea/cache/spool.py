"""Spool a download to a file off the event loop: a thread hashes and writes its chunks.

The event loop only hands chunks over (a queue), so hashing and writing a large wheel never
stalls the other requests the loop is serving. At most ``MAX_PENDING`` chunks wait in the queue:
the producer waits for room, so a disk slower than the network cannot grow memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import queue
import threading
from collections.abc import AsyncIterable
from pathlib import Path

MAX_PENDING = 8


class WriteFailed(Exception):
    """Writing the spool file failed (``os_error`` says why)."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.strerror or str(os_error))
        self.os_error = os_error


_END = object()  # every chunk was handed over: close the file, report the digests
_ABORT = object()  # the download failed or was cancelled: stop writing


async def spool(
    chunks: AsyncIterable[bytes], path: Path, hashers: dict[str, hashlib._Hash]
) -> tuple[dict[str, str], int]:
    """Write ``chunks`` to ``path`` (created) in a thread, updating ``hashers``.

    Returns (hex digests by algorithm, size). A write error (disk full...) is raised as
    ``WriteFailed`` once every chunk is read; the caller removes ``path`` in every case.
    """
    loop = asyncio.get_running_loop()
    room = asyncio.Semaphore(MAX_PENDING)
    inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
    done: asyncio.Future[tuple[dict[str, str], int]] = loop.create_future()

    def freed() -> None:
        room.release()

    def finish(result: tuple[dict[str, str], int] | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            assert result is not None
            done.set_result(result)

    def tell(result: tuple[dict[str, str], int] | None, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: no one is waiting
            loop.call_soon_threadsafe(finish, result, error)

    def writer() -> None:
        size = 0
        item: object = None
        error: BaseException | None = None
        try:
            out = open(path, "wb")  # noqa: SIM115 - closed below, after the last chunk
        except OSError as e:
            error, out = e, None
        try:
            while True:
                item = inbox.get()
                if item is _END or item is _ABORT:
                    break
                assert isinstance(item, bytes)
                if error is None and out is not None:
                    try:
                        for h in hashers.values():
                            h.update(item)
                        out.write(item)
                        size += len(item)
                    except OSError as e:
                        error = e
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(freed)
        finally:
            if out is not None:
                try:
                    out.close()
                except OSError as e:
                    error = error or e
        if item is _ABORT:
            tell(None, asyncio.CancelledError())
        elif isinstance(error, OSError):
            tell(None, WriteFailed(error))
        elif error is not None:
            tell(None, error)
        else:
            tell(({a: h.hexdigest() for a, h in hashers.items()}, size), None)

    thread = threading.Thread(target=writer, name="kea-spool", daemon=True)
    thread.start()
    try:
        async for chunk in chunks:
            await room.acquire()
            inbox.put(bytes(chunk))
    except BaseException:
        inbox.put(_ABORT)
        thread.join()  # at most MAX_PENDING chunks to go: the file is closed before removal
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: the download's own error is the one that counts
        raise
    inbox.put(_END)
    return await done
