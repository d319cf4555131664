"""What a request gives back: ``Response`` (read), ``Stream`` (chunked) and their ``Hop``s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from kea.auth.redact import redact_url
from kea.auth.store import Decision
from kea.auth.urls import origin_of
from kea.http.errors import (
    ConnectError,
    CredentialsNeeded,
    CredentialsRejected,
    Forbidden,
    HttpError,
    HttpTimeout,
    NotFound,
    ServerError,
    StatusError,
    status_text,
)
from kea.http.retry import RETRY_STATUSES

if TYPE_CHECKING:
    import aiohttp


class Hop(msgspec.Struct, frozen=True):
    """One request/response of a chain, for -v logs and ``kea auth check``.

    ``url`` has no userinfo but may carry a signed query: print it with ``redact_url``.
    """

    url: str
    status: int
    source: str  # where this request's credentials came from ("none" when it carried none)
    sent_credentials: bool
    origin_changed: bool = False  # this hop's origin differs from the previous hop's
    dropped: str | None = None  # origin whose credentials were dropped before this hop
    retry: bool = False  # the one retry after a 401
    reason: str | None = None  # why nothing was sent (downgrade, authenticate = never, ...)
    attempts: int = 1  # requests made for this hop (more after 5xx/429/connect retries)
    elapsed: float = 0.0

    @property
    def origin(self) -> str:
        return str(origin_of(self.url))

    def __repr__(self) -> str:
        return (
            f"Hop({self.status} {redact_url(self.url)} credentials={self.source}"
            f"{' retry' if self.retry else ''}{' origin-changed' if self.origin_changed else ''})"
        )


class Outcome(msgspec.Struct):
    """The last response of a chain (not yet read) and what led to it."""

    raw: aiohttp.ClientResponse
    url: str
    hops: list[Hop]
    decision: Decision
    downgraded: bool


def status_error(
    status: int, url: str, decision: Decision, downgraded: bool, hint_for: str
) -> HttpError | None:
    if status < 400:
        return None
    shown = redact_url(url)
    text = status_text(status)
    if status in (401, 403) and decision.sent:
        return CredentialsRejected(
            f"{shown} rejected the credentials from {decision.source} ({text})",
            hint=f"check the username and password kea took from {decision.source}",
            url=url,
            status=status,
            source=decision.source,
        )
    if status == 401:
        if downgraded and decision.reason:
            hint = (
                "kea sends no credentials over http after a redirect from https; use an https"
                " URL, or configure this http:// URL as an index yourself"
            )
        else:
            hint = hint_for
        return CredentialsNeeded(
            f"{shown} needs credentials ({text})", hint=hint, url=url, status=status
        )
    if status == 403:
        return Forbidden(f"{shown}: access denied ({text})", hint=hint_for, url=url, status=status)
    if status in (404, 410):
        return NotFound(f"{shown}: not found ({text})", url=url, status=status)
    if status in RETRY_STATUSES or status >= 500:
        return ServerError(f"{shown} answered {text}", url=url, status=status)
    return StatusError(f"{shown} answered {text}", url=url, status=status)


class Response(msgspec.Struct):
    """A fully read response. ``url`` is the final URL of the chain (userinfo removed): resolve
    relative links against it."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes
    hops: list[Hop] = msgspec.field(default_factory=list)
    error: HttpError | None = None

    def __repr__(self) -> str:
        # Never the headers (Set-Cookie) or a signed query: a repr ends up in tracebacks.
        return (
            f"Response({self.status} {redact_url(self.url)}, {len(self.body)} bytes,"
            f" {len(self.hops)} hops)"
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def text(self, encoding: str | None = None) -> str:
        if encoding is None:
            ct = self.headers.get("Content-Type", "")
            for part in ct.split(";")[1:]:
                k, _, v = part.strip().partition("=")
                if k.lower() == "charset" and v:
                    encoding = v.strip('"')
        try:
            return self.body.decode(encoding or "utf-8", "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def raise_for_status(self) -> None:
        """Raise the redacted KeaError for a non-2xx/3xx final status (with hints)."""
        if self.error is not None:
            raise self.error


class Stream:
    """A response whose body is read chunk by chunk (``iter_chunks``)."""

    def __init__(self, outcome: Outcome, error: HttpError | None) -> None:
        self._raw = outcome.raw
        self.status: int = outcome.raw.status
        self.url = outcome.url
        self.headers: Mapping[str, str] = outcome.raw.headers
        self.hops = outcome.hops
        self.error = error

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise self.error

    async def iter_chunks(self, size: int = 256 * 1024) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._raw.content.iter_chunked(size):
                yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise ConnectError(
                f"download of {redact_url(self.url)} broke off: {describe(e)}", url=self.url
            ) from None
        except TimeoutError:
            raise HttpTimeout(
                f"download of {redact_url(self.url)} timed out", url=self.url
            ) from None

    async def read(self) -> bytes:
        return b"".join([c async for c in self.iter_chunks()])


def describe(e: BaseException) -> str:
    """A short reason for a network failure (``Connection refused``), without addresses."""
    import os

    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, OSError):
        if os_error.errno:
            try:
                return os.strerror(os_error.errno)
            except ValueError:
                pass
        if os_error.strerror:
            return os_error.strerror
    text = str(e) or type(e).__name__
    return text.splitlines()[0] if text else type(e).__name__


__all__ = ["Hop", "Response", "Stream", "status_error"]
