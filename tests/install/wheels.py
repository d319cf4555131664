"""Build real, valid wheels for tests (and unpack them the way the cache does)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import zipfile
from pathlib import Path


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    files: dict[str, str] | None = None,
    console_scripts: dict[str, str] | None = None,
    gui_scripts: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    requires: list[str] | None = None,
    requires_python: str | None = None,
    extras: list[str] | None = None,
    tag: str = "py3-none-any",
    purelib: bool = True,
    record_extra: list[str] | None = None,
    raw_record: str | None = None,
) -> Path:
    """A wheel with METADATA, WHEEL, entry_points.txt and RECORD.

    ``files``: path (relative to the root) -> text; ``data``: "<scheme>/<path>" -> text, placed
    under ``<name>-<version>.data/``. ``record_extra``: RECORD lines added as they are (to build
    bad wheels); ``raw_record``: replace RECORD entirely.
    """
    dist = name.replace("-", "_")
    di = f"{dist}-{version}.dist-info"
    members: dict[str, bytes] = {}
    if files is None:
        files = {f"{dist}/__init__.py": f"VERSION = {version!r}\n"}
    for path, text in files.items():
        members[path] = text.encode()
    for path, text in (data or {}).items():
        members[f"{dist}-{version}.data/{path}"] = text.encode()
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: test package {name}",
    ]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Provides-Extra: {e}" for e in extras or []]
    meta += [f"Requires-Dist: {r}" for r in requires or []]
    members[f"{di}/METADATA"] = ("\n".join(meta) + "\n\nA long description.\n").encode()
    members[f"{di}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: kea-tests\n"
        f"Root-Is-Purelib: {'true' if purelib else 'false'}\nTag: {tag}\n"
    ).encode()
    eps = ""
    for section, scripts in (("console_scripts", console_scripts), ("gui_scripts", gui_scripts)):
        if scripts:
            eps += f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    if eps:
        members[f"{di}/entry_points.txt"] = eps.encode()
    if raw_record is None:
        lines = [f"{p},{_hash(d)},{len(d)}" for p, d in members.items()]
        lines += record_extra or []
        lines.append(f"{di}/RECORD,,")
        raw_record = "\n".join(lines) + "\n"
    members[f"{di}/RECORD"] = raw_record.encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    whl = out_dir / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, content in members.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            mode = 0o755 if "/scripts/" in path else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, content)
    return whl


def unpack_wheel(whl: Path, archive_root: Path) -> Path:
    """Unpack like the cache: an immutable directory named after the wheel."""
    dest = archive_root / whl.name[: -len(".whl")]
    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(target, mode or 0o644)
    return dest
