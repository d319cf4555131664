"""A username and an optional password, and the ``Authorization: Basic`` value they make."""

from __future__ import annotations

import base64

import msgspec


class Credentials(msgspec.Struct, frozen=True):
    """HTTP basic credentials. A username alone is a token and is sent as ``user:``.

    ``repr`` never shows the password, nor a username that stands alone (a token).
    """

    username: str
    password: str | None = None

    def __repr__(self) -> str:
        # A username without a password is a token: shown as masked as the password.
        user = self.username if self.password else "****"
        return f"Credentials(username={user!r}, password=****)"

    @property
    def complete(self) -> bool:
        return self.password is not None

    def basic_header(self) -> str:
        """The value of an ``Authorization`` header: ``Basic base64(user:password)``."""
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def secrets(self) -> list[str]:
        """Strings that must never be printed (for tests and last-line redaction)."""
        out = [self.basic_header().split(" ", 1)[1]]
        if self.password:
            out.append(self.password)
        return out


__all__ = ["Credentials"]
