"""The serve cache directory, shared by every worker: content-addressed files, pointers, pages.

Layout under the cache directory::

    files-v2/<sha256[:2]>/<sha256>                       file bodies, named by their sha256
    files-v2-routes/<route>/<sha256[:2]>/<sha256>        the same, of a route not read by all
    pointers-v1/<route>/<project>/<filename>.json        which sha256 a route's file has
    pages-v1/<route>/<project>.json                      upstream project pages + validators
    lists-v1/<upstream>.json                             upstream project lists + validators
    metadata-v1/<sha256[:2]>/<sha256>.metadata           METADATA of local wheels (own digest
                                                         on its first line, checked on read)
    locks/<sha256 of route, project, file>.lock          one upstream fetch of a file at a time

Every write goes to a temporary file in the same directory and is renamed into place, so readers
in other workers see an old entry, a new entry, or none, never half of one. A file body is only
renamed into place after its hash matched; a body is re-hashed before it is served for the
first time by a worker (and again whenever its size or mtime changes), so a corrupt entry is
detected, removed and fetched again.

A route that not everyone may read keeps its bodies apart (``for_route``): a public route
whose upstream lists a file with the sha256 of a private one would otherwise be answered with
the private body, found by its hash (``files-v1`` was shared; its bodies are not used).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from kea.atomic import TMP_PREFIX, atomic_write

# Read size for hashing: below glibc's mmap threshold (128 KiB), so the one buffer a hash needs
# is reused from the thread's heap instead of growing it (1 MiB chunks left ~1 MiB resident per
# worker thread); sha256 costs far more than the extra reads.
CHUNK = 64 * 1024
_HEX64 = frozenset("0123456789abcdef")


def is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX64


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (OSError when unreadable)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


# A temporary file this old belongs to no write in progress (an upload or fetch refreshes its
# mtime with every chunk): its writer died (a crashed or killed worker) before renaming it.
STALE_TEMP_SECONDS = 3600


def sweep_temp_files(root: Path, *, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Remove the temporary files (``TMP_PREFIX``) under the cache directory ``root`` left by
    writers that died (``older_than`` seconds without a change); returns how many. Run once as
    the server starts, before its workers: a live writer of another server on the same cache
    keeps its file fresh."""
    import time

    limit = time.time() - older_than
    removed = 0
    for here, _, names in os.walk(root):
        for name in names:
            if not name.startswith(TMP_PREFIX):
                continue
            path = os.path.join(here, name)
            try:
                if os.lstat(path).st_mtime < limit:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue
    return removed


def _safe(part: str) -> str:
    # Route, project and file names were validated by the caller; this is the last guard.
    if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
        raise ValueError(f"unsafe cache path part {part!r}")
    return part


class Store:
    def __init__(self, root: Path, files: Path | None = None) -> None:
        self.root = root
        self.files = files or root / "files-v2"
        self.pointers = root / "pointers-v1"
        self.pages = root / "pages-v1"
        self.metadata = root / "metadata-v1"
        for d in (self.files, self.pointers, self.pages, self.metadata):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # the cache directory was checked at start; its writes say what fails
        self._verified: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()
        self._routes: dict[str, Store] = {}

    def for_route(self, route: str, public: bool) -> Store:
        """The store of a route's file bodies: this one for a route everyone may read, else
        one of the route's own (same pointers and pages)."""
        if public:
            return self
        with self._lock:
            store = self._routes.get(route)
            if store is None:
                store = Store(self.root, self.root / "files-v2-routes" / _safe(route))
                self._routes[route] = store
            return store

    # -- file bodies -------------------------------------------------------------------------

    def file_path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a sha256")
        return self.files / sha256[:2] / sha256

    def verified_fast(self, sha256: str) -> Path | None:
        """The body of ``sha256`` when this worker already verified it and it is unchanged
        (one stat, no hashing: safe to call on the event loop); None when unsure."""
        path = self.file_path(sha256)
        with self._lock:
            known = self._verified.get(sha256)
        if known is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        return path if (st.st_ino, st.st_size, st.st_mtime_ns) == known else None

    def verified_path(self, sha256: str) -> Path | None:
        """The body of ``sha256`` if present and intact; a corrupt body is removed (None)."""
        path = self.file_path(sha256)
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._verified.get(sha256) == key:
                return path
        try:
            digest = sha256_file(path)
        except OSError:
            return None
        if digest != sha256:
            self.remove(sha256)
            return None
        with self._lock:
            self._verified[sha256] = key
        return path

    def remove(self, sha256: str) -> None:
        with self._lock:
            self._verified.pop(sha256, None)
        try:
            self.file_path(sha256).unlink()
        except OSError:
            pass

    def temp_file(self) -> tuple[IO[bytes], Path]:
        """A new temporary file in the files bucket (same filesystem as its final place)."""
        fd, name = tempfile.mkstemp(dir=self.files, prefix=TMP_PREFIX)
        return os.fdopen(fd, "wb"), Path(name)

    def commit(self, tmp: Path, sha256: str) -> Path:
        target = self.file_path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        st = target.stat()
        with self._lock:
            self._verified[sha256] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return target

    @staticmethod
    def discard(tmp: Path) -> None:
        try:
            tmp.unlink()
        except OSError:
            pass

    # -- small JSON records ------------------------------------------------------------------

    def pointer_path(self, route: str, project: str, filename: str) -> Path:
        return self.pointers / _safe(route) / _safe(project) / (_safe(filename) + ".json")

    def file_lock(self, route: str, project: str, filename: str) -> Any:
        """A cross-process lock for fetching one file of a route (``filelock.FileLock``)."""
        from filelock import FileLock

        key = hashlib.sha256(f"{route}\0{project}\0{filename}".encode()).hexdigest()
        locks = self.root / "locks"
        locks.mkdir(exist_ok=True)
        return FileLock(str(locks / f"{key}.lock"))

    def page_path(self, route: str, project: str) -> Path:
        return self.pages / _safe(route) / (_safe(project) + ".json")

    def list_path(self, upstream: str) -> Path:
        return self.root / "lists-v1" / (_safe(upstream) + ".json")


def read_json(path: Path) -> Any:
    """The JSON in ``path``; None when it cannot be read or is not JSON."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, separators=(",", ":")).encode())


def keep_json(path: Path, obj: Any) -> bool:
    """``write_json`` for what only saves work later (a page, a pointer): a cache kea serve
    cannot write to is said in the log (once per kind of error), and the request goes on."""
    try:
        write_json(path, obj)
        return True
    except OSError as e:
        cache_write_failed(path, e)
        return False


_FAILED: set[int] = set()


def cache_write_failed(path: Path, error: OSError) -> None:
    import logging

    log = logging.getLogger("kea.serve")
    kind = error.errno or 0
    if kind in _FAILED:
        log.debug("cannot write %s to the cache: %s", path.name, error.strerror)
        return
    _FAILED.add(kind)
    log.warning(
        "cannot write to the cache (%s: %s); serving without keeping it",
        path.parent,
        error.strerror or error,
    )


def remove_unused_bodies(root: Path) -> bool:
    """Remove ``files-v1``, the store of bodies shared by every route before route stores
    existed (79688d4): nothing reads it, and it may hold private bodies. True if it was
    there."""
    import shutil

    old = root / "files-v1"
    if not old.is_dir() or old.is_symlink():
        return False
    shutil.rmtree(old, ignore_errors=True)
    return True


CACHE_DIR_HINT = "set [server] cache-dir, or --cache-dir, to a directory kea serve can write"


def cache_dir_problem(path: Path) -> str | None:
    """Why kea serve could not keep its cache in ``path`` (None: it can), judged without
    creating anything: the directory, or the nearest existing parent it would be made in."""
    here = path
    while not here.exists():
        if here.parent == here:
            break
        here = here.parent
    if here.exists() and not here.is_dir():
        return f"cache directory {path}: {here} is not a directory"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"cache directory {path}: {here} is not writable"
    return None


def prepare_cache_dir(path: Path) -> None:
    """Make ``path`` and check that a file can be written in it; a KeaError saying why not."""
    from kea.errors import KeaError

    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path, prefix=TMP_PREFIX)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise KeaError(
            f"cannot use {path} as kea serve's cache: {e.strerror or e}", hint=CACHE_DIR_HINT
        ) from None


def write_atomic(path: Path, data: bytes) -> None:
    """``kea.atomic.atomic_write``, its directory made first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


__all__ = [
    "CACHE_DIR_HINT",
    "Store",
    "cache_dir_problem",
    "cache_write_failed",
    "is_sha256",
    "keep_json",
    "prepare_cache_dir",
    "read_json",
    "remove_unused_bodies",
    "sha256_file",
    "write_atomic",
    "write_json",
]
