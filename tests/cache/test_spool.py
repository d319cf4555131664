"""kea.cache.spool: chunks hashed and written in a thread, with bounded hand-over."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kea.cache.archive import hashers_for
from kea.cache.spool import MAX_PENDING, WriteFailed, spool


async def _chunks(parts: list[bytes], seen: list[int] | None = None) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if seen is not None:
            seen.append(i)
        yield part
        await asyncio.sleep(0)


def test_spool_writes_and_hashes_every_chunk_in_order(tmp_path: Path) -> None:
    parts = [bytes([i % 251]) * (1000 + i) for i in range(5 * MAX_PENDING)]
    data = b"".join(parts)
    path = tmp_path / "out.whl"
    digests, size = asyncio.run(spool(_chunks(parts), path, hashers_for({"sha512": "x"})))
    assert path.read_bytes() == data
    assert size == len(data)
    assert digests == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest(),
    }


def test_spool_hashes_off_the_event_loop_thread(tmp_path: Path) -> None:
    threads: set[str] = set()

    class Spy:
        def __init__(self) -> None:
            self.inner = hashlib.sha256()

        def update(self, data: bytes) -> None:
            threads.add(threading.current_thread().name)
            self.inner.update(data)

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    async def main() -> str:
        await spool(_chunks([b"a" * 10, b"b" * 10]), tmp_path / "f", {"sha256": Spy()})  # type: ignore[dict-item]
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert threads == {"kea-spool"}
    assert loop_thread not in threads


def test_spool_write_failure_is_reported_after_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "out.whl"
    seen: list[int] = []
    parts = [b"x" * 100] * (3 * MAX_PENDING)
    with pytest.raises(WriteFailed) as info:
        asyncio.run(spool(_chunks(parts, seen), path, hashers_for(None)))
    assert isinstance(info.value.os_error, FileNotFoundError)
    assert len(seen) == len(parts)  # the producer never stalled on a writer that gave up
    assert not path.exists()


def test_spool_stops_the_writer_when_the_download_fails(tmp_path: Path) -> None:
    path = tmp_path / "out.whl"

    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        raise ConnectionResetError("peer went away")

    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(ConnectionResetError):
        asyncio.run(spool(broken(), path, hashers_for(None)))
    left = [t for t in threading.enumerate() if t.name == "kea-spool" and t.ident not in before]
    assert left == []  # joined: the file is closed before the caller removes it
    assert path.read_bytes() == b"first"


def test_spool_cancelled_mid_stream_joins_its_thread(tmp_path: Path) -> None:
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
    assert not [t for t in threading.enumerate() if t.name == "kea-spool"]
    assert path.read_bytes() == b"a" * 10
