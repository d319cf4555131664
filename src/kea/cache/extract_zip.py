"""``kea.cache.extract`` for wheels read through ``zipfile``: larger than
``kea.cache.archive.WHOLE_MAX``, or of a shape ``kea.cache.zipread`` leaves alone.

A small member is read raw from the file (local header checked, one inflate by libdeflate
bounded by its declared size, CRC-32 and size checked); a large or unusual member (another
compression, encryption) is streamed through ``zipfile``.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from kea.cache import extract
from kea.cache.archive import WheelError
from kea.cache.extract import RecordEntry, _check, _on_threads, _parents, write_pieces, write_whole
from kea.cache.zipread import LOCAL, BadZip, inflate

_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800


def _raw_member(fp: object, info: zipfile.ZipInfo) -> bytes | bytearray | memoryview | None:
    """The member's bytes read straight from the archive, or None when ``zipfile`` must do it."""
    if info.flag_bits & _FLAG_ENCRYPTED or info.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
    ):
        return None
    read = fp.read  # type: ignore[attr-defined]
    fp.seek(info.header_offset)  # type: ignore[attr-defined]
    header = read(LOCAL.size)
    if len(header) != LOCAL.size:
        raise zipfile.BadZipFile("truncated local header")
    fields = LOCAL.unpack(header)
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
    return inflate(raw, info.compress_type, info.file_size, info.CRC)


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
    algo = entry[0] if entry else None
    try:
        data = _raw_member(fp, info) if info.file_size <= small else None
        if data is not None:
            digest, size = write_whole(dest, data, algo)
        else:
            with zf.open(info) as src:
                pieces = iter(lambda: src.read(extract.CHUNK), b"")
                digest, size = write_pieces(dest, pieces, algo)
            if size != info.file_size:  # zipfile checks the CRC-32 at the end, not the size
                raise zipfile.BadZipFile("bad CRC-32 or size")
    except (zipfile.BadZipFile, BadZip, OSError, EOFError) as e:
        raise WheelError(f"{filename}: cannot extract {path!r}: {e}") from None
    _check(filename, path, entry, digest, size)
    if (info.external_attr >> 16) & 0o111:
        os.chmod(dest, 0o755)


def extract_members(
    wheel: str | Path,
    zf: zipfile.ZipFile,
    target: str | Path,
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
    small = extract.SMALL if threads == 1 else extract.SMALL_SHARED  # a worker's only thread

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

    _on_threads(members, extract.WORKERS if threads is None else threads, write)
