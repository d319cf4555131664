"""A PEP 503 static index, generated per set, that nginx serves as plain files.

Layout under ``work/index``: ``files/<wheel>`` (a symlink into ``work/wheels``) and
``files/<wheel>.metadata`` (PEP 658: the wheel's METADATA, extracted once), and per set
``<set>/simple/index.html`` and ``<set>/simple/<project>/index.html``. Links are relative
(``../../../files/...``) so a page fetched through a redirect keeps its files on the same origin.
"""

from __future__ import annotations

import hashlib
import html
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kbench.sets import normalize, wheel_name_version


@dataclass(frozen=True)
class FileEntry:
    filename: str
    sha256: str
    metadata_sha256: str
    requires_python: str | None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel_metadata(path: Path) -> bytes:
    """The ``*.dist-info/METADATA`` bytes of a wheel."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise ValueError(f"{path.name}: expected one .dist-info/METADATA, found {names}")
        return z.read(names[0])


def requires_python(metadata: bytes) -> str | None:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # end of headers
        key, _, value = line.partition(":")
        if key.strip().lower() == "requires-python":
            return value.strip() or None
    return None


def project_page(project: str, entries: list[FileEntry]) -> str:
    """The PEP 503 page of one project, with sha256 fragments and PEP 658/714 attributes."""
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta name="pypi:repository-version" content="1.1">'
        f"<title>Links for {html.escape(project)}</title></head><body>",
        f"<h1>Links for {html.escape(project)}</h1>",
    ]
    for e in sorted(entries, key=lambda e: e.filename):
        attrs = f'href="../../../files/{html.escape(e.filename)}#sha256={e.sha256}"'
        if e.requires_python:
            attrs += f' data-requires-python="{html.escape(e.requires_python, quote=True)}"'
        attrs += f' data-dist-info-metadata="sha256={e.metadata_sha256}"'
        attrs += f' data-core-metadata="sha256={e.metadata_sha256}"'
        lines.append(f"<a {attrs}>{html.escape(e.filename)}</a><br/>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def root_page(projects: list[str]) -> str:
    links = "".join(f'<a href="{p}/">{p}</a><br/>\n' for p in sorted(projects))
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
        "<title>Simple index</title></head><body>\n" + links + "</body></html>\n"
    )


def _entry(wheels: Path, files: Path, filename: str, memo: dict[str, FileEntry]) -> FileEntry:
    if filename in memo:
        return memo[filename]
    src = wheels / filename
    link = files / filename
    if not link.exists():
        os.symlink(src, link)
    meta_path = files / (filename + ".metadata")
    if not meta_path.exists():
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_bytes(wheel_metadata(src))
        tmp.replace(meta_path)
    meta = meta_path.read_bytes()
    entry = FileEntry(
        filename=filename,
        sha256=sha256_file(src),
        metadata_sha256=hashlib.sha256(meta).hexdigest(),
        requires_python=requires_python(meta),
    )
    memo[filename] = entry
    return entry


def build_index(root: Path, wheels: Path, set_name: str, filenames: list[str]) -> Path:
    """Write the set's static index; return its ``simple`` directory."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    memo_file = root / ".sha256.tsv"
    memo: dict[str, FileEntry] = {}
    if memo_file.exists():
        for line in memo_file.read_text().splitlines():
            f, sha, msha, rp = line.split("\t")
            memo[f] = FileEntry(f, sha, msha, rp or None)
    by_project: dict[str, list[FileEntry]] = {}
    for filename in filenames:
        key = wheel_name_version(filename)
        if key is None:
            continue
        by_project.setdefault(key[0], []).append(_entry(wheels, files, filename, memo))
    memo_file.write_text(
        "".join(
            f"{e.filename}\t{e.sha256}\t{e.metadata_sha256}\t{e.requires_python or ''}\n"
            for e in memo.values()
        )
    )
    simple = root / set_name / "simple"
    shutil.rmtree(simple, ignore_errors=True)
    simple.mkdir(parents=True)
    for project, entries in by_project.items():
        d = simple / normalize(project)
        d.mkdir(exist_ok=True)
        (d / "index.html").write_text(project_page(project, entries))
    (simple / "index.html").write_text(root_page(list(by_project)))
    return simple
