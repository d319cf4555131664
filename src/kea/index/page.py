"""Content negotiation for Simple API pages: the ``Accept`` header and the parser dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kea.index.models import ProjectList, ProjectPage

# The parsers (html.parser, html.entities, ...) are imported by the functions that parse: a
# resolve answered from the cache reads parsed pages and never needs them.

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"

# JSON first, then the versioned HTML type, then plain HTML as the last resort.
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"

_JSON_TYPES = frozenset({JSON_TYPE, "application/vnd.pypi.simple.latest+json", "application/json"})
_HTML_TYPES = frozenset(
    {HTML_TYPE, "application/vnd.pypi.simple.latest+html", "text/html", "application/xhtml+xml"}
)


def split_content_type(value: str | None) -> tuple[str, str | None]:
    """(media type lowercased, charset or None)."""
    if not value:
        return "", None
    parts = value.split(";")
    media = parts[0].strip().lower()
    charset = None
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset":
            charset = v.strip().strip('"') or None
    return media, charset


def _kind(body: bytes, content_type: str | None, url: str) -> tuple[str, str | None]:
    media, charset = split_content_type(content_type)
    simple = media.startswith("application/vnd.pypi.simple")
    if media in _JSON_TYPES or (simple and media.endswith("json")):
        return "json", charset
    if media in _HTML_TYPES or simple:
        return "html", charset
    # Missing or generic content type: sniff.
    from kea.index.html import not_an_index

    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return "json", charset
    if head.startswith(b"<") or not head:
        return "html", charset
    raise not_an_index(url, f"unexpected content type {media or 'none'!r}")


def parse_project_page(
    body: bytes,
    url: str,
    content_type: str | None,
    *,
    name: str | None = None,
) -> ProjectPage:
    """Parse a project page by its ``Content-Type`` (sniffing the body when it is missing)."""
    kind, charset = _kind(body, content_type, url)
    if kind == "json":
        from kea.index.simple_json import parse_project_json

        return parse_project_json(body, url, name=name)
    from kea.index.html import parse_project_html

    return parse_project_html(body, url, name=name, charset=charset)


def parse_root_page(body: bytes, url: str, content_type: str | None) -> ProjectList:
    kind, charset = _kind(body, content_type, url)
    if kind == "json":
        from kea.index.simple_json import parse_root_json

        return parse_root_json(body, url)
    from kea.index.html import parse_root_html

    return parse_root_html(body, url, charset=charset)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on any mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for k, v in headers.items():
        if k.lower() == lower:
            return v
    return None


__all__ = [
    "ACCEPT",
    "HTML_TYPE",
    "JSON_TYPE",
    "header",
    "parse_project_page",
    "parse_root_page",
    "split_content_type",
]
