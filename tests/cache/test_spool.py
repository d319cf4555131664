"""kea.cache.spool: chunks hashed and written as they arrive, on the event loop's thread."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kea.cache.archive import hashers_for
from kea.cache.spool import WriteFailed, spool


async def _chunks(parts: list[bytes], seen: list[int] | None = None) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if seen is not None:
            seen.append(i)
        yield part
        await asyncio.sleep(0)


def test_spool_writes_and_hashes_every_chunk_in_order(tmp_path: Path) -> None:
    parts = [bytes([i % 251]) * (1000 + i) for i in range(40)]
    data = b"".join(parts)
    path = tmp_path / "out.whl"
    digests, size = asyncio.run(spool(_chunks(parts), path, hashers_for({"sha512": "x"})))
    assert path.read_bytes() == data
    assert size == len(data)
    assert digests == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest(),
    }


def test_spool_starts_no_thread(tmp_path: Path) -> None:
    """The hand-over to a thread per download cost more than it moved (see the module)."""
    seen: set[str] = set()

    class Spy:
        def __init__(self) -> None:
            self.inner = hashlib.sha256()

        def update(self, data: bytes) -> None:
            seen.add(threading.current_thread().name)
            self.inner.update(data)

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    async def main() -> tuple[str, int]:
        before = threading.active_count()
        await spool(_chunks([b"a" * 10, b"b" * 10]), tmp_path / "f", {"sha256": Spy()})  # type: ignore[dict-item]
        return threading.current_thread().name, threading.active_count() - before

    loop_thread, started = asyncio.run(main())
    assert seen == {loop_thread}
    assert started == 0


def test_spool_write_failure_stops_the_download_at_once(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "out.whl"
    seen: list[int] = []
    with pytest.raises(WriteFailed) as info:
        asyncio.run(spool(_chunks([b"x" * 100] * 5, seen), path, hashers_for(None)))
    assert isinstance(info.value.os_error, FileNotFoundError)
    assert seen == []  # nothing more is read for a file that cannot be written
    assert not path.exists()


def test_spool_write_failure_mid_stream(tmp_path: Path) -> None:
    """A write that fails half-way (disk full) is WriteFailed, and the rest is not read."""
    seen: list[int] = []
    parts = [b"x" * (1 << 16)] * 5
    with pytest.raises(WriteFailed) as info:
        asyncio.run(spool(_chunks(parts, seen), Path("/dev/full"), hashers_for(None)))
    assert info.value.os_error.errno == 28  # ENOSPC
    assert len(seen) < len(parts)


def test_spool_closes_the_file_when_the_download_fails(tmp_path: Path) -> None:
    path = tmp_path / "out.whl"

    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(spool(broken(), path, hashers_for(None)))
    assert path.read_bytes() == b"first"  # written and closed before the caller removes it


def test_spool_cancelled_mid_stream_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.whl"

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * 10
        await asyncio.sleep(30)
        yield b"never"

    async def main() -> None:
        task = asyncio.create_task(spool(slow(), path, hashers_for(None)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert path.read_bytes() == b"a" * 10
