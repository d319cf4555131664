"""Rendering project pages and the project list: PEP 503 HTML and PEP 691 JSON.

Both carry PEP 592 yanked, ``requires-python``, hashes, PEP 658/714 core-metadata and PEP 700
``versions``/``size``/``upload-time``. File URLs are whatever the caller put in ``DistFile.url``
(kea serve's own ``/files/...`` paths, or upstream URLs in no case).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from kea.index.models import DistFile

API_VERSION = "1.1"


def _versions(files: Iterable[DistFile]) -> list[str]:
    from packaging.version import InvalidVersion, Version

    found: dict[str, Version | None] = {}
    for f in files:
        v = f.version
        if v is not None:
            found[str(v)] = v

    def key(s: str) -> tuple[int, Version | str]:
        try:
            return (1, Version(s))
        except InvalidVersion:
            return (0, s)

    return sorted(found, key=key)


def _hash_fragment(hashes: dict[str, str]) -> str:
    for alg in ("sha256", "sha384", "sha512"):
        if alg in hashes:
            return f"#{alg}={hashes[alg]}"
    if hashes:
        alg = sorted(hashes)[0]
        return f"#{alg}={hashes[alg]}"
    return ""


def project_html(name: str, files: list[DistFile]) -> bytes:
    out = [
        "<!DOCTYPE html>",
        "<html><head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        f"<title>Links for {html.escape(name)}</title></head><body>",
        f"<h1>Links for {html.escape(name)}</h1>",
    ]
    for f in files:
        attrs = [f'href="{html.escape(f.url + _hash_fragment(f.hashes))}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        if f.yanked is not False:
            reason = f.yanked if isinstance(f.yanked, str) else ""
            attrs.append(f'data-yanked="{html.escape(reason)}"')
        if f.core_metadata is not False:
            if isinstance(f.core_metadata, dict) and f.core_metadata:
                alg, value = next(iter(sorted(f.core_metadata.items())))
                meta = f"{alg}={value}"
            else:
                meta = "true"
            attrs.append(f'data-core-metadata="{html.escape(meta)}"')
            attrs.append(f'data-dist-info-metadata="{html.escape(meta)}"')
        out.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br>")
    out.append("</body></html>")
    return ("\n".join(out) + "\n").encode("utf-8")


def project_json(name: str, files: list[DistFile], versions: list[str] | None = None) -> bytes:
    items = []
    for f in files:
        item: dict[str, object] = {"filename": f.filename, "url": f.url, "hashes": f.hashes}
        if f.requires_python:
            item["requires-python"] = f.requires_python
        if f.yanked is not False:
            item["yanked"] = f.yanked
        if f.core_metadata is not False:
            item["core-metadata"] = f.core_metadata
            item["dist-info-metadata"] = f.core_metadata
        if f.size is not None:
            item["size"] = f.size
        if f.upload_time:
            item["upload-time"] = f.upload_time
        items.append(item)
    doc = {
        "meta": {"api-version": API_VERSION},
        "name": name,
        "versions": versions if versions else _versions(files),
        "files": items,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def index_html(names: list[str]) -> bytes:
    out = [
        "<!DOCTYPE html>",
        "<html><head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        "<title>Simple index</title></head><body>",
    ]
    out += [f'<a href="/simple/{html.escape(n)}/">{html.escape(n)}</a><br>' for n in names]
    out.append("</body></html>")
    return ("\n".join(out) + "\n").encode("utf-8")


def index_json(names: list[str]) -> bytes:
    # In pieces: one json.dumps of a public index's ~700,000 names would hold the GIL (and the
    # event loop, which waits for it) for half a second.
    pieces = [
        json.dumps([{"name": n} for n in names[i : i + _PIECE]], separators=(",", ":"))[1:-1]
        for i in range(0, len(names), _PIECE)
    ]
    head = json.dumps({"meta": {"api-version": API_VERSION}}, separators=(",", ":"))[:-1]
    return (head + ',"projects":[' + ",".join(pieces) + "]}").encode("utf-8")


_PIECE = 5000


def render_project(kind: str, name: str, files: list[DistFile], versions: list[str]) -> bytes:
    if kind == "json":
        return project_json(name, files, versions)
    return project_html(name, files)


def render_index(kind: str, names: list[str]) -> bytes:
    return index_json(names) if kind == "json" else index_html(names)


__all__ = ["project_html", "project_json", "render_index", "render_project"]
