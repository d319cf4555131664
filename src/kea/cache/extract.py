"""Write a wheel's members out, each checked against its RECORD hash, on a few threads.

``kea.cache.archive.unpack_wheel`` decides what may be written (paths, RECORD coverage); this
module does the writing, fast, for a wheel read whole into memory (``kea.cache.zipread``): a
small member is inflated at once by libdeflate (bounded by its declared size, CRC-32 and size
checked) and written with one ``os.write``; a large one is inflated and written in pieces.
``kea.cache.extract_zip`` does the same through ``zipfile`` for the wheels read that way. In
the installing process, wheels with many members are split across threads: file creation,
inflating and hashing all release the GIL. The unpacking workers (``kea.cache.unpacker``)
write on one thread each and split large wheels between them.

Imported by the unpacking workers, whose start-up it adds to: no ``zipfile``, ``pathlib`` or
``typing`` here.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from kea.cache.archive import WheelError
from kea.cache.zipread import BadZip, Entry, data_span, inflate, member_bytes, member_chunks

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from pathlib import Path
    from typing import TypeVar

    M = TypeVar("M")

SMALL = 8 << 20  # members up to this size are read whole (and inflated by libdeflate)
SMALL_SHARED = 1 << 20  # the same where several threads unpack at once: memory stays bounded
CHUNK = 1 << 16
PARALLEL_MIN = 64  # members before a second thread pays off
WORKERS = 3

RecordEntry = tuple[str, str, int | None] | None


def _write_new(dest: str, data: bytes | bytearray | memoryview) -> None:
    fd = os.open(dest, _NEW, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _check(filename: str, path: str, entry: RecordEntry, digest: bytes | None, size: int) -> None:
    if entry is None or digest is None:
        return
    algo, want, want_size = entry
    # RECORD writes a digest in URL-safe base64. Some wheels have it in hex (uv_build before
    # 0.8.13 wrote them so, astral-sh/uv#15400): the file is checked against that just the same.
    hex_match = len(want) == 2 * len(digest) and want.lower() == digest.hex()
    if _digest_text(digest) != want.rstrip("=") and not hex_match:
        raise WheelError(
            f"{filename}: {path!r} does not match its RECORD hash ({algo})",
            hint="the wheel is corrupt or was tampered with; it was not cached",
        )
    if want_size is not None and want_size != size:
        raise WheelError(f"{filename}: {path!r} does not match its RECORD size")


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


def extract_from_memory(
    data: bytes | mmap.mmap,
    target: str | Path,
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
        # The common member (inflated whole, hashed with sha256 or not at all) is written
        # here, with no Python call but the header check and the inflate: the unpacking
        # workers spent ~27% of their time in Python around the work, most of it in calls.
        sha256, digest_text = hashlib.sha256, _digest_text
        view = memoryview(data)
        content: Content = b""
        try:
            for path, entry in group:
                if stop.is_set():
                    return
                want = record.get(path)
                if entry.size > small or (want is not None and want[0] != "sha256"):
                    _write_entry(data, root, path, entry, want, filename, small)
                    continue
                dest = f"{root}/{path}"  # path is normal (check_member_path)
                try:
                    start, end = data_span(data, entry)
                    content = inflate(view[start:end], entry.method, entry.size, entry.crc)
                    fd = os.open(dest, _NEW, 0o666)
                    try:
                        written = os.write(fd, content)
                        if written < len(content):  # a short write: the rest in pieces
                            rest = memoryview(content)[written:]
                            while rest:
                                rest = rest[os.write(fd, rest) :]
                    finally:
                        os.close(fd)
                except (BadZip, OSError) as e:
                    raise WheelError(f"{filename}: cannot extract {path!r}: {e}") from None
                if want is not None and (
                    digest_text(sha256(content).digest()) != want[1].rstrip("=")
                    or (want[2] is not None and want[2] != len(content))
                ):
                    _check(filename, path, want, sha256(content).digest(), len(content))
                if entry.mode & 0o111:
                    os.chmod(dest, 0o755)
        finally:
            # A failure's traceback keeps this frame: no view of the mapped wheel may stay in
            # it, or the map could not be closed (kea.cache.archive).
            view = content = rest = b""  # type: ignore[assignment]

    _on_threads(members, WORKERS if threads is None else threads, write)


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _digest_text(digest: bytes) -> str:
    """``digest`` as RECORD writes it: URL-safe base64 without padding (as
    ``kea.dist.record.hash_bytes`` writes it; that module is not imported here: it would bring
    msgspec into the unpacking workers)."""
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _write_entry(
    data: bytes | mmap.mmap,
    root: str,
    path: str,
    entry: Entry,
    want: RecordEntry,
    filename: str,
    small: int,
) -> None:
    dest = f"{root}/{path}"  # path is normal (check_member_path): no empty, "." or ".." part
    algo = want[0] if want else None
    try:
        if entry.size <= small:
            digest, size = write_whole(dest, member_bytes(data, entry), algo)
        else:
            digest, size = write_pieces(dest, member_chunks(data, entry), algo)
    except (BadZip, OSError) as e:
        raise WheelError(f"{filename}: cannot extract {path!r}: {e}") from None
    _check(filename, path, want, digest, size)
    if entry.mode & 0o111:
        os.chmod(dest, 0o755)


Content = bytes | bytearray | memoryview


def write_whole(dest: str, data: Content, algo: str | None) -> tuple[bytes | None, int]:
    """Create ``dest`` holding ``data``; its digest by ``algo`` (None: not hashed) and size."""
    _write_new(dest, data)
    return (_new_hash(algo, data).digest() if algo else None), len(data)


def write_pieces(
    dest: str, pieces: Iterable[Content], algo: str | None
) -> tuple[bytes | None, int]:
    """``write_whole`` for content that comes in pieces (a large member)."""
    hasher = _new_hash(algo) if algo else None
    size = 0
    with open(dest, "xb") as out:
        for piece in pieces:
            size += len(piece)
            if hasher is not None:
                hasher.update(piece)
            out.write(piece)
    return (hasher.digest() if hasher is not None else None), size


def _new_hash(algo: str, data: Content = b"") -> hashlib._Hash:
    if algo == "sha256":  # nearly every RECORD: the named constructor skips hashlib.new's lookup
        return hashlib.sha256(data)
    return hashlib.new(algo, data)
