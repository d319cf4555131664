"""Stage one unpacked wheel (an immutable archive directory) for a target scheme.

``stage_wheel`` lays the wheel out under a staging directory, one subdirectory per scheme key
(``purelib``, ``platlib``, ``scripts``, ``data``, ``headers``), exactly as it will appear in the
target: files linked from the archive, ``.data/`` parts moved to their schemes, ``#!python``
scripts rewritten, console/GUI launchers generated (the ``installer`` library's script maker),
``INSTALLER``, ``REQUESTED`` and ``direct_url.json`` written. Nothing outside the staging
directory is touched; ``kea.install.transaction`` swaps the result into place.

Paths are taken from the archive's ``RECORD`` (hashes too, never recomputed); a path that escapes
its root (``..``, absolute) is refused before anything is staged.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from kea.dist.metadata import parse_headers, parse_metadata
from kea.dist.record import RecordEntry, check_safe, hash_bytes, parse_record, write_record
from kea.errors import KeaError
from kea.install.environment import Scheme
from kea.install.link import Linker

SCHEME_KEYS = ("purelib", "platlib", "scripts", "data", "headers")
_SKIP_IN_DIST_INFO = {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED"}


@dataclass
class StagedWheel:
    """A wheel laid out under ``stage`` (``stage/<scheme key>/<path>``), ready to commit."""

    name: str  # canonical
    display_name: str
    version: str
    stage: Path
    dist_info: str  # directory name, e.g. foo-1.0.dist-info
    root_key: str  # "purelib" or "platlib": where the dist-info goes
    files: dict[tuple[str, str], RecordEntry] = field(default_factory=dict)  # (key, rel) -> rec

    def staged_path(self, key: str, rel: str) -> Path:
        return self.stage / key / rel


def find_dist_info(archive: Path) -> Path:
    try:
        found = [p for p in archive.iterdir() if p.name.endswith(".dist-info") and p.is_dir()]
    except OSError as e:
        raise KeaError(f"cannot read wheel archive {archive}: {e.strerror}") from None
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise KeaError(f"invalid wheel {archive.name}: {what} .dist-info directory")
    return found[0]


def _shebang(executable: str) -> bytes:
    exe = executable.encode()
    if b" " not in exe and len(exe) + 3 <= 127:
        return b"#!" + exe + b"\n"
    # A shebang that /bin/sh re-executes with the real interpreter (paths with spaces).
    return b"#!/bin/sh\n'''exec' \"" + exe + b'" "$0" "$@"\n\' \'\'\'\n'


def _entry_points(text: str, source: str) -> list[tuple[str, str, str, str]]:
    """(section, name, module, attr) for console_scripts and gui_scripts."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source)
    except configparser.Error as e:
        raise KeaError(f"{source}: invalid entry_points.txt: {e.message}") from None
    out = []
    for section, kind in (("console_scripts", "console"), ("gui_scripts", "gui")):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            target = value.split("[", 1)[0].strip()
            module, _, attr = target.partition(":")
            module, attr = module.strip(), attr.strip()
            if not module or not attr or "/" in name or name in ("", ".", ".."):
                raise KeaError(f"{source}: invalid entry point {name} = {value}")
            out.append((kind, name.strip(), module, attr))
    return out


def stage_wheel(
    archive: Path,
    stage: Path,
    *,
    scheme: Scheme,
    executable: str,
    linker: Linker,
    direct_url: str | None = None,
    requested: bool = True,
) -> StagedWheel:
    """Lay out ``archive`` under ``stage`` (which must not exist) for ``scheme``."""
    dist_info = find_dist_info(archive)
    di = dist_info.name
    label = archive.name
    try:
        wheel_text = (dist_info / "WHEEL").read_text("utf-8")
        meta = parse_metadata((dist_info / "METADATA").read_bytes(), source=f"{label}: METADATA")
        record = parse_record((dist_info / "RECORD").read_text("utf-8"), source=f"{label}: RECORD")
    except OSError as e:
        raise KeaError(f"invalid wheel {label}: cannot read {e.filename}: {e.strerror}") from None
    wheel_info = dict(parse_headers(wheel_text))
    purelib = wheel_info.get("root-is-purelib", "true").strip().lower() == "true"
    root_key = "purelib" if purelib else "platlib"
    data_prefix = di[: -len(".dist-info")] + ".data/"

    # 1. Where every RECORD path goes, checked before anything is created.
    plan: list[tuple[str, str, RecordEntry]] = []  # (scheme key, rel under key, archive entry)
    for entry in record:
        check_safe(entry.path, source=f"{label}: RECORD")
        if entry.path.startswith(di + "/") and entry.path[len(di) + 1 :] in _SKIP_IN_DIST_INFO:
            continue
        if entry.path.startswith(data_prefix):
            key, _, rel = entry.path[len(data_prefix) :].partition("/")
            if key not in SCHEME_KEYS or not rel:
                raise KeaError(f"{label}: unknown .data scheme in {entry.path!r}")
            check_safe(rel, source=f"{label}: RECORD")
            if key == "headers":
                rel = f"{meta.name}/{rel}"
                check_safe(rel, source=f"{label}: METADATA Name")
            plan.append((key, rel, entry))
        else:
            plan.append((root_key, entry.path, entry))
        if not os.path.isfile(archive / entry.path):
            raise KeaError(f"invalid wheel {label}: {entry.path} is in RECORD but not in the wheel")

    staged = StagedWheel(
        name=meta.canonical_name,
        display_name=meta.name,
        version=meta.version,
        stage=stage,
        dist_info=di,
        root_key=root_key,
    )

    # 2. One mkdir per directory, parents first.
    dirs: set[str] = {key for key in SCHEME_KEYS}
    for key, rel, _ in plan:
        parent = os.path.dirname(rel)
        while parent and f"{key}/{parent}" not in dirs:
            dirs.add(f"{key}/{parent}")
            parent = os.path.dirname(parent)
    dirs.add(f"{root_key}/{di}")
    try:
        stage.mkdir(parents=True)
        for d in sorted(dirs, key=lambda s: (s.count("/"), s)):
            os.mkdir(stage / d)
    except OSError as e:
        raise KeaError(f"cannot create staging directory {stage}: {e.strerror}") from None

    # 3. Files: link from the archive; scripts with #!python are rewritten copies.
    shebang = _shebang(executable)
    for key, rel, entry in plan:
        src = str(archive / entry.path)
        dst = str(stage / key / rel)
        if key == "scripts":
            with open(src, "rb") as f:
                data = f.read()
            if data.startswith(b"#!python"):
                data = shebang + data.split(b"\n", 1)[1] if b"\n" in data else shebang
                staged.files[(key, rel)] = RecordEntry("", hash_bytes(data), len(data))
            else:
                staged.files[(key, rel)] = entry
            _write(dst, data, 0o755)
            continue
        linker.link(src, dst)
        staged.files[(key, rel)] = entry

    # 4. Launchers for console and GUI entry points.
    ep_path = dist_info / "entry_points.txt"
    if ep_path.is_file():
        from installer.scripts import Script

        for kind, name, module, attr in _entry_points(ep_path.read_text("utf-8"), label):
            script = Script(name, module, attr, section=kind)  # type: ignore[arg-type]
            fname, data = script.generate(executable, "posix")
            _write(str(stage / "scripts" / fname), data, 0o755)
            staged.files[("scripts", fname)] = RecordEntry("", hash_bytes(data), len(data))

    # 5. Files kea writes into the dist-info.
    extra = {"INSTALLER": b"kea\n"}
    if requested:
        extra["REQUESTED"] = b""
    if direct_url is not None:
        extra["direct_url.json"] = direct_url.encode()
    for fname, data in extra.items():
        rel = f"{di}/{fname}"
        _write(str(stage / root_key / rel), data, 0o644)
        staged.files[(root_key, rel)] = RecordEntry("", hash_bytes(data), len(data))
    return staged


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def write_staged_record(staged: StagedWheel, scheme: Scheme) -> None:
    """Write the dist-info's RECORD with the *installed* paths (relative to its root)."""
    roots = {k: str(getattr(scheme, k)) for k in SCHEME_KEYS}
    base = roots[staged.root_key]
    rows: list[RecordEntry] = []
    for (key, rel), entry in sorted(staged.files.items()):
        if key == staged.root_key:
            path = rel
        else:
            path = os.path.relpath(os.path.join(roots[key], rel), base).replace(os.sep, "/")
        rows.append(RecordEntry(path, entry.hash, entry.size))
    rows.append(RecordEntry(f"{staged.dist_info}/RECORD", "", None))
    data = write_record(rows).encode()
    _write(str(staged.stage / staged.root_key / staged.dist_info / "RECORD"), data, 0o644)
