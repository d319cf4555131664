"""Write a wheel's members out, each checked against its RECORD hash, on a few threads.

``kea.cache.archive.unpack_wheel`` decides what may be written (paths, RECORD coverage); this
module does the writing, fast: a small member is read raw from the zip (local header, one
inflate by libdeflate bounded by its declared size, CRC-32 and size checked) and written with
one ``os.write``; a large or unusual member (another compression, encryption) is streamed
through ``zipfile``. In the installing process, wheels with many members are split across
threads: file creation, inflating and hashing all release the GIL. The unpacking workers
(``kea.cache.unpacker``) write on one thread each and split large wheels between them.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import deflate

from kea.cache.archive import WheelError
from kea.cache.zipread import BadZip, Entry, member_bytes, member_chunks

M = TypeVar("M")

SMALL = 8 << 20  # members up to this size are read whole (and inflated by libdeflate)
SMALL_SHARED = 1 << 20  # the same where several threads unpack at once: memory stays bounded
CHUNK = 1 << 16
PARALLEL_MIN = 64  # members before a second thread pays off
WORKERS = 3

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # the local file header, 30 bytes
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800

RecordEntry = tuple[str, str, int | None] | None


def _raw_member(fp: object, info: zipfile.ZipInfo) -> bytes | bytearray | None:
    """The member's bytes read straight from the archive, or None when ``zipfile`` must do it."""
    if info.flag_bits & _FLAG_ENCRYPTED or info.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
    ):
        return None
    read = fp.read  # type: ignore[attr-defined]
    fp.seek(info.header_offset)  # type: ignore[attr-defined]
    header = read(_LOCAL.size)
    if len(header) != _LOCAL.size:
        raise zipfile.BadZipFile("truncated local header")
    fields = _LOCAL.unpack(header)
    if fields[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local header magic")
    name_len, extra_len = fields[10], fields[11]
    raw_name = read(name_len)
    encoding = "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437"
    if raw_name.decode(encoding, "replace") != info.orig_filename:
        raise zipfile.BadZipFile("local header names another member")
    if extra_len:
        read(extra_len)
    raw = read(info.compress_size)
    if len(raw) != info.compress_size:
        raise zipfile.BadZipFile("truncated member")
    data: bytes | bytearray
    if info.compress_type == zipfile.ZIP_STORED:
        data = raw
    else:
        # libdeflate inflates the whole member at once, 2.5 times as fast as zlib (jupyter's
        # 12,220 members: 175 against 435 ms), and never writes past the declared size: a
        # stream that holds more fails.
        try:
            data = deflate.deflate_decompress(raw, info.file_size)
        except deflate.DeflateError as e:
            raise zipfile.BadZipFile(f"corrupt deflate data: {e}") from None
    if len(data) != info.file_size or deflate.crc32(data) != info.CRC:
        raise zipfile.BadZipFile("bad CRC-32 or size")
    return data


def _write_new(dest: str, data: bytes | bytearray | memoryview) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _check(filename: str, path: str, entry: RecordEntry, digest: bytes | None, size: int) -> None:
    if entry is None or digest is None:
        return
    import base64

    algo, want, want_size = entry
    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") != want.rstrip("="):
        raise WheelError(
            f"{filename}: {path!r} does not match its RECORD hash ({algo})",
            hint="the wheel is corrupt or was tampered with; it was not cached",
        )
    if want_size is not None and want_size != size:
        raise WheelError(f"{filename}: {path!r} does not match its RECORD size")


def _extract_one(
    zf: zipfile.ZipFile,
    fp: object,
    root: str,
    path: str,
    info: zipfile.ZipInfo,
    entry: RecordEntry,
    filename: str,
    small: int,
) -> None:
    dest = f"{root}/{path}"  # path is normal (check_member_path): no empty, "." or ".." part
    try:
        data = _raw_member(fp, info) if info.file_size <= small else None
        if data is not None:
            _write_new(dest, data)
            digest = hashlib.new(entry[0], data).digest() if entry else None
            size = len(data)
        else:
            hasher = hashlib.new(entry[0]) if entry else None
            size = 0
            with zf.open(info) as src, open(dest, "xb") as out:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    out.write(chunk)
            if size != info.file_size:  # zipfile checks the CRC-32 at the end, not the size
                raise zipfile.BadZipFile("bad CRC-32 or size")
            digest = hasher.digest() if hasher is not None else None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise WheelError(f"{filename}: cannot extract {path!r}: {e}") from None
    _check(filename, path, entry, digest, size)
    if (info.external_attr >> 16) & 0o111:
        os.chmod(dest, 0o755)


def _parents(root: str, members: Sequence[tuple[str, object]]) -> None:
    parents = {f"{root}/{p.rpartition('/')[0]}" if "/" in p else root for p, _ in members}
    for parent in sorted(parents):
        os.makedirs(parent, exist_ok=True)


def _on_threads(
    members: Sequence[tuple[str, M]],
    threads: int,
    write: Callable[[list[tuple[str, M]], threading.Event], None],
) -> None:
    """``write`` each of up to ``threads`` groups of ``members`` on a thread of its own (the
    first on this one); the first failure stops the others (``stop`` is set) and is raised."""
    n = min(threads, max(1, len(members) // PARALLEL_MIN))
    groups = [list(members[i::n]) for i in range(n)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(group: list[tuple[str, M]]) -> None:
        try:
            write(group, stop)
        except BaseException as e:
            stop.set()
            errors.append(e)

    others = [
        threading.Thread(target=work, args=(g,), name="kea-unpack", daemon=True) for g in groups[1:]
    ]
    for t in others:
        t.start()
    work(groups[0])
    for t in others:
        t.join()
    if errors:
        raise errors[0]


def extract_members(
    wheel: Path,
    zf: zipfile.ZipFile,
    target: Path,
    members: Sequence[tuple[str, zipfile.ZipInfo]],
    record: Mapping[str, RecordEntry],
    filename: str,
    *,
    threads: int | None = None,
) -> None:
    """Write every (path, info) of ``members`` under ``target``, verifying RECORD hashes, on
    up to ``threads`` threads, reading the members through ``zf`` (a wheel too large to read
    whole, or of a shape ``kea.cache.zipread`` leaves to ``zipfile``).

    Paths are already checked to stay inside ``target``; files must not exist yet. The first
    failure (a ``WheelError``) stops the other threads and is raised; the caller removes
    ``target``. Other processes may write other members of the same wheel into ``target`` at
    the same time (``kea.cache.unpacker``): parent directories are made with ``exist_ok``.
    """
    root = str(target)
    _parents(root, members)
    small = SMALL if threads == 1 else SMALL_SHARED  # one thread: a worker's only one

    def write(group: list[tuple[str, zipfile.ZipInfo]], stop: threading.Event) -> None:
        try:
            fp = open(wheel, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise WheelError(f"{filename}: cannot read the wheel: {e}") from None
        with fp:
            for path, info in group:
                if stop.is_set():
                    return
                _extract_one(zf, fp, root, path, info, record.get(path), filename, small)

    _on_threads(members, WORKERS if threads is None else threads, write)


def extract_from_memory(
    data: bytes,
    target: Path,
    members: Sequence[tuple[str, Entry]],
    record: Mapping[str, RecordEntry],
    filename: str,
    *,
    threads: int | None = None,
) -> None:
    """``extract_members`` for a wheel read whole into ``data`` (``kea.cache.zipread``)."""
    root = str(target)
    _parents(root, members)
    small = SMALL if threads == 1 else SMALL_SHARED

    def write(group: list[tuple[str, Entry]], stop: threading.Event) -> None:
        for path, entry in group:
            if stop.is_set():
                return
            _write_entry(data, root, path, entry, record.get(path), filename, small)

    _on_threads(members, WORKERS if threads is None else threads, write)


def _write_entry(
    data: bytes,
    root: str,
    path: str,
    entry: Entry,
    want: RecordEntry,
    filename: str,
    small: int,
) -> None:
    dest = f"{root}/{path}"  # path is normal (check_member_path): no empty, "." or ".." part
    try:
        if entry.size <= small:
            content = member_bytes(data, entry)
            _write_new(dest, content)
            digest = _new_hash(want[0], content).digest() if want else None
            size = len(content)
        else:
            hasher = _new_hash(want[0]) if want else None
            size = 0
            with open(dest, "xb") as out:
                for piece in member_chunks(data, entry):
                    size += len(piece)
                    if hasher is not None:
                        hasher.update(piece)
                    out.write(piece)
            digest = hasher.digest() if hasher is not None else None
    except (BadZip, OSError) as e:
        raise WheelError(f"{filename}: cannot extract {path!r}: {e}") from None
    _check(filename, path, want, digest, size)
    if entry.mode & 0o111:
        os.chmod(dest, 0o755)


def _new_hash(algo: str, data: bytes | bytearray | memoryview = b"") -> hashlib._Hash:
    if algo == "sha256":  # nearly every RECORD: the named constructor skips hashlib.new's lookup
        return hashlib.sha256(data)
    return hashlib.new(algo, data)
