"""Read a wheel's members straight from its bytes in memory, without ``zipfile``.

A worker unpacking jupyter's 97 wheels (12,112 members) spent ~250 of its ~680 ms in Python
around the work itself: ``zipfile`` building a ``ZipInfo`` per member (98 ms), decoding every
name twice through the cp437 codec, and a seek and three reads per member. Here the file is read
once, the central directory is walked with one ``struct`` call per entry, names are compared as
bytes, and each member is inflated from a slice of the file by libdeflate.

Only the common shape is read here: one disk, no zip64 fields, no data before the archive or
after its comment, a central directory whose entry count and size agree, members stored or
deflated and not encrypted. ``directory`` answers None for anything else, and the caller reads
that wheel with ``zipfile`` instead, so that a wheel is never read two ways (``zipfile``, which
pip uses, seeing other members than this reader).
"""

from __future__ import annotations

import collections
import struct
import zlib
from collections.abc import Iterator

import deflate

_END = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header, 46 bytes
LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header, 30 bytes
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_STORED, _DEFLATED = 0, 8
_ZIP64 = 0xFFFFFFFF
CHUNK = 1 << 16


class BadZip(Exception):
    """The archive is not a readable zip (its message says why)."""


TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from typing import NamedTuple

    class Entry(NamedTuple):
        name: str  # as the central directory names it
        raw_name: bytes
        method: int
        crc: int
        compressed: int
        size: int
        offset: int  # of its local header
        mode: int  # the Unix mode bits of its external attributes

else:  # typing costs the unpacking workers 5 ms to import; collections is loaded already
    Entry = collections.namedtuple("Entry", "name raw_name method crc compressed size offset mode")


def directory(data: bytes | mmap.mmap) -> list[Entry] | None:
    """The entries of the zip in ``data``, in order; None when ``zipfile`` must read it (see
    the module docstring). ``BadZip`` when it is no zip or its directory is broken."""
    end = _end_record(data)
    if end is None:
        return None
    _, disk, cd_disk, here, total, cd_size, cd_offset, _ = _END.unpack_from(data, end)
    if disk or cd_disk or here != total or total == 0xFFFF or _ZIP64 in (cd_size, cd_offset):
        return None  # several disks, or zip64
    if cd_offset + cd_size != end:
        return None  # data before the archive, or a zip64 locator: zipfile's business
    unpack = _CENTRAL.unpack_from
    entries: list[Entry] = []
    pos = cd_offset
    for _ in range(total):
        if pos + _CENTRAL.size > end:
            raise BadZip("Truncated central directory")
        (sig, _, _, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, attr,
         offset) = unpack(data, pos)  # fmt: skip
        if sig != b"PK\x01\x02":
            raise BadZip("Bad magic number for central directory")
        pos += _CENTRAL.size
        raw = data[pos : pos + nlen]
        pos += nlen + xlen + clen
        if flags & _FLAG_ENCRYPTED or method not in (_STORED, _DEFLATED):
            return None
        if _ZIP64 in (csize, usize, offset):
            return None
        if raw.isascii():
            name = raw.decode("ascii")
        else:
            try:
                name = raw.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
            except UnicodeDecodeError:
                raise BadZip("a member name is not valid UTF-8") from None
        entries.append(Entry(name, raw, method, crc, csize, usize, offset, attr >> 16))
    if pos != end:
        return None  # the count disagrees with the size: zipfile reads by size
    check_spans(
        [(e.offset, e.offset + LOCAL.size + len(e.raw_name) + e.compressed) for e in entries],
        cd_offset,
    )
    return entries


def check_spans(spans: list[tuple[int, int]], end: int) -> None:
    """``BadZip`` unless the members' spans (local header to the end of their data, at the
    least) are apart from one another and end before ``end``, the central directory.

    Members that share their bytes are how a small zip unpacks to a huge size (the overlapping
    "zip bomb": each member's declared size is honoured, but thousands reuse one deflate
    stream). No wheel builder writes them."""
    last = 0
    for start, stop in sorted(spans):
        if start < last:
            raise BadZip("members overlap in the archive")
        last = stop
    if last > end:
        raise BadZip("a member overlaps the central directory")


def _end_record(data: bytes | mmap.mmap) -> int | None:
    """Where the end record starts: the last signature in the file's last 64 KiB, as
    ``zipfile`` takes it, provided its comment ends the file exactly and no zip64 locator
    precedes it. None otherwise (``zipfile`` decides: the two readers never read one wheel two
    ways); ``BadZip`` when there is no signature."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - _END.size - 0xFFFF))
    if at < 0:
        raise BadZip("File is not a zip file")
    if at + _END.size > len(data):
        return None
    comment = int.from_bytes(data[at + 20 : at + 22], "little")
    if at + _END.size + comment != len(data) or data[max(0, at - 20) : at - 16] == b"PK\x06\x07":
        return None
    return at


def data_span(data: bytes | mmap.mmap, entry: Entry) -> tuple[int, int]:
    """Where the member's (compressed) bytes lie, after checking its local header."""
    offset = entry.offset
    if offset + LOCAL.size > len(data):
        raise BadZip("truncated local header")
    fields = LOCAL.unpack_from(data, offset)
    if fields[0] != b"PK\x03\x04":
        raise BadZip("bad local header magic")
    start = offset + LOCAL.size
    nlen, xlen = fields[10], fields[11]
    if data[start : start + nlen] != entry.raw_name:
        raise BadZip("local header names another member")
    start += nlen + xlen
    stop = start + entry.compressed
    if stop > len(data):
        raise BadZip("truncated member")
    return start, stop


def member_bytes(data: bytes | mmap.mmap, entry: Entry) -> bytes | bytearray | memoryview:
    """The member's content, inflated whole (never past its declared size) and checked
    against its CRC-32 and size."""
    start, stop = data_span(data, entry)
    return inflate(memoryview(data)[start:stop], entry.method, entry.size, entry.crc)


def inflate(
    raw: bytes | memoryview, method: int, size: int, crc: int
) -> bytes | bytearray | memoryview:
    """A member's ``raw`` bytes, stored or deflated (``method``), as its content, checked
    against its declared ``size`` and ``crc``; ``BadZip`` otherwise. Also used by
    ``kea.cache.extract_zip`` for the members it reads raw."""
    out: bytes | bytearray | memoryview
    if method == _STORED:
        out = raw
    else:
        # libdeflate inflates the whole member at once, 2.5 times as fast as zlib (jupyter's
        # 12,220 members: 175 against 435 ms), and never writes past the declared size: a
        # stream that holds more fails.
        try:
            out = deflate.deflate_decompress(raw, size)
        except deflate.DeflateError as e:
            raise BadZip(f"corrupt deflate data: {e}") from None
    if len(out) != size or deflate.crc32(out) != crc:
        raise BadZip("bad CRC-32 or size")
    return out


def member_chunks(data: bytes | mmap.mmap, entry: Entry) -> Iterator[bytes | memoryview]:
    """The member's content in pieces of at most ``CHUNK`` bytes (for large members: memory
    stays bounded), with the same checks as ``member_bytes`` once the last piece is out."""
    start, stop = data_span(data, entry)
    raw = memoryview(data)[start:stop]
    crc = 0
    size = 0
    if entry.method == _STORED:
        for i in range(0, len(raw), CHUNK):
            piece = raw[i : i + CHUNK]
            crc = zlib.crc32(piece, crc)
            size += len(piece)
            yield piece
    else:
        # The input goes in in pieces of CHUNK. ``unconsumed_tail`` is a copy of what a call
        # left of its input: handed the whole rest of the member each time, zlib copied it
        # again for every CHUNK of output, which made a large member quadratic (scipy's 7 MB
        # OpenBLAS took 228 ms, mostly memmove; the large set's cold install spent ~2 s so).
        inflater = zlib.decompressobj(-15)
        at = 0
        pending: bytes | memoryview = b""
        while not inflater.eof:
            if not pending:
                if at >= len(raw):
                    raise BadZip("truncated deflate data")  # the stream ends early
                pending = raw[at : at + CHUNK]
                at += len(pending)
            try:
                out = inflater.decompress(pending, CHUNK)
            except zlib.error as e:
                raise BadZip(f"corrupt deflate data: {e}") from None
            if not out and len(inflater.unconsumed_tail) == len(pending):
                raise BadZip("truncated deflate data")  # no progress
            pending = inflater.unconsumed_tail
            size += len(out)
            if size > entry.size:
                raise BadZip("bad CRC-32 or size")
            crc = zlib.crc32(out, crc)
            if out:
                yield out
    if size != entry.size or crc != entry.crc:
        raise BadZip("bad CRC-32 or size")
