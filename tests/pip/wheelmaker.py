"""Build real, minimal wheels for tests (zip + METADATA + WHEEL + RECORD with sha256 hashes)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    extras: Mapping[str, Iterable[str]] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    console_scripts: Mapping[str, str] | None = None,
    tag: str = "py3-none-any",
    wheel_file: bytes | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``dest``; return its path.

    By default the wheel holds one module ``<name>/__init__.py`` defining ``VERSION``.
    ``wheel_file``: the dist-info's ``WHEEL`` instead of the usual one (listed in RECORD).
    """
    dest.mkdir(parents=True, exist_ok=True)
    dist = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    for extra, reqs in (extras or {}).items():
        meta.append(f"Provides-Extra: {extra}")
        for r in reqs:
            req, _, cond = r.partition(";")
            marker = f'extra == "{extra}"'
            if cond.strip():
                marker = f"({cond.strip()}) and {marker}"
            meta.append(f"Requires-Dist: {req.strip()}; {marker}")
    contents: dict[str, bytes] = {}
    for path, text in (files or {f"{dist}/__init__.py": f'VERSION = "{version}"\n'}).items():
        contents[path] = text.encode() if isinstance(text, str) else text
    contents[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n\n").encode()
    contents[f"{dist_info}/WHEEL"] = (
        wheel_file
        or (
            f"Wheel-Version: 1.0\nGenerator: kea-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode()
    )
    if console_scripts:
        lines = ["[console_scripts]"] + [f"{k} = {v}" for k, v in console_scripts.items()]
        contents[f"{dist_info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = [f"{p},{_record_hash(d)},{len(d)}" for p, d in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = dest / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in contents.items():
            zf.writestr(p, d)
    return path
