"""What a server received: one ``Seen`` per request, with the Basic credentials decoded."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass


def decode_basic(header: str | None) -> tuple[str | None, str | None]:
    """``Basic dXNlcjpwdw==`` → ("user", "pw"); anything else → (None, None)."""
    if not header:
        return None, None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, _, password = raw.partition(":")
    return user, password


@dataclass
class Seen:
    """One request as a server saw it."""

    server: str  # which server (label), e.g. "files 127.0.0.3:43121"
    method: str
    path: str  # path and query, as sent
    authorization: str | None = None
    proxy_authorization: str | None = None
    cookie: str | None = None
    status: int | None = None  # what the server answered

    @classmethod
    def of(cls, server: str, method: str, path: str, headers: Mapping[str, str]) -> Seen:
        """The request as seen, with its credential headers (names matched in any case)."""
        lower = {k.lower(): v for k, v in headers.items()}
        return cls(
            server=server,
            method=method,
            path=path,
            authorization=lower.get("authorization"),
            proxy_authorization=lower.get("proxy-authorization"),
            cookie=lower.get("cookie"),
        )

    @property
    def user(self) -> str | None:
        return decode_basic(self.authorization)[0]

    @property
    def password(self) -> str | None:
        return decode_basic(self.authorization)[1]

    @property
    def proxy_user(self) -> str | None:
        return decode_basic(self.proxy_authorization)[0]

    def __str__(self) -> str:
        who = self.user if self.authorization else "-"
        return f"{self.server} {self.method} {self.path} user={who} -> {self.status}"


def describe(seen: list[Seen]) -> str:
    """A readable listing for assertion messages (users only, never passwords)."""
    return "\n".join(f"  {s}" for s in seen) or "  (no requests)"
