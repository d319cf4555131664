"""Local sources: ``--find-links`` directories and HTML files, and ``file://`` indexes.

A find-links directory is flat: every distribution file in it is a candidate for the project its
file name names. A ``file://`` index is a directory laid out as ``<root>/<project>/`` (each
holding the files, or an ``index.html`` page listing them), or flat like a find-links directory.
Remote find-links pages (http/https) are fetched by ``IndexClient`` and parsed here.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kea.auth.redact import redact_url
from kea.errors import KeaError
from kea.index.models import DistFile, ProjectPage, normalize_name

# kea.index.html (html.parser, html.entities) is imported by the functions that read local
# sources: IndexClient imports this module for is_local/local_path on every run.


def is_local(location: str) -> bool:
    return location.startswith("file:") or "://" not in location


def local_path(location: str) -> Path:
    """The filesystem path of a local location (a path or a ``file:`` URL)."""
    if location.startswith("file:"):
        from urllib.request import url2pathname  # pulls http.client and email: only here

        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise KeaError(f"unsupported file URL {location!r}: remote hosts are not supported")
        return Path(url2pathname(unquote(parts.path)))
    return Path(os.path.expanduser(location))


def project_of(filename: str) -> str | None:
    """The normalized project name a distribution file name belongs to, or None."""
    from kea.dist.wheel_name import parse_dist_filename

    parsed = parse_dist_filename(filename)
    if parsed is not None:
        return normalize_name(parsed[0])
    # Legacy names (.tar.bz2, .egg): best effort, name before the last dash.
    stem = filename
    for suffix in (".tar.bz2", ".tar.xz", ".tgz", ".tar", ".egg", ".zip", ".tar.gz"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if "-" not in stem:
        return None
    return normalize_name(stem.rsplit("-", 1)[0])


def _dir_files(directory: Path) -> list[DistFile]:
    from kea.index.html import is_dist_filename

    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
        raise KeaError(f"cannot read find-links directory {directory}: {e.strerror}") from None
    out = []
    for entry in entries:
        if entry.is_file() and is_dist_filename(entry.name):
            out.append(DistFile(filename=entry.name, url=Path(entry.path).resolve().as_uri()))
    return out


def group_by_project(files: list[DistFile], source: str) -> dict[str, ProjectPage]:
    grouped: dict[str, list[DistFile]] = defaultdict(list)
    for f in files:
        name = project_of(f.filename)
        if name:
            grouped[name].append(f)
    return {name: ProjectPage(name=name, url=source, files=fs) for name, fs in grouped.items()}


def scan_local_find_links(location: str) -> dict[str, ProjectPage]:
    """All projects of a local find-links entry (a directory or an HTML file)."""
    path = local_path(location)
    if path.is_dir():
        return group_by_project(_dir_files(path), path.resolve().as_uri() + "/")
    if path.is_file():
        try:
            body = path.read_bytes()
        except OSError as e:
            raise KeaError(f"cannot read find-links file {path}: {e.strerror}") from None
        return parse_find_links_page(body, path.resolve().as_uri())
    raise KeaError(
        f"find-links location {redact_url(location)} does not exist",
        hint="--find-links takes a directory, an HTML file, or an http(s) URL of a page",
    )


def parse_find_links_page(
    body: bytes, url: str, charset: str | None = None
) -> dict[str, ProjectPage]:
    """Projects of a find-links HTML page: every link to a distribution file, grouped by name."""
    from kea.index.html import is_dist_filename, links_in_html, parse_project_html

    files: list[DistFile] = []
    page = parse_project_html(body, url, charset=charset, strict=False)
    files = list(page.files)
    if not files:
        # Pages without dist-looking names in the URL path (rare): keep every link.
        files = [
            DistFile(filename=unquote(urlsplit(h).path.rsplit("/", 1)[-1]), url=h)
            for h in links_in_html(body, url, charset=charset)
        ]
        files = [f for f in files if is_dist_filename(f.filename)]
    return group_by_project(files, url)


def file_index_page(index_url: str, name: str) -> ProjectPage | None:
    """The page of ``name`` on a ``file://`` (or plain path) index; None when it has none."""
    root = local_path(index_url)
    if not root.is_dir():
        raise KeaError(f"local index {index_url} is not a directory")
    project = normalize_name(name)
    candidates = [root / project, root / name]
    for directory in candidates:
        if not directory.is_dir():
            continue
        page_file = directory / "index.html"
        base = directory.resolve().as_uri() + "/"
        if page_file.is_file():
            from kea.index.html import parse_project_html

            return parse_project_html(page_file.read_bytes(), base, name=project)
        files = [f for f in _dir_files(directory) if project_of(f.filename) == project]
        return ProjectPage(name=project, url=base, files=files)
    # Flat layout: the files sit in the index directory itself.
    flat = [f for f in _dir_files(root) if project_of(f.filename) == project]
    if flat:
        return ProjectPage(name=project, url=root.resolve().as_uri() + "/", files=flat)
    return None
