"""URL facts credentials depend on: origins, userinfo, index roots and "under an index".

Every function parses with ``urllib.parse.urlsplit`` and takes the host after the *last* ``@`` of
the authority, so ``http://a.example:@evil.example/`` is a URL for ``evil.example`` with the
username ``a.example`` (what a browser and curl do), never a URL for ``a.example``.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from kea.auth.redact import redact_url
from kea.errors import UsageError

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(msgspec.Struct, frozen=True):
    """(scheme, host, port) with the default port filled in; host lower-cased."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


class SplitURL(msgspec.Struct, frozen=True):
    """A URL with its userinfo taken out: ``url`` is safe to send, the secret parts are apart.
    ``repr`` shows neither them nor a signed query."""

    url: str
    username: str | None
    password: str | None

    def __repr__(self) -> str:
        return (
            f"SplitURL({redact_url(self.url)!r}, userinfo={'****' if self.has_userinfo else None})"
        )

    @property
    def has_userinfo(self) -> bool:
        return self.username is not None or self.password is not None


@lru_cache(maxsize=4096)
def split_userinfo(url: str) -> SplitURL:
    """Remove userinfo from ``url``; username/password are percent-decoded.

    ``https://u:p@h/`` → (``https://h/``, ``u``, ``p``); ``https://tok@h/`` → (…, ``tok``, None);
    ``https://u:@h/`` → (…, ``u``, ``""``).
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # its text may quote the netloc, userinfo and all
        raise UsageError(f"invalid URL {redact_url(url)}") from None
    if "@" not in parts.netloc:
        return SplitURL(url, None, None)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return SplitURL(clean, unquote(user), unquote(password) if sep else None)


@lru_cache(maxsize=4096)
def origin_of(url: str) -> Origin:
    """The origin of an http(s) URL; UsageError when it has no host or a bad port."""
    try:
        parts = urlsplit(url)
    except ValueError:  # its text may quote the netloc, userinfo and all
        raise UsageError(f"invalid URL {redact_url(url)}") from None
    try:
        port = parts.port
    except ValueError:  # its text quotes the "port": part of a password with a "/" in it?
        raise UsageError(
            f"invalid URL {redact_url(url)}: its port is not a number from 0 to 65535",
            hint="a password or token with /, ?, # or @ in it is written percent-encoded "
            "(%2F, %3F, %23, %40)",
        ) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host:
        raise UsageError(f"URL {redact_url(url)} has no host")
    if port is None:
        port = DEFAULT_PORTS.get(scheme, 0)
    return Origin(scheme, host, port)


def host_of(url: str) -> str:
    """The lower-cased host of ``url`` (brackets of IPv6 literals removed), or ``""``."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def hostport_of(url: str) -> str:
    """``host`` or ``host:port`` as written in the URL (port only when explicit)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def index_root(index_url: str) -> str:
    """The index URL without userinfo, query, a trailing ``/simple`` or ``/+simple`` segment,
    and without a trailing slash: ``https://h/api/pypi/x/simple/`` → ``https://h/api/pypi/x``."""
    clean = split_userinfo(index_url).url
    parts = urlsplit(clean)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in ("simple", "+simple"):
        path = head
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path.rstrip("/"), "", ""))


def path_as_sent(url: str) -> str:
    """``url`` with its path as the HTTP client (aiohttp's yarl) sends it: percent-escapes of
    unreserved characters decoded (``%61`` is ``a``, ``%2e`` is ``.``), the others in upper
    case, then ``.`` and ``..`` segments resolved (RFC 3986, 6.2.2 and 5.2.4). Credentials are
    chosen for the path the server will see, not for ``/b/../a/`` or ``/%62/`` as written. The
    rest of the URL is kept as it is; a URL whose path needs none of this is returned as is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    path = parts.path
    if "." not in path and "%" not in path:
        return url
    new = _ESCAPE.sub(_unescape_unreserved, path) if "%" in path else path
    segments = new.split("/")
    if any(seg in (".", "..") for seg in segments):
        out: list[str] = []
        last = len(segments) - 1
        for i, seg in enumerate(segments):
            if seg == ".." and len(out) > 1:
                out.pop()
            if seg in (".", ".."):
                if i == last:
                    out.append("")  # "/a/b/.." is "/a/": the directory
                continue
            out.append(seg)
        new = "/".join(out)
    if new == path:
        return url
    start = url.index("//") + 2 + len(parts.netloc) if parts.netloc else url.index(path)
    return url[:start] + new + url[start + len(path) :]


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def _unescape_unreserved(m: re.Match[str]) -> str:
    char = chr(int(m.group(1), 16))
    return char if char in _UNRESERVED else "%" + m.group(1).upper()


def path_under(path: str, prefix: str) -> bool:
    """True when ``path`` starts with ``prefix`` at a segment boundary.

    ``/simple`` covers ``/simple`` and ``/simple/x``, never ``/simpleevil``; ``""`` and ``/``
    cover everything.
    """
    prefix = prefix.rstrip("/")
    if not prefix:
        return True
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or path[len(prefix)] == "/"


def is_under(url: str, root: str) -> bool:
    """True when ``url`` has the origin of ``root`` and its path lies under root's path."""
    try:
        if origin_of(url) != origin_of(root):
            return False
    except UsageError:
        return False
    return path_under(urlsplit(url).path or "/", urlsplit(root).path)


def scheme_of(url: str) -> str:
    return urlsplit(url).scheme.lower()


__all__ = [
    "Origin",
    "SplitURL",
    "host_of",
    "hostport_of",
    "index_root",
    "is_under",
    "origin_of",
    "path_under",
    "scheme_of",
    "split_userinfo",
]
