"""The legacy upload API (what ``twine upload`` speaks): a multipart POST with ``:action``.

The body is streamed to a temporary file (bounded by ``max-upload-size``) while hashed, then
checked: the file name must be a distribution of the form's ``name`` and ``version``, a wheel's
own METADATA must name the same project and version, digests sent by the client must match.
Only then is it placed in the route's directory; an existing file is a conflict (409).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

from kea.errors import KeaError
from kea.index.findlinks import project_of
from kea.index.html import is_dist_filename
from kea.serve.names import normalize, valid_name

if TYPE_CHECKING:
    from aiohttp import web


class UploadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    path: Path | None = None
    sha256: str = ""
    md5: str = ""
    size: int = 0

    def discard(self) -> None:
        if self.path is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            self.path = None


async def read_upload(request: web.Request, tmp_dir: Path, limit: int) -> Upload:
    """Read the multipart form; the file part goes to a temp file in ``tmp_dir``."""
    import aiohttp

    if not request.content_type.startswith("multipart/form-data"):
        raise UploadError(400, "expected a multipart/form-data upload (the legacy upload API)")
    up = Upload()
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            name = part.name or ""
            if part.filename is not None and name == "content":
                if up.path is not None:
                    raise UploadError(400, "more than one file in one upload")
                if any(c in part.filename for c in "/\\\x00"):
                    raise UploadError(400, "the file name must not contain a path")
                up.filename = part.filename
                tmp_dir.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".tmp-upload-")
                up.path = Path(tmp)
                h256, hmd5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
                with os.fdopen(fd, "wb") as f:
                    while chunk := await part.read_chunk(256 * 1024):
                        up.size += len(chunk)
                        if up.size > limit:
                            raise UploadError(413, f"upload larger than {limit} bytes")
                        f.write(chunk)
                        h256.update(chunk)
                        hmd5.update(chunk)
                up.sha256, up.md5 = h256.hexdigest(), hmd5.hexdigest()
            elif part.filename is None:
                value = await part.text()
                if len(value) > 1024 * 1024:
                    raise UploadError(400, f"form field {name!r} is too long")
                up.fields.setdefault(name, value)
            else:
                await part.release()
    except UploadError:
        up.discard()
        raise
    except (ValueError, aiohttp.ClientError, AssertionError) as e:
        up.discard()
        raise UploadError(400, f"malformed upload ({type(e).__name__})") from None
    return up


def check_upload(up: Upload) -> tuple[str, str]:
    """Validate an upload; return (normalised project, file name)."""
    from packaging.version import InvalidVersion, Version

    from kea.dist.wheel_name import parse_dist_filename

    action = up.fields.get(":action", "file_upload")
    if action != "file_upload":
        raise UploadError(400, f"unsupported :action {action!r} (expected file_upload)")
    if up.path is None or not up.filename:
        raise UploadError(400, "no file in the upload (expected a 'content' part)")
    filename = up.filename
    if len(filename) > 255 or not is_dist_filename(filename) or filename.startswith("."):
        raise UploadError(400, f"{filename!r} is not a distribution file name")
    form_name = up.fields.get("name", "")
    if not valid_name(form_name):
        raise UploadError(400, f"invalid project name {form_name!r}")
    project = normalize(form_name)
    file_project = project_of(filename)
    if file_project != project:
        raise UploadError(
            400, f"{filename} is not a file of project {form_name} (it names {file_project})"
        )
    parsed = parse_dist_filename(filename)
    file_version = str(parsed[1]) if parsed else None
    try:
        if Version(up.fields.get("version", "")) != Version(file_version or ""):
            raise UploadError(
                400,
                f"{filename} has version {file_version}, the form says"
                f" {up.fields.get('version', '')!r}",
            )
    except InvalidVersion:
        raise UploadError(400, f"invalid version in the upload of {filename}") from None
    for key, got in (("sha256_digest", up.sha256), ("md5_digest", up.md5)):
        sent = up.fields.get(key, "").strip().lower()
        if sent and sent != got:
            raise UploadError(400, f"{filename}: {key} does not match the uploaded bytes")
    if filename.endswith(".whl"):
        from kea.index.wheelmeta import metadata_from_zip

        try:
            meta = metadata_from_zip(up.path, filename)
        except KeaError:
            raise UploadError(400, f"{filename} is not a valid wheel") from None
    else:
        meta = _sdist_pkg_info(up.path, filename)
    msg = BytesParser().parsebytes(meta, headersonly=True)
    meta_name, meta_version = str(msg.get("Name", "")), str(msg.get("Version", ""))
    try:
        same = normalize(meta_name) == project and Version(meta_version) == Version(
            file_version or ""
        )
    except InvalidVersion:
        same = False
    if not same:
        raise UploadError(
            400,
            f"{filename} does not match its metadata (Name: {meta_name}, Version: {meta_version})",
        )
    return project, filename


MAX_PKG_INFO = 4 * 1024 * 1024
MAX_TAR_SCAN = 1024**3  # PKG-INFO sits near the start; a gzip bomb is not read to its end


def _sdist_pkg_info(path: Path, filename: str) -> bytes:
    """The ``<name>-<version>/PKG-INFO`` of an sdist (.tar.gz or .zip); 400 when unreadable."""
    import tarfile
    import zipfile

    def top_level_pkg_info(name: str) -> bool:
        parts = name.strip("/").split("/")
        return len(parts) == 2 and parts[1] == "PKG-INFO"

    bad = UploadError(400, f"{filename} is not a valid sdist (no readable PKG-INFO)")
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if top_level_pkg_info(info.filename) and info.file_size <= MAX_PKG_INFO:
                        return zf.read(info)
            raise bad
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                if member.offset > MAX_TAR_SCAN:
                    break
                if member.isfile() and top_level_pkg_info(member.name):
                    if member.size > MAX_PKG_INFO:
                        break
                    f = tf.extractfile(member)
                    if f is not None:
                        return f.read()
        raise bad
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, ValueError):
        raise bad from None


__all__ = ["Upload", "UploadError", "check_upload", "read_upload"]
