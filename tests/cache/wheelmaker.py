"""Build real wheels for tests: zip files with WHEEL, METADATA and a correct RECORD.

Options corrupt them on purpose (a wrong RECORD hash, a ``../`` or absolute path, an unlisted
file) to exercise the cache's checks.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
    files: dict[str, bytes] | None = None,
    tag: str = "py3-none-any",
    bad_record_hash: str | None = None,
    extra_members: dict[str, bytes] | None = None,
    unlisted: dict[str, bytes] | None = None,
    padding: int = 0,
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` into ``directory`` and return its path.

    ``bad_record_hash``: a member path whose RECORD hash is deliberately wrong.
    ``extra_members``: members written and listed in RECORD as given (e.g. ``../evil.py``).
    ``unlisted``: members written but absent from RECORD.
    ``padding``: bytes of incompressible data in a module, to make the wheel large.
    """
    dist = name.replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    meta_lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta_lines.append(f"Requires-Python: {requires_python}")
    meta_lines += [f"Requires-Dist: {r}" for r in requires]
    metadata = ("\n".join(meta_lines) + "\n").encode()
    members: dict[str, bytes] = {
        f"{dist}/__init__.py": f"__version__ = {version!r}\n".encode(),
    }
    if padding:
        import os

        blob = base64.b64encode(os.urandom(padding)).decode()
        members[f"{dist}/_blob.py"] = f"BLOB = {blob!r}\n".encode()
    members.update(files or {})
    members.update(extra_members or {})
    members[f"{dist_info}/METADATA"] = metadata
    members[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: kea-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    record_rows = []
    for path, data in members.items():
        digest = _record_hash(data)
        if path == bad_record_hash:
            digest = _record_hash(data + b"tampered")
        record_rows.append(f"{path},{digest},{len(data)}")
    record_rows.append(f"{dist_info}/RECORD,,")
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in members.items():
            zf.writestr(path, data)
        for path, data in (unlisted or {}).items():
            zf.writestr(path, data)
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record_rows) + "\n")
    return out


def replace_member(wheel: Path, member: str, data: bytes) -> None:
    """Replace one member's bytes in ``wheel``, everything else (RECORD too) kept as it is."""
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, data if info.filename == member else src.read(info))
    tmp.replace(wheel)


def with_hex_record(wheel: Path) -> Path:
    """``wheel`` rewritten with its RECORD's sha256 digests in hex, as uv_build wrote them before
    0.8.13 (astral-sh/uv#15400); members are left as they are."""
    with zipfile.ZipFile(wheel) as zf:
        (record,) = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
        text = zf.read(record).decode()
    rows = []
    for row in text.splitlines():
        path, digest, size = row.split(",")
        if digest.startswith("sha256="):
            raw = base64.urlsafe_b64decode(digest[7:] + "=" * (-len(digest[7:]) % 4))
            digest = "sha256=" + raw.hex()
        rows.append(f"{path},{digest},{size}")
    replace_member(wheel, record, ("\n".join(rows) + "\n").encode())
    return wheel


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metadata_of(name: str, version: str, requires: tuple[str, ...] = ()) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return ("\n".join(lines) + "\n").encode()
