"""Unpack a wheel into a directory, verifying every file against the wheel's RECORD.

Refuses members whose paths escape the target (``..``, absolute paths, drive letters,
backslashes), symlink members, duplicates, files missing from RECORD or RECORD entries missing from
the zip, and any hash or size mismatch. Errors are one-line ``KeaError``s; the caller owns the
target directory and removes it on failure.

Imported by the unpacking workers, whose start-up it adds to: ``zipfile`` only when a wheel is
read through it, and no ``pathlib`` or ``typing``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
from collections.abc import Iterable, Mapping

from kea.dist.record_lines import plain_lines
from kea.errors import KeaError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    import zipfile
    from pathlib import Path
    from typing import TypeVar

    M = TypeVar("M")

CHUNK = 1 << 16
_WEAK = frozenset({"md5", "sha1"})
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class WheelError(KeaError):
    """A wheel that is corrupt or unsafe; nothing of it is left in the cache."""


def check_member_path(filename: str, name: str) -> str:
    """The member path if it stays inside the target; else a ``WheelError``."""
    if not name or "\x00" in name:
        raise WheelError(f"{filename}: empty or invalid path in the archive")
    if name[0] == "/" or "\\" in name or (name[1:2] == ":" and _DRIVE_RE.match(name)):
        raise WheelError(
            f"{filename}: refusing path {name!r} that escapes the install target",
            hint="the wheel is corrupt or malicious; it was not installed or cached",
        )
    if "//" not in name and "/." not in name and name[0] != "." and name[-1] != "/":
        return name  # no empty, "." or ".." part: already normal (most members)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise WheelError(
            f"{filename}: refusing path {name!r} that escapes the install target",
            hint="the wheel is corrupt or malicious; it was not installed or cached",
        )
    return "/".join(parts)


def _record_digest(filename: str, path: str, value: str) -> tuple[str, str]:
    algo, sep, digest = value.partition("=")
    algo = algo.strip().lower()
    if not sep or not digest:
        raise WheelError(f"{filename}: RECORD has a malformed hash for {path!r}")
    if algo in _WEAK or algo not in hashlib.algorithms_guaranteed:
        raise WheelError(f"{filename}: RECORD uses unsupported hash {algo!r} for {path!r}")
    return algo, digest.strip()


def _dist_info_dir(filename: str, names: list[str]) -> str:
    """The wheel's ``.dist-info`` directory (top level, holding RECORD)."""
    candidates = sorted(
        {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("/RECORD")}
    )
    candidates = [c for c in candidates if c.endswith(".dist-info")]
    if not candidates:
        raise WheelError(f"{filename}: no .dist-info/RECORD in the wheel")
    if len(candidates) > 1:
        stem = filename.split("-", 1)[0].lower().replace("-", "_")
        matching = [c for c in candidates if c.lower().startswith(stem + "-")]
        if len(matching) != 1:
            raise WheelError(f"{filename}: more than one .dist-info directory in the wheel")
        return matching[0]
    return candidates[0]


def read_record(filename: str, data: bytes) -> dict[str, tuple[str, str, int | None] | None]:
    """RECORD rows: path -> (algo, b64 digest, size) or None (entries without a hash)."""
    out: dict[str, tuple[str, str, int | None] | None] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WheelError(f"{filename}: RECORD is not UTF-8") from None
    for row in _rows(text):
        if not row or not row[0]:
            continue
        path = check_member_path(filename, row[0])
        hash_value = row[1] if len(row) > 1 else ""
        size_value = row[2] if len(row) > 2 else ""
        if hash_value:
            if hash_value.startswith("sha256=") and len(hash_value) > 7:  # nearly every row
                algo, digest = "sha256", hash_value[7:].strip()
            else:
                algo, digest = _record_digest(filename, path, hash_value)
            size: int | None = None
            if size_value.strip():
                try:
                    size = int(size_value)
                except ValueError:
                    raise WheelError(f"{filename}: RECORD has a bad size for {path!r}") from None
            out[path] = (algo, digest, size)
        else:
            out[path] = None
    return out


def _rows(text: str) -> Iterable[list[str]]:
    """The CSV rows of ``text``: split by hand where that gives csv's rows
    (``kea.dist.record_lines``), else by ``csv``."""
    lines = plain_lines(text)
    if lines is None:
        return csv.reader(io.StringIO(text))
    return [line.split(",") for line in lines]


WHOLE_MAX = 64 << 20  # wheels up to this size are read whole (kea.cache.zipread)


def unpack_wheel(
    wheel: str | Path,
    target: str | Path,
    filename: str | None = None,
    *,
    part: tuple[int, int] = (0, 1),
    threads: int | None = None,
    hashes: Mapping[str, str] | None = None,
) -> str:
    """Unpack ``wheel`` into the (existing, empty) directory ``target``, verifying RECORD.

    Returns the name of the ``.dist-info`` directory. With ``part=(k, n)``, every check is
    made but only the k-th of every n members is written: n calls, one per part, write the
    whole wheel (at the same time, from several processes). ``threads`` caps the threads
    writing (``kea.cache.extract.WORKERS`` by default).

    A wheel of up to ``WHOLE_MAX`` bytes is read whole and its members are taken from memory
    (``kea.cache.zipread``); a larger one, or one of a shape that module leaves alone, is read
    through ``zipfile``. Both make the same checks.

    ``hashes``: what the whole file must hash to (``verify_hashes``), checked before anything
    is read from it or written: the installing process leaves that check to the unpacking
    when it knows the sha256 a download should have (``kea.cache.store``). Of a split wheel,
    the first part alone is given them (``kea.cache.unpacker``): the others read and write
    before that check ends, into the new directory that a mismatch then removes whole.
    """
    from kea.cache import zipread

    filename = filename or os.path.basename(wheel)
    data = _read_whole(wheel, filename)
    try:
        if hashes:
            _check_file(wheel, data, filename, hashes)
        entries = None
        if data is not None:
            try:
                entries = zipread.directory(data)
            except zipread.BadZip as e:
                raise WheelError(f"{filename}: not a valid wheel (zip) file: {e}") from None
        if data is None or entries is None:
            return _unpack_with_zipfile(wheel, target, filename, part, threads)
        paths = _checked_paths(filename, [(e.name, e.mode, e) for e in entries])
        dist_info = _dist_info_dir(filename, list(paths))
        _check_record_size(filename, paths[f"{dist_info}/RECORD"].size)
        try:
            record = read_record(
                filename, bytes(zipread.member_bytes(data, paths[f"{dist_info}/RECORD"]))
            )
        except zipread.BadZip as e:
            raise WheelError(f"{filename}: cannot read RECORD: {e}") from None
        _check_coverage(filename, dist_info, paths, record)

        from kea.cache.extract import extract_from_memory

        k, n = part
        members = list(paths.items())[k::n]
        extract_from_memory(data, target, members, record, filename, threads=threads)
        return dist_info
    finally:
        if data is not None and not isinstance(data, bytes):
            try:
                data.close()
            except BufferError:  # a view still held (by a traceback): unmapped when freed
                pass


def _read_whole(wheel: str | Path, filename: str) -> bytes | mmap.mmap | None:
    """The wheel's bytes, mapped read-only, or None when it is larger than ``WHOLE_MAX``.

    Mapped rather than read: its pages are the page cache's (a downloaded wheel was just
    written there), with no copy and half the page faults. Unpacking jupyter's 97 wheels in
    one process, 3 alternated runs: 357 -> 323 ms of system time, 10,900 -> 5,300 faults. A
    file that cannot be mapped is read."""
    import mmap

    try:
        with open(wheel, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > WHOLE_MAX:
                return None
            if size:
                try:
                    return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    pass
            return f.read()
    except OSError as e:
        raise WheelError(f"{filename}: not a valid wheel (zip) file: {e}") from None


def _unpack_with_zipfile(
    wheel: str | Path,
    target: str | Path,
    filename: str,
    part: tuple[int, int],
    threads: int | None,
) -> str:
    import zipfile

    from kea.cache import zipread

    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as e:
        raise WheelError(f"{filename}: not a valid wheel (zip) file: {e}") from None
    with zf:
        try:
            zipread.check_spans(
                [(i.header_offset, i.header_offset + zipread.LOCAL.size + len(_raw_name(i))
                  + i.compress_size) for i in zf.infolist()],
                zf.start_dir,
            )  # fmt: skip
        except zipread.BadZip as e:
            raise WheelError(f"{filename}: not a valid wheel (zip) file: {e}") from None
        # orig_filename: zipfile cuts a name at a NUL byte, which the memory path refuses.
        paths = _checked_paths(
            filename, [(i.orig_filename, i.external_attr >> 16, i) for i in zf.infolist()]
        )
        dist_info = _dist_info_dir(filename, list(paths))
        _check_record_size(filename, paths[f"{dist_info}/RECORD"].file_size)
        try:
            record = read_record(filename, zf.read(paths[f"{dist_info}/RECORD"]))
        except (zipfile.BadZipFile, OSError, KeyError) as e:
            raise WheelError(f"{filename}: cannot read RECORD: {e}") from None
        _check_coverage(filename, dist_info, paths, record)

        from kea.cache.extract_zip import extract_members

        k, n = part
        members = list(paths.items())[k::n]
        extract_members(wheel, zf, target, members, record, filename, threads=threads)
        return dist_info


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """A member's name as the archive stores it (UTF-8 when flagged, else cp437)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")


RECORD_MAX = 64 << 20  # bytes: a RECORD of 60,000 files is about 6 MB


def _check_record_size(filename: str, size: int) -> None:
    """RECORD is read whole: one that declares more than ``RECORD_MAX`` bytes is refused
    before anything is inflated (a small deflate stream can declare gigabytes)."""
    if size > RECORD_MAX:
        raise WheelError(
            f"{filename}: RECORD is {size} bytes, more than kea reads ({RECORD_MAX})",
            hint="the wheel is corrupt or malicious; it was not installed or cached",
        )


def _checked_paths(filename: str, members: list[tuple[str, int, M]]) -> dict[str, M]:
    """(name, mode, member) of every file member by its normal path; a ``WheelError`` for a
    path that escapes, a symlink or a duplicate. Directories are left out."""
    paths: dict[str, M] = {}
    for name, mode, member in members:
        path = check_member_path(filename, name)
        if stat.S_ISLNK(mode):
            raise WheelError(f"{filename}: refusing symlink member {name!r}")
        if name[-1] == "/" or not path:
            continue
        if path in paths:
            raise WheelError(f"{filename}: duplicate member {path!r}")
        paths[path] = member
    return paths


def _check_coverage(
    filename: str, dist_info: str, paths: Mapping[str, object], record: Mapping[str, object]
) -> None:
    """Every member is in RECORD with a hash (but RECORD and its signatures), and every RECORD
    entry is a member."""
    unsigned = {f"{dist_info}/RECORD", f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s"}
    for path in paths:
        if path in unsigned:
            continue
        if path not in record:
            raise WheelError(f"{filename}: {path!r} is not listed in RECORD")
        if record[path] is None:
            raise WheelError(f"{filename}: RECORD has no hash for {path!r}")
    for path in record:
        if path not in paths and path not in unsigned:
            raise WheelError(f"{filename}: RECORD lists {path!r} but the wheel lacks it")


def _check_file(
    wheel: str | Path, data: bytes | mmap.mmap | None, filename: str, expected: Mapping[str, str]
) -> None:
    """The whole file against ``expected`` (``verify_hashes``); ``data`` is its bytes, or None
    when it is read here."""
    if data is None:
        verify_hashes(filename, expected, hash_file(wheel, expected))
        return
    hashers = hashers_for(expected)
    for h in hashers.values():
        h.update(data)
    verify_hashes(filename, expected, {a: h.hexdigest() for a, h in hashers.items()})


def hash_file(path: str | Path, expected: Mapping[str, str] | None) -> dict[str, str]:
    """sha256 and every algorithm of ``expected`` (``hashers_for``) of the file at ``path``."""
    hashers = hashers_for(expected)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
    except OSError as e:
        raise KeaError(f"cannot read {path}: {e.strerror}") from None
    return {a: h.hexdigest() for a, h in hashers.items()}


def verify_hashes(filename: str, expected: Mapping[str, str], actual: Mapping[str, str]) -> None:
    """Every expected hash that kea could compute must match; a ``WheelError`` otherwise."""
    for algo, want in expected.items():
        got = actual.get(algo.lower())
        if got is None:
            continue
        if got.lower() != want.lower():
            raise WheelError(
                f"hash mismatch for {filename}: expected {algo}:{want.lower()}, got {algo}:{got}",
                hint="the file changed on the index or was corrupted in transit; not cached",
            )


def hashers_for(expected: Mapping[str, str] | None) -> dict[str, hashlib._Hash]:
    """sha256 always, plus every other algorithm of ``expected`` that hashlib knows."""
    out: dict[str, hashlib._Hash] = {"sha256": hashlib.sha256()}
    for algo in expected or {}:
        algo = algo.lower()
        if algo not in out and algo in hashlib.algorithms_available:
            out[algo] = hashlib.new(algo)
    return out
