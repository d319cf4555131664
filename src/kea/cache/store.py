"""The cache directory: versioned buckets, atomic msgspec records, wheel archives.

Layout (under ``Cache.root``)::

    simple-v1/<index key>/<project>.msgpack     parsed project pages + HTTP validators
    metadata-v2/<project>/<file key>.msgpack    core metadata of distribution files
    wheels-v1/<project>/<source key>.msgpack    where a wheel came from -> its sha256
    archive-v1/<sha256>/                        the wheel unpacked, immutable
    interpreters-v1/                            interpreter facts (kea.install)
    resolved-v1/<request digest>.msgpack        warm resolves (kea.resolver.provider_memo)

Every write is atomic (temp file or directory in the same bucket, then ``os.replace``/rename),
so concurrent kea processes share one cache safely: two that unpack the same wheel at once each
unpack it into a directory of their own, and the first rename wins. A wheel that fails any check
leaves nothing behind.
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from kea.atomic import TMP_PREFIX, atomic_write
from kea.auth.redact import redact_url
from kea.digest import sha256
from kea.errors import KeaError
from kea.filestamp import Identity, of_stat

if TYPE_CHECKING:
    from kea.settings import Settings

SIMPLE = "simple-v1"
METADATA = "metadata-v2"  # v1 could hold Requires-Dist cut at a blank continuation
WHEELS = "wheels-v1"
ARCHIVE = "archive-v1"
INTERPRETERS = "interpreters-v1"
RESOLVED = "resolved-v1"
BUCKETS = (SIMPLE, METADATA, WHEELS, ARCHIVE, INTERPRETERS, RESOLVED)

LOCKS = ".locks"  # per-entry lock files of older kea versions: skipped by maintenance

T = TypeVar("T")


class WheelPointer(msgspec.Struct, omit_defaults=True):
    """Where a wheel came from (URL without credentials, or a local path) and its content hash."""

    filename: str
    sha256: str
    source: str
    hashes: dict[str, str] = {}
    size: int | None = None
    mtime_ns: int | None = None
    stored_at: float = 0.0


def strip_credentials(url: str) -> str:
    """``url`` without userinfo and fragment (what may be written to disk)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def url_key(url: str) -> str:
    """A short stable file name for a URL (credentials and fragment ignored)."""
    return sha256(strip_credentials(url).encode("utf-8")).hexdigest()[:24]


def project_of(filename: str) -> str:
    """Normalized project name from a wheel or sdist file name."""
    from kea.index.models import normalize_name

    stem = filename
    for suffix in (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if filename.endswith(".whl"):
        return normalize_name(stem.split("-", 1)[0])
    return normalize_name(stem.rsplit("-", 1)[0])


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("kea"))


class Cache:
    """One cache directory. Use ``Cache.from_settings(settings)`` in commands."""

    def __init__(self, root: Path, *, temporary: bool = False) -> None:
        self.root = Path(root)
        self.temporary = temporary
        self._made: set[str] = set()  # buckets
        self._made_dirs: set[str] = set()  # directories of records written by this run
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings) -> Cache:
        """``--no-cache``: a temporary directory removed at exit; else ``cache_dir`` / default."""
        if settings.no_cache:
            return cls.temporary_cache()
        return cls(settings.cache_dir or default_cache_dir())

    @classmethod
    def temporary_cache(cls) -> Cache:
        import tempfile

        cache = cls(Path(tempfile.mkdtemp(prefix="kea-cache-")), temporary=True)
        atexit.register(cache.close)
        return cache

    def close(self) -> None:
        """Remove a temporary cache (a no-op for a persistent one)."""
        if self.temporary and not self._closed:
            self._closed = True
            import shutil

            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bucket(self, name: str) -> Path:
        """The directory of a bucket, created on first use (with CACHEDIR.TAG at the root)."""
        path = self.root / name
        if name not in self._made:
            try:
                path.mkdir(parents=True, exist_ok=True)
                tag = self.root / "CACHEDIR.TAG"
                if not tag.exists():
                    atomic_write(
                        tag,
                        b"Signature: 8a477f597d28d172789f06886806bc55\n"
                        b"# This file is a cache directory tag created by kea.\n",
                    )
            except OSError as e:
                raise KeaError(
                    f"cannot create the cache directory {path}: {e.strerror}",
                    hint="pass --cache-dir DIR or set KEA_CACHE_DIR to a writable directory",
                ) from None
            self._made.add(name)
        return path

    # -- records ---------------------------------------------------------------------------
    def record_path(self, bucket: str, relpath: str) -> Path:
        return self.bucket(bucket) / relpath

    def read_record(
        self,
        bucket: str,
        relpath: str,
        type_: type[T],
        seen: list[tuple[str, Identity]] | None = None,
    ) -> T | None:
        """A msgpack record, or None when missing or unreadable (a corrupt one is removed).
        ``seen`` receives the path and identity of the file read (``kea.filestamp``)."""
        path = f"{self.root}/{bucket}/{relpath}"  # a str: a warm resolve reads ~2 per package
        try:
            # Unbuffered: a buffered open also asks whether the file is a terminal and where
            # it stands (ioctl, lseek), two system calls per record for nothing.
            with open(path, "rb", buffering=0) as f:
                data = f.read()
                if seen is not None:  # the very file read, whatever replaces it later
                    seen.append((path, of_stat(os.fstat(f.fileno()))))
        except OSError:
            return None
        try:
            return msgspec.msgpack.decode(data, type=type_)
        except (msgspec.DecodeError, msgspec.ValidationError):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return None

    def write_record(self, bucket: str, relpath: str, obj: Any, *, private: bool = False) -> None:
        """Store ``obj`` (msgpack); ``private``: it holds a credential (a link an index gave
        with userinfo or a signed query), so only its owner may read the file."""
        path = f"{self.bucket(bucket)}/{relpath}"
        parent = path.rpartition("/")[0]
        data = msgspec.msgpack.encode(obj)
        if parent not in self._made_dirs:  # a cold run writes ~300 records into ~200 dirs
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        try:
            atomic_write(path, data, private=private)
        except FileNotFoundError:  # the directory went since (a concurrent `kea cache clean`)
            os.makedirs(parent, exist_ok=True)
            atomic_write(path, data, private=private)
        except IsADirectoryError:  # a damaged cache: a directory where the record goes
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            atomic_write(path, data, private=private)

    def remove_record(self, bucket: str, relpath: str) -> None:
        (self.root / bucket / relpath).unlink(missing_ok=True)

    # -- wheels ----------------------------------------------------------------------------
    def archive_path(self, sha256: str) -> Path | None:
        """The unpacked archive of the wheel with this sha256, if cached."""
        sha256 = sha256.lower()
        if len(sha256) != 64 or sha256.strip("0123456789abcdef"):  # "": every character hex
            return None
        path = f"{self.root}/{ARCHIVE}/{sha256}"  # a str: asked once per wheel of a run
        return Path(path) if os.path.isdir(path) else None

    def find_archive(
        self, filename: str, *, url: str | None = None, hashes: Mapping[str, str] | None = None
    ) -> Path | None:
        """The archive for a distribution file: by its sha256 if known, else by where it came from.

        A source-keyed hit is only returned when it agrees with every hash given.
        """
        if hashes and hashes.get("sha256"):
            return self.archive_path(hashes["sha256"])
        if url is None:
            return None
        pointer = self.read_record(WHEELS, _pointer_rel(filename, url), WheelPointer)
        if pointer is None:
            return None
        # Every hash asked for must be one we computed when storing it, and equal.
        if hashes and any(pointer.hashes.get(a.lower()) != v.lower() for a, v in hashes.items()):
            return None
        return self.archive_path(pointer.sha256)

    async def store_wheel(
        self,
        chunks: AsyncIterable[bytes],
        filename: str,
        expected_hashes: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        spooled: Callable[[], None] | None = None,
    ) -> Path:
        """Stream a wheel in, check its hashes, unpack it once; the archive dir.

        Chunks are written as they arrive (``kea.cache.spool``), unpacking is done in a worker
        process (``kea.cache.unpacker``). With a well-formed expected sha256 the worker checks
        the whole file before it writes anything; without one the chunks are hashed as they
        arrive. ``spooled`` is called once every chunk is in.

        A hash mismatch or an unsafe/corrupt wheel raises ``KeaError`` and leaves nothing cached.
        """
        tmp_dir = self.bucket(WHEELS)
        tmp = tmp_dir / f"{TMP_PREFIX}{os.urandom(16).hex()}.whl"
        from kea.cache.archive import hashers_for, verify_hashes
        from kea.cache.spool import WriteFailed, spool
        from kea.cache.unpacker import prestart

        prestart()  # the unpacking workers start while this wheel downloads

        # With the sha256 it should have known, the download is checked where it is unpacked
        # (or in a thread, should its archive exist already): not on the event loop, which
        # would hash every byte as it arrives while the workers wait for wheels.
        claimed = _claimed_digests(expected_hashes)
        try:
            try:
                hashers = {} if claimed else hashers_for(expected_hashes)
                digests, size = await spool(chunks, tmp, hashers)
            except WriteFailed as e:
                raise KeaError(f"cannot write {filename} into the cache: {e}") from None
            if spooled is not None:
                spooled()
            if claimed:
                return await self._archive_from_file(
                    tmp, filename, claimed, url or "", size, None, unchecked=True
                )
            verify_hashes(filename, expected_hashes or {}, digests)
            return await self._archive_from_file(tmp, filename, digests, url or "", size, None)
        finally:
            tmp.unlink(missing_ok=True)

    async def unpack_local_wheel(
        self, path: Path, expected_hashes: Mapping[str, str] | None = None
    ) -> Path:
        """Unpack a wheel from the local filesystem once (keyed by path, size and mtime)."""
        import asyncio

        from kea.cache.archive import verify_hashes

        path = Path(path).resolve()
        filename = path.name
        try:
            st = path.stat()
        except OSError as e:
            raise KeaError(f"cannot read {path}: {e.strerror}") from None
        source = path.as_uri()
        pointer = self.read_record(WHEELS, _pointer_rel(filename, source), WheelPointer)
        if (
            pointer is not None
            and pointer.size == st.st_size
            and pointer.mtime_ns == st.st_mtime_ns
        ):
            verify_hashes(filename, expected_hashes or {}, pointer.hashes)
            if not expected_hashes or all(a.lower() in pointer.hashes for a in expected_hashes):
                archive = self.archive_path(pointer.sha256)
                if archive is not None:
                    return archive
        from kea.cache.archive import hash_file

        digests = await asyncio.to_thread(hash_file, path, expected_hashes)
        verify_hashes(filename, expected_hashes or {}, digests)
        return await self._archive_from_file(
            path, filename, digests, source, st.st_size, st.st_mtime_ns
        )

    async def _archive_from_file(
        self,
        wheel: Path,
        filename: str,
        digests: Mapping[str, str],
        source: str,
        size: int,
        mtime_ns: int | None,
        *,
        unchecked: bool = False,
    ) -> Path:
        """The archive of ``wheel`` (whose hashes are ``digests``), unpacked now unless it is
        there already; the pointer from ``source`` to it written. ``unchecked``: ``digests``
        are what the file should hash to, not what it was seen to: it is checked against them
        before anything of it is unpacked (or before its archive, there already, is taken).

        No lock: the wheel is unpacked into a directory of its own and renamed into place.
        Two processes unpacking the same wheel at once both do the work, the first rename
        wins and the second process drops its copy (archives are immutable and named by
        content)."""
        import shutil

        from kea.cache.archive import WheelError
        from kea.cache.unpacker import unpack

        sha = digests["sha256"]
        archive_root = self.bucket(ARCHIVE)
        final = archive_root / sha
        if unchecked and final.is_dir():
            import asyncio

            from kea.cache.archive import hash_file, verify_hashes

            seen = await asyncio.to_thread(hash_file, wheel, digests)
            verify_hashes(filename, digests, seen)
        elif not final.is_dir():
            tmp = archive_root / f"{TMP_PREFIX}{os.urandom(16).hex()}"
            tmp.mkdir()
            try:
                # in a worker process (kea.cache.unpacker)
                await unpack(wheel, tmp, filename, digests if unchecked else None)
                os.rename(tmp, final)
            except WheelError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                if not final.is_dir():  # else another process put the same archive there
                    raise KeaError(f"cannot unpack {filename} into the cache: {e}") from None
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        if source:
            self.write_record(
                WHEELS,
                _pointer_rel(filename, source),
                WheelPointer(
                    filename=filename,
                    sha256=sha,
                    # where it came from, for a reader of the cache only: no credential (a
                    # signed query's values are masked as in any output)
                    source=redact_url(strip_credentials(source)),
                    hashes=dict(digests),
                    size=size,
                    mtime_ns=mtime_ns,
                    stored_at=time.time(),
                ),
            )
        return final


_SHA256_HEX = frozenset("0123456789abcdef")


def _claimed_digests(expected: Mapping[str, str] | None) -> dict[str, str] | None:
    """The hashes a download is expected to have, by lower-case algorithm, for those hashlib
    knows; None unless they include a well-formed sha256 (it names the archive directory)."""
    if not expected:
        return None
    import hashlib

    known = hashlib.algorithms_available
    claimed = {a.lower(): v.lower() for a, v in expected.items() if a.lower() in known}
    sha = claimed.get("sha256", "")
    if len(sha) != 64 or not _SHA256_HEX.issuperset(sha):
        return None
    return claimed


def _pointer_rel(filename: str, source: str) -> str:
    return f"{project_of(filename)}/{filename}-{url_key(source)}.msgpack"
