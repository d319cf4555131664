"""One redaction function for every URL and line kea prints.

``redact_url`` hides userinfo (``user:****@``, a username alone as ``****@`` since it may be a
token) and the values of query parameters that carry signatures or tokens. ``redact_text`` applies
the same to every URL found in free text, and hides ``Authorization``-style header values.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

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

_URL_RE = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>`]+""")
_HEADER_RE = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie)(\s*[:=]\s*)([^\r\n]+)"
)


def redact_url(url: str) -> str:
    """Return ``url`` with userinfo and secret query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_unparsable(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}" if user else f"{MASK}@{hostport}"
        else:
            netloc = f"{MASK}@{hostport}"
    query = parts.query
    if query:
        query = _redact_query(query)
    fragment = parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_query(query: str) -> str:
    out = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and value and name.lower() in SECRET_PARAMS:
            out.append(f"{name}={MASK}")
        else:
            out.append(pair)
    return "&".join(out)


def _redact_unparsable(text: str) -> str:
    # Not a URL urllib can split: still hide anything between "//" and "@".
    return re.sub(r"(//)[^/@\s]*@", rf"\1{MASK}@", text)


def redact_text(text: str) -> str:
    """Redact every URL and every credential header value found in ``text``."""
    if not text:
        return text
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    return _HEADER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


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

__all__ = ["MASK", "query_has_signature", "redact_text", "redact_url"]
