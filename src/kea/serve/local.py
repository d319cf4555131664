"""Directory routes: a folder of wheels and sdists served as an index, and uploads into it.

Files may sit at the top of the folder or one level down (``<dir>/<project>/<file>``, the
simpleindex/pypiserver layout). The sha256 of each file is computed once and kept, keyed by
(size, mtime): a changed file is rehashed on the next request. The core metadata of a wheel
(PEP 658) is extracted once into the cache directory, named by the wheel's sha256.

Blocking work (stat, hashing, unzipping) runs in threads: call the ``*_sync`` methods through
``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from kea.errors import KeaError
from kea.index.findlinks import project_of
from kea.index.html import is_dist_filename
from kea.index.models import DistFile
from kea.serve.store import sha256_file, write_atomic


@dataclass(frozen=True)
class LocalFile:
    path: Path
    filename: str
    size: int
    mtime_ns: int
    sha256: str
    requires_python: str | None = None
    metadata_sha256: str | None = None  # of the extracted METADATA (wheels only)
    upload_time: str | None = None


def _upload_time(mtime_ns: int) -> str:
    import datetime

    t = datetime.datetime.fromtimestamp(mtime_ns / 1e9, tz=datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LocalDirectory:
    """One directory route."""

    def __init__(self, root: Path, metadata_dir: Path) -> None:
        self.root = root
        self.metadata_dir = metadata_dir
        self._known: dict[Path, LocalFile] = {}
        self._lock = threading.Lock()
        # The last scan and what it depended on: the mtimes of the folder and its subfolders.
        self._listing: dict[str, list[Path]] | None = None
        self._signature: tuple[int, ...] = ()
        self._subdirs: list[str] = []

    # -- listing -----------------------------------------------------------------------------

    def _signature_now(self, subdirs: list[str]) -> tuple[int, ...] | None:
        try:
            return (
                os.stat(self.root).st_mtime_ns,
                *(os.stat(d).st_mtime_ns for d in subdirs),
            )
        except OSError:
            return None

    def _scan(self) -> dict[str, list[Path]]:
        """Files by project; rescanned only when the folder or a subfolder changed (a file
        added, removed or renamed). Files changed in place are caught by ``_file``'s stat."""
        with self._lock:
            listing, subdirs, signature = self._listing, self._subdirs, self._signature
        if listing is not None and self._signature_now(subdirs) == signature:
            return listing
        out: dict[str, list[Path]] = {}
        try:
            top = list(os.scandir(self.root))
        except OSError as e:
            raise KeaError(f"cannot read {self.root}: {e.strerror}") from None
        entries: list[os.DirEntry[str]] = []
        found_subdirs: list[str] = []
        before = self._signature_now([])
        for entry in top:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                found_subdirs.append(entry.path)
                try:
                    entries.extend(os.scandir(entry.path))
                except OSError:
                    continue
            else:
                entries.append(entry)
        for entry in entries:
            if entry.name.startswith(".") or not is_dist_filename(entry.name):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            name = project_of(entry.name)
            if name:
                out.setdefault(name, []).append(Path(entry.path))
        sig = self._signature_now(found_subdirs)
        if sig is not None and before is not None and sig[0] == before[0]:
            with self._lock:
                self._listing, self._subdirs, self._signature = out, found_subdirs, sig
        return out

    def files_fast(self, project: str) -> list[LocalFile] | None:
        """``files_sync`` when nothing needs hashing (cheap stats only), else None."""
        paths = self._scan().get(project, [])
        out = []
        for path in paths:
            with self._lock:
                known = self._known.get(path)
            if known is None:
                return None
            try:
                st = path.stat()
            except OSError:
                return None
            if (known.size, known.mtime_ns) != (st.st_size, st.st_mtime_ns):
                return None
            out.append(known)
        out.sort(key=lambda f: f.filename)
        return out

    def invalidate(self) -> None:
        with self._lock:
            self._listing = None

    def projects_sync(self) -> list[str]:
        return sorted(self._scan())

    def files_sync(self, project: str) -> list[LocalFile]:
        """The files of ``project`` (a normalised name), hashed, sorted by file name."""
        paths = self._scan().get(project, [])
        out = [f for f in (self._file(p) for p in paths) if f is not None]
        out.sort(key=lambda f: f.filename)
        return out

    def find_sync(self, project: str, filename: str) -> LocalFile | None:
        for f in self.files_sync(project):
            if f.filename == filename:
                return f
        return None

    def _file(self, path: Path) -> LocalFile | None:
        try:
            st = path.stat()
        except OSError:
            return None
        with self._lock:
            known = self._known.get(path)
        if known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return known
        try:
            digest = sha256_file(path)
        except OSError:
            return None
        requires_python = meta_sha = None
        if path.name.endswith(".whl"):
            meta = self._metadata_for(path, digest)
            if meta is not None:
                meta_sha = hashlib.sha256(meta).hexdigest()
                msg = BytesParser().parsebytes(meta, headersonly=True)
                rp = msg.get("Requires-Python")
                requires_python = str(rp).strip() if rp else None
        f = LocalFile(
            path=path,
            filename=path.name,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            sha256=digest,
            requires_python=requires_python,
            metadata_sha256=meta_sha,
            upload_time=_upload_time(st.st_mtime_ns),
        )
        with self._lock:
            self._known[path] = f
        return f

    # -- PEP 658 metadata --------------------------------------------------------------------

    def _metadata_path(self, sha256: str) -> Path:
        return self.metadata_dir / sha256[:2] / f"{sha256}.metadata"

    def _metadata_for(self, path: Path, sha256: str) -> bytes | None:
        """The wheel's METADATA: from the cache when the entry checks out against the digest it
        carries (``sha256=<hex>\n`` then the bytes), else extracted again and re-cached."""
        target = self._metadata_path(sha256)
        try:
            head, sep, meta = target.read_bytes().partition(b"\n")
        except OSError:
            head = sep = meta = b""
        if sep and head == b"sha256=" + hashlib.sha256(meta).hexdigest().encode():
            return meta
        from kea.index.wheelmeta import metadata_from_zip

        try:
            meta = metadata_from_zip(path, path.name)
        except KeaError:
            return None
        write_atomic(target, b"sha256=" + hashlib.sha256(meta).hexdigest().encode() + b"\n" + meta)
        return meta

    def metadata_sync(self, project: str, filename: str) -> bytes | None:
        f = self.find_sync(project, filename)
        if f is None or f.metadata_sha256 is None:
            return None
        return self._metadata_for(f.path, f.sha256)

    # -- records -----------------------------------------------------------------------------

    @staticmethod
    def dist_file(f: LocalFile, url: str) -> DistFile:
        return DistFile(
            filename=f.filename,
            url=url,
            hashes={"sha256": f.sha256},
            requires_python=f.requires_python,
            core_metadata={"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
            size=f.size,
            upload_time=f.upload_time,
        )

    # -- uploads -----------------------------------------------------------------------------

    def exists_sync(self, filename: str) -> bool:
        """Whether the directory holds ``filename`` or another spelling of the same file: the
        same project, version (``1.0`` is ``1.0.0``), build and tags for a wheel, any sdist of
        the same version. An installer could not tell two such files apart."""
        project = project_of(filename)
        if project is None:
            return False
        paths = self._scan().get(project, [])
        same = _identity(filename)
        return any(p.name == filename or (same and _identity(p.name) == same) for p in paths)

    def store_sync(self, filename: str, data: Path) -> Path:
        """Place the uploaded temp file ``data`` as ``filename``; FileExistsError if it exists.

        The bytes are copied to a temporary name in the directory, then hard-linked to their
        final name: linking never replaces an existing file, so two racing uploads of the same
        name cannot both win.
        """
        import shutil
        import tempfile

        if self.exists_sync(filename):
            raise FileExistsError(filename)
        target = self.root / filename
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-upload-")
        os.close(fd)
        try:
            shutil.copyfile(data, tmp)
            os.link(tmp, target)
            self.invalidate()
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return target


def _identity(filename: str) -> tuple[object, ...] | None:
    """What tells distribution files apart, whatever their spelling: (name, version, build
    tag, tags) of a wheel, (name, version) of an sdist; None when the name does not parse."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            name, version, build, tags = parse_wheel_filename(filename)
            return (name, version, build, tags)
        name, version = parse_sdist_filename(filename)
        return (name, version, "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


__all__ = ["LocalDirectory", "LocalFile", "sha256_file"]
