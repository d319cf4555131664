"""Choosing PEP 691 JSON or PEP 503 HTML from an ``Accept`` header (q-values honoured)."""

from __future__ import annotations

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
_JSON = {JSON_V1: "json", "application/vnd.pypi.simple.latest+json": "json"}
_HTML = {
    HTML_V1: "html",
    "application/vnd.pypi.simple.latest+html": "html",
    "text/html": "html-legacy",
}


def choose(accept: str | None) -> str | None:
    """``"json"``, ``"html"`` (versioned type), ``"html-legacy"`` (text/html), or None (406).

    No header, or only wildcards, means HTML (what pip and browsers expect). Among equal q-values
    the server prefers JSON, then versioned HTML, then text/html.
    """
    if not accept or not accept.strip():
        return "html-legacy"
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            k, _, v = f.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v.strip())
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        candidates: list[tuple[int, str]] = []
        if media in _JSON:
            candidates.append((3, _JSON[media]))
        elif media in _HTML:
            candidates.append((2 if _HTML[media] == "html" else 1, _HTML[media]))
        elif media in ("*/*", "text/*", "application/*"):
            candidates.append((0, "html-legacy"))
        for rank, kind in candidates:
            key = (q, rank, kind)
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else None


def content_type(kind: str) -> str:
    if kind == "json":
        return JSON_V1
    if kind == "html":
        return HTML_V1
    return "text/html; charset=utf-8"


__all__ = ["HTML_V1", "JSON_V1", "choose", "content_type"]
