"""One redaction function for every URL and line kea prints.

``redact_url`` hides userinfo (``user:****@``, a username alone as ``****@`` since it may be a
token) and the values of query parameters that carry signatures or tokens. ``redact_text`` applies
the same to every URL found in free text, and hides ``Authorization``-style header values.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

MASK = "****"

# Query parameter names (compared case-insensitively) whose values are secrets.
SECRET_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "signature",
        "sig",
        "se_sig",
        "token",
        "access_token",
        "auth",
        "password",
        "passwd",
        "secret",
        "key",
        "api_key",
        "apikey",
        "code",
        "x-ms-signature",
    }
)

# A URL in free text: a scheme, then at least one slash or backslash (``http:/h``, ``http:\\h``
# are mistyped URLs, and may hold userinfo as well as a well-formed one).
_URL_RE = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*:[/\\]+[^\s"'<>`]+""")
_HEADER_RE = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie)(\s*[:=]\s*)([^\r\n]+)"
)
# Where the authority of a mistyped URL starts: after its scheme (if any) and slashes.
_AUTHORITY_START = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:)?[/\\]*")
# A URL of free text cut inside its userinfo by a character that ends URLs there (a quote, a
# backtick, a space): only an authority, no path. ``_cut_userinfo`` decides.
_AUTHORITY_ONLY = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[/\\]+([^/\\?#]*)")
_URL_TAIL = re.compile(r"""[^\s"'<>`]*""")


def redact_url(url: str) -> str:
    """Return ``url`` with userinfo and secret query values masked.

    A well-formed URL keeps its username (``https://u:****@h/``; a username alone becomes
    ``****@``, since it may be a token). Any other text with an ``@`` after its scheme is taken
    for a mistyped URL whose userinfo the parser did not find (``http:/u:p@h``, ``u:p@h/simple``
    without a scheme, a password holding ``/``, ``?`` or ``#``): everything from the start of
    its authority to its last ``@`` is masked. That also masks the path of a rare well-formed
    URL with an ``@`` after its host (``git+https://h/repo@v1``): a safe mistake."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "[" unclosed, a netloc NFKC changes ("u:p＠h")...
        parts = None
    if parts is None or "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        out = _redact_mistyped(url, whole_authority=parts is None)
    else:
        out = _redact_parts(parts)
    # nothing masked: the text as it was (urlunsplit would lower-case a scheme, drop a "?")
    return out if MASK in out else url


def _redact_parts(parts: SplitResult) -> str:
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}" if user else f"{MASK}@{hostport}"
        else:
            netloc = f"{MASK}@{hostport}"
    else:
        host, sep, port = netloc.rpartition(":")
        if sep and port and "]" not in port and not port.isdigit():
            # not a port: the start of a password cut at an unencoded "/", "?" or "#"
            netloc = f"{host}:{MASK}"
    query = parts.query
    if query:
        query = _redact_query(query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_mistyped(url: str, *, whole_authority: bool = False) -> str:
    start = _AUTHORITY_START.match(url).end()  # type: ignore[union-attr]  # always matches
    at = url.rfind("@")
    if at < start:
        if whole_authority:  # no "@" to go by, and no parse: all up to the path goes
            end = min((i for i in (url.find(c, start) for c in "/?#") if i >= 0), default=len(url))
            return f"{url[:start]}{MASK}{url[end:]}" if end > start else url
        return url
    rest = url[at + 1 :]
    # what follows the last "@" is host, path and query: secret query values are masked too
    head, sep, query = rest.partition("?")
    if sep:
        fragment_sep = "#" if "#" in query else ""
        query, _, fragment = query.partition("#")
        rest = f"{head}?{_redact_query(query)}{fragment_sep}{fragment}"
    return f"{url[:start]}{MASK}@{rest}"


def _redact_query(query: str) -> str:
    out = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and value and name.lower() in SECRET_PARAMS:
            out.append(f"{name}={MASK}")
        else:
            out.append(pair)
    return "&".join(out)


def mask_secret_params(url: str) -> str:
    """``url`` with the values of its secret query parameters (``SECRET_PARAMS``) masked and
    nothing else changed: for a URL kept as data (direct_url.json), not shown, where
    ``redact_url``'s guesses about mistyped userinfo would lose a host."""
    head, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hash_sign, fragment = rest.partition("#")
    return f"{head}?{_redact_query(query)}{hash_sign}{fragment}"


def holds_secret(url: str) -> bool:
    """True when ``redact_url`` would mask something in ``url`` (userinfo, a signed query).
    Cheap for the common link (asked of every file of every page kea stores)."""
    authority = url.partition("//")[2].partition("/")[0]
    port = authority.rpartition(":")[2] if ":" in authority else ""
    maybe = "@" in url or "?" in url or (port and not port.isdigit() and "]" not in port)
    return bool(maybe) and redact_url(url) != url


def redact_text(text: str) -> str:
    """Redact every URL and every credential header value found in ``text``.

    A URL ends at a space, a quote or a backtick, which a password may hold unencoded
    (``http://u:pa'ss@h/``): a URL cut so inside its userinfo (``_cut_userinfo``) is taken on to
    the ``@`` that ends it, and masked whole."""
    if not text:
        return text
    out: list[str] = []
    pos = 0
    while (m := _URL_RE.search(text, pos)) is not None:
        end = _cut_userinfo(text, m)
        out.append(text[pos : m.start()])
        out.append(redact_url(text[m.start() : end]))
        pos = end
    out.append(text[pos:])
    return _HEADER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", "".join(out))


def _cut_userinfo(text: str, m: re.Match[str]) -> int:
    """Where the URL that ``m`` found in ``text`` ends: ``m.end()``, or past the last ``@`` of
    its line when the match may have stopped inside its userinfo. That is: the match is an
    authority alone (no path), text follows on its line with an ``@`` in it, and a ``:``
    comes between the authority's start and that ``@`` (``u:pa ss@h``, ``us er:pw@h``,
    ``u:12 34@h``, ``u:p@ss word@h``). The last ``@``, since the password may hold one too.
    Text after a URL that ended with a port (``http://h:8080 ... me:x@y``) is masked as well:
    it cannot be told from a password cut after digits, and a mask is the safe mistake."""
    end = m.end()
    whole = _AUTHORITY_ONLY.fullmatch(m.group(0))
    if whole is None or end == len(text):
        return end
    line_end = text.find("\n", end)
    at = text.rfind("@", end, len(text) if line_end < 0 else line_end)
    if at < 0 or (":" not in whole.group(1) and ":" not in text[end:at]):
        return end
    return _URL_TAIL.match(text, at + 1).end()  # type: ignore[union-attr]  # always matches


def query_has_signature(url: str) -> bool:
    """True when the URL's query carries a signature (pre-signed S3/GCS/Azure links)."""
    query = urlsplit(url).query
    if not query:
        return False
    names = {k.lower() for k, _ in parse_qsl(query, keep_blank_values=True)}
    return bool(names & _SIGNATURE_PARAMS)


_SIGNATURE_PARAMS = frozenset(
    {"x-amz-signature", "x-amz-credential", "x-goog-signature", "x-goog-credential", "sig"}
)

__all__ = [
    "MASK",
    "holds_secret",
    "mask_secret_params",
    "query_has_signature",
    "redact_text",
    "redact_url",
]
