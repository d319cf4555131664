"""PEP 503 HTML pages: project pages (file links) and the root project list.

A fast path tokenizes ``<a>`` and ``<base>`` tags with a quote-aware regex (attribute values may
hold a raw ``>``, as some servers write ``data-requires-python=">=3.8"``); anything that looks
unusual (comments, CDATA, scripts) goes through ``html.parser`` instead. Attribute values are
HTML-unescaped. Relative links are resolved against ``<base href>`` if any, else the final URL of
the redirect chain.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from kea.auth.redact import redact_url
from kea.errors import KeaError
from kea.index.models import DistFile, ProjectList, ProjectPage, normalize_name

_TAG_RE = re.compile(r"""<(a|base)\b((?:[^>"']|"[^"]*"|'[^']*')*)>""", re.IGNORECASE | re.DOTALL)
_A_TEXT_RE = re.compile(r"([^<]*)</a\s*>", re.IGNORECASE)
_ATTR_RE = re.compile(
    r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""", re.DOTALL
)
_TRICKY_RE = re.compile(r"<!--|<!\[CDATA\[|<script|<textarea", re.IGNORECASE)
_FORM_RE = re.compile(r"<form\b|<input\b[^>]*type\s*=\s*[\"']?password", re.IGNORECASE)

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar", ".egg")
HASH_NAMES = frozenset(
    {"sha256", "sha384", "sha512", "sha224", "sha1", "md5", "blake2b", "blake2s", "sha3_256"}
)


class _Anchor:
    __slots__ = ("attrs", "text")

    def __init__(self, attrs: dict[str, str | None], text: str) -> None:
        self.attrs = attrs
        self.text = text


def _parse_attrs(raw: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for m in _ATTR_RE.finditer(raw):
        name = m.group(1).lower()
        if name in out:
            continue
        if m.group(2) is not None:
            value: str | None = m.group(2)
        elif m.group(3) is not None:
            value = m.group(3)
        else:
            value = m.group(4)
        if value is not None and "&" in value:
            value = html.unescape(value)
        out[name] = value
    return out


class _Joiner:
    """``urljoin`` against one base, memoized per link directory (pages repeat it per file)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._dirs: dict[str, str] = {}

    def __call__(self, href: str) -> str:
        head, slash, tail = href.rpartition("/")
        if not slash or "?" in href or tail in ("", ".", "..") or ":" in head.split("/", 1)[0]:
            return urljoin(self.base, href)
        directory = self._dirs.get(head)
        if directory is None:
            directory = urljoin(self.base, head + "/")
            self._dirs[head] = directory
        return directory + tail


class _StdlibCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[_Anchor] = []
        self.base: str | None = None
        self._current: _Anchor | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = _Anchor(dict(attrs), "")
            self.anchors.append(self._current)
        elif tag == "base" and self.base is None:
            href = dict(attrs).get("href")
            if href:
                self.base = href

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self._current = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.text += data


def _collect(text: str) -> tuple[list[_Anchor], str | None]:
    """All anchors (attributes + text) and the first ``<base href>`` of a page."""
    if _TRICKY_RE.search(text):
        parser = _StdlibCollector()
        parser.feed(text)
        parser.close()
        return parser.anchors, parser.base
    anchors: list[_Anchor] = []
    base: str | None = None
    for m in _TAG_RE.finditer(text):
        attrs = _parse_attrs(m.group(2))
        if m.group(1).lower() == "base":
            if base is None and attrs.get("href"):
                base = attrs["href"]
            continue
        tm = _A_TEXT_RE.match(text, m.end())
        anchors.append(_Anchor(attrs, html.unescape(tm.group(1)) if tm else ""))
    return anchors, base


def _decode(body: bytes | str, charset: str | None) -> str:
    if isinstance(body, str):
        return body
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        return body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:512].lower()
    return head.startswith("<") and ("<a" in text.lower() or "<html" in head or "<!doctype" in head)


def _split_hash_fragment(url: str) -> tuple[str, dict[str, str]]:
    base, sep, fragment = url.partition("#")
    hashes: dict[str, str] = {}
    if sep:
        for part in fragment.split("&"):
            name, eq, value = part.partition("=")
            name = name.strip().lower()
            if eq and name in HASH_NAMES and re.fullmatch(r"[0-9A-Fa-f]+", value.strip()):
                hashes[name] = value.strip().lower()
    return base, hashes


def parse_metadata_attr(value: str | None) -> bool | dict[str, str]:
    """``data-core-metadata``: "true"/"" → True; "sha256=<hex>" → hashes; "false" → False."""
    if value is None:
        return True
    value = value.strip()
    if value.lower() in ("", "true"):
        return True
    if value.lower() == "false":
        return False
    name, eq, digest = value.partition("=")
    name = name.strip().lower()
    if eq and name in HASH_NAMES and re.fullmatch(r"[0-9A-Fa-f]+", digest.strip()):
        return {name: digest.strip().lower()}
    return True


def _filename_of(url: str, text: str) -> str:
    path = urlsplit(url).path if "?" in url else url
    name = path.rsplit("/", 1)[-1]
    if "%" in name:
        name = unquote(name)
    return name or text.strip()


def is_dist_filename(filename: str) -> bool:
    return filename.lower().endswith(DIST_SUFFIXES)


def not_an_index(url: str, why: str) -> KeaError:
    return KeaError(
        f"{redact_url(url)} is not a package index page ({why})",
        hint="check the index URL; a login page or a web UI is not a simple index",
    )


def parse_project_html(
    body: bytes | str,
    url: str,
    *,
    name: str | None = None,
    charset: str | None = None,
    strict: bool = True,
) -> ProjectPage:
    """Parse a PEP 503 project page fetched from ``url`` (the final URL of the redirect chain).

    With ``strict``, a page that is clearly not an index page (a login form, only links to
    non-distribution files) raises a one-line ``KeaError`` naming the redacted URL.
    """
    text = _decode(body, charset)
    stripped = text.lstrip()
    if stripped and not stripped.startswith("<"):
        raise not_an_index(url, "the response is not HTML")
    anchors, base = _collect(text)
    join = _Joiner(_base_url(url, base))
    files: list[DistFile] = []
    others = 0
    for a in anchors:
        href = a.attrs.get("href")
        if not href:
            continue
        href = href.strip()
        try:
            full, hashes = _split_hash_fragment(join(href))
            filename = _filename_of(full, a.text)
        except ValueError:  # an href no URL parser takes (``http://[::1:x/``): not a file
            others += 1
            continue
        if not is_dist_filename(filename):
            others += 1
            continue
        attrs = a.attrs
        if "data-yanked" in attrs:
            reason = attrs["data-yanked"]
            yanked: bool | str = reason if reason else True
        else:
            yanked = False
        core: bool | dict[str, str] = False
        if "data-core-metadata" in attrs:
            core = parse_metadata_attr(attrs["data-core-metadata"])
        elif "data-dist-info-metadata" in attrs:
            core = parse_metadata_attr(attrs["data-dist-info-metadata"])
        rp = attrs.get("data-requires-python")
        files.append(
            DistFile(
                filename=filename,
                url=full,
                hashes=hashes,
                requires_python=rp.strip() if rp and rp.strip() else None,
                yanked=yanked,
                core_metadata=core,
            )
        )
    if strict and not files:
        if _FORM_RE.search(text):
            raise not_an_index(url, "it is an HTML form, perhaps a login page")
        if others:
            raise not_an_index(url, "it has links but none to a distribution file")
    project = normalize_name(name) if name else _name_from_url(url)
    return ProjectPage(name=project, url=url, files=files)


def _base_url(url: str, base: str | None) -> str:
    """Where a page's relative links point from: its ``<base href>``, unless that is not a URL
    the parser takes (then the page's own URL, as a browser does)."""
    if not base:
        return url
    try:
        return urljoin(url, base)
    except ValueError:
        return url


def _name_from_url(url: str) -> str:
    parts = [p for p in urlsplit(url).path.split("/") if p]
    return normalize_name(unquote(parts[-1])) if parts else ""


def parse_root_html(body: bytes | str, url: str, *, charset: str | None = None) -> ProjectList:
    """Parse the root ``/simple/`` page: the anchor texts are the project names."""
    text = _decode(body, charset)
    anchors, _ = _collect(text)
    names = [a.text.strip() for a in anchors if a.text.strip()]
    if not names and _FORM_RE.search(text):
        raise not_an_index(url, "it is an HTML form, perhaps a login page")
    return ProjectList(url=url, names=names)


def links_in_html(body: bytes | str, url: str, *, charset: str | None = None) -> Iterable[str]:
    """Absolute hrefs of every anchor of a page (for find-links pages)."""
    text = _decode(body, charset)
    anchors, base = _collect(text)
    base_url = _base_url(url, base)
    for a in anchors:
        href = a.attrs.get("href")
        if href:
            try:
                yield urljoin(base_url, href.strip())
            except ValueError:  # not a URL: not a link to follow
                continue
