"""A wheel's ``*.dist-info/METADATA``: from a local zip, an unpacked archive, or by HTTP ranges.

The range reader needs no HEAD (pre-signed URLs are signed for GET only): it asks for the tail of
the file with a suffix range (``Range: bytes=-N``), finds the zip's central directory (zip64
included), then reads only the METADATA member's bytes, and checks them against the CRC-32 of
the central directory. Anything unusual raises ``RangeUnavailable`` so the caller falls back to
downloading the whole wheel (which is hash-verified); when the server ignored ``Range`` and sent
the whole file, the exception carries it so nothing is downloaded twice.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO

from kea.errors import KeaError

TAIL = 64 * 1024

_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOC = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CDIR = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)

# (Range header value) -> (status, headers, body)
RangeFetch = Callable[[str], Awaitable[tuple[int, Mapping[str, str], bytes]]]


class RangeUnavailable(Exception):
    """Range reading did not work; ``body`` is the whole file when the server sent it anyway."""

    def __init__(self, why: str, body: bytes | None = None) -> None:
        super().__init__(why)
        self.body = body


def _is_metadata_path(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA"


def _pick(filename: str, names: list[str]) -> str:
    candidates = [n for n in names if _is_metadata_path(n)]
    if not candidates:
        raise KeaError(f"{filename}: no .dist-info/METADATA in the wheel")
    if len(candidates) == 1:
        return candidates[0]
    stem = filename.split("-", 1)[0].lower()
    for c in candidates:
        if c.split("-", 1)[0].lower() == stem:
            return c
    raise KeaError(f"{filename}: more than one .dist-info directory in the wheel")


def metadata_from_zip(path: Path | str | IO[bytes], filename: str | None = None) -> bytes:
    """METADATA of a wheel file on disk (or in a file object)."""
    import zipfile  # with bz2 and lzma: only for a whole wheel, never on a warm resolve

    filename = filename or (Path(path).name if isinstance(path, str | Path) else "wheel")
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(_pick(filename, zf.namelist()))
    except OSError as e:  # not its text: that quotes the path, which may be a mistyped URL
        raise KeaError(f"{filename}: not a valid wheel: {e.strerror or type(e).__name__}") from None
    except (zipfile.BadZipFile, KeyError) as e:
        raise KeaError(f"{filename}: not a valid wheel: {e}") from None


def metadata_from_bytes(data: bytes, filename: str) -> bytes:
    import io

    return metadata_from_zip(io.BytesIO(data), filename)


def metadata_from_archive(archive: Path, filename: str) -> bytes:
    """METADATA of an unpacked wheel in the cache."""
    names = [f"{p.name}/METADATA" for p in archive.iterdir() if p.name.endswith(".dist-info")]
    rel = _pick(filename, names)
    try:
        return (archive / rel).read_bytes()
    except OSError as e:
        raise KeaError(f"{filename}: cannot read {rel} from the cache: {e.strerror}") from None


class _Sparse:
    """The parts of a remote file fetched so far."""

    def __init__(self, fetch: RangeFetch) -> None:
        self.fetch = fetch
        self.size = 0
        self.segments: list[tuple[int, bytes]] = []
        self.requests = 0

    async def tail(self, n: int) -> None:
        status, headers, body = await self.fetch(f"bytes=-{n}")
        self.requests += 1
        if status == 200:
            raise RangeUnavailable("the server ignored Range and sent the whole file", body)
        if status != 206:
            raise RangeUnavailable(f"range request answered {status}")
        start, total = self._content_range(headers, len(body))
        self.size = total
        self.segments.append((start, body))

    def _content_range(self, headers: Mapping[str, str], length: int) -> tuple[int, int]:
        value = None
        for k, v in headers.items():
            if k.lower() == "content-range":
                value = v
                break
        m = _CONTENT_RANGE_RE.match(value or "")
        if not m or m.group(3) == "*":
            raise RangeUnavailable("206 without a usable Content-Range")
        start, end = int(m.group(1)), int(m.group(2))
        if end - start + 1 != length:
            raise RangeUnavailable("Content-Range does not match the body")
        return start, int(m.group(3))

    async def read(self, start: int, length: int) -> bytes:
        if start < 0 or length < 0 or start + length > self.size:
            raise RangeUnavailable("zip structure points outside the file")
        for seg_start, data in self.segments:
            if seg_start <= start and start + length <= seg_start + len(data):
                off = start - seg_start
                return data[off : off + length]
        status, headers, body = await self.fetch(f"bytes={start}-{start + length - 1}")
        self.requests += 1
        if status != 206:
            raise RangeUnavailable(f"range request answered {status}")
        got_start, _ = self._content_range(headers, len(body))
        if got_start != start or len(body) < length:
            raise RangeUnavailable("the server answered a different range")
        self.segments.append((start, body))
        return body[:length]


async def metadata_by_range(fetch: RangeFetch, filename: str, *, tail: int = TAIL) -> bytes:
    """METADATA of a remote wheel using HTTP range GETs only; ``RangeUnavailable`` otherwise."""
    f = _Sparse(fetch)
    await f.tail(tail)
    _, tail_data = f.segments[0]
    at = tail_data.rfind(b"PK\x05\x06")
    if at < 0 or len(tail_data) - at < _EOCD.size:
        raise RangeUnavailable("no end of central directory in the tail")
    (_, _, _, _, entries, cd_size, cd_offset, _) = _EOCD.unpack_from(tail_data, at)
    if 0xFFFFFFFF in (cd_size, cd_offset) or entries == 0xFFFF:
        loc_at = at - _EOCD64_LOC.size
        if loc_at < 0:
            raise RangeUnavailable("zip64 locator outside the tail")
        sig, _, eocd64_offset, _ = _EOCD64_LOC.unpack_from(tail_data, loc_at)
        if sig != b"PK\x06\x07":
            raise RangeUnavailable("bad zip64 locator")
        rec = await f.read(eocd64_offset, _EOCD64.size)
        fields = _EOCD64.unpack(rec)
        if fields[0] != b"PK\x06\x06":
            raise RangeUnavailable("bad zip64 end of central directory")
        cd_size, cd_offset = fields[8], fields[9]
    cdir = await f.read(cd_offset, cd_size)
    pos = 0
    found: list[tuple[str, int, int, int, int, int]] = []
    while pos + _CDIR.size <= len(cdir):
        fields = _CDIR.unpack_from(cdir, pos)
        if fields[0] != b"PK\x01\x02":
            raise RangeUnavailable("bad central directory entry")
        flags, method, crc, comp, uncomp = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_len, extra_len, comment_len, local = fields[10], fields[11], fields[12], fields[16]
        raw_name = cdir[pos + _CDIR.size : pos + _CDIR.size + name_len]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        if 0xFFFFFFFF in (comp, uncomp, local):
            extra = cdir[pos + _CDIR.size + name_len : pos + _CDIR.size + name_len + extra_len]
            comp, uncomp, local = _zip64_extra(extra, comp, uncomp, local)
        if _is_metadata_path(name):
            found.append((name, method, crc, comp, uncomp, local))
        pos += _CDIR.size + name_len + extra_len + comment_len
    try:
        chosen = _pick(filename, [n for n, *_ in found])
    except KeaError as e:
        raise RangeUnavailable(str(e)) from None
    _, method, crc, comp, uncomp, local = next(x for x in found if x[0] == chosen)
    header = await f.read(local, _LOCAL.size)
    lf = _LOCAL.unpack(header)
    if lf[0] != b"PK\x03\x04":
        raise RangeUnavailable("bad local file header")
    data_start = local + _LOCAL.size + lf[9] + lf[10]
    raw = await f.read(data_start, comp)
    if method == 0:
        data = raw
    elif method == 8:
        try:
            data = zlib.decompress(raw, -15)
        except zlib.error as e:
            raise RangeUnavailable(f"cannot inflate METADATA: {e}") from None
    else:
        raise RangeUnavailable(f"unsupported compression method {method}")
    if len(data) != uncomp or zlib.crc32(data) != crc:
        raise RangeUnavailable("METADATA does not match its CRC-32")
    return data


def _zip64_extra(extra: bytes, comp: int, uncomp: int, local: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<2H", extra, pos)
        if tag == 1:
            body = extra[pos + 4 : pos + 4 + size]
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if uncomp == 0xFFFFFFFF and values:
                uncomp = values.pop(0)
            if comp == 0xFFFFFFFF and values:
                comp = values.pop(0)
            if local == 0xFFFFFFFF and values:
                local = values.pop(0)
            break
        pos += 4 + size
    return comp, uncomp, local
