"""Every way a request can fail, as one-line, redacted ``KeaError`` subclasses.

Raisers pass URLs through ``redact_url`` before building the message; attributes keep the
unredacted URL (without userinfo) for programs that need it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from kea.auth.errors import CredentialsRequired
from kea.auth.redact import redact_url
from kea.errors import KeaError


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_text(status: int) -> str:
    phrase = reason_phrase(status)
    return f"{status} {phrase}" if phrase else str(status)


class HttpError(KeaError):
    """Base of every kea.http failure; ``url`` is the URL concerned (userinfo removed)."""

    def __init__(self, message: str, hint: str | None = None, *, url: str = "") -> None:
        super().__init__(message, hint)
        self.url = url
        self.hops: list[Any] = []  # the hops made before the failure (kea.http.response.Hop)


class OfflineError(HttpError):
    """A request in a run that must not touch the network (``--offline``)."""


class ConnectError(HttpError):
    """Could not connect (refused, unreachable, DNS failure), after retries."""


class HttpTimeout(HttpError):
    """A connect or read time-out, after retries."""


class TooLarge(HttpError):
    """A response body longer than the caller takes (``HttpClient.get``'s ``max_bytes``)."""


class TLSError(HttpError):
    """Certificate verification (or another TLS handshake failure) for a host."""


class ProxyError(HttpError):
    """The proxy refused the request or its credentials."""


class RedirectError(HttpError):
    """A redirect kea cannot or will not follow."""


class TooManyRedirects(RedirectError):
    def __init__(self, chain: list[str], limit: int) -> None:
        shown = " -> ".join(redact_url(u) for u in chain)
        super().__init__(
            f"too many redirects ({limit} hops, still redirecting): {shown}",
            hint="the server redirects in a loop; check the index URL",
            url=chain[0] if chain else "",
        )
        self.chain = chain


class MissingLocation(RedirectError):
    def __init__(self, url: str, status: int) -> None:
        super().__init__(
            f"{redact_url(url)} answered {status_text(status)} without a Location header", url=url
        )
        self.status = status


class UnsupportedRedirect(RedirectError):
    def __init__(self, url: str, location: str, *, invalid: bool = False) -> None:
        scheme = location.split(":", 1)[0] if ":" in location else location
        why = (
            "not a URL kea can follow (its host or port does not parse)"
            if invalid
            else f"only http and https redirects are followed ({scheme!r} is not)"
        )
        super().__init__(f"{redact_url(url)} redirected to {redact_url(location)}: {why}", url=url)
        self.location = location


class StatusError(HttpError):
    """A final response that is not a success; ``status`` is its code."""

    def __init__(
        self, message: str, hint: str | None = None, *, url: str = "", status: int = 0
    ) -> None:
        super().__init__(message, hint, url=url)
        self.status = status


class NotFound(StatusError):
    """404/410: for an index, "try the next one"."""


class AuthError(StatusError):
    """401/403: the search across indexes stops here (index strategy ``first-index``)."""


class CredentialsNeeded(AuthError):
    """401 on a request sent without credentials, and none found anywhere."""


class CredentialsRejected(AuthError):
    """401/403 on a request that carried credentials; ``source`` names where they came from."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        url: str = "",
        status: int = 0,
        source: str = "",
    ) -> None:
        super().__init__(message, hint, url=url, status=status)
        self.source = source


class Forbidden(AuthError):
    """403 on a request sent without credentials."""


class ServerError(StatusError):
    """5xx/429 after retries."""


__all__ = [
    "AuthError",
    "ConnectError",
    "CredentialsNeeded",
    "CredentialsRejected",
    "CredentialsRequired",
    "Forbidden",
    "HttpError",
    "HttpTimeout",
    "MissingLocation",
    "NotFound",
    "OfflineError",
    "ProxyError",
    "RedirectError",
    "ServerError",
    "StatusError",
    "TLSError",
    "TooManyRedirects",
    "UnsupportedRedirect",
    "reason_phrase",
    "status_text",
]
