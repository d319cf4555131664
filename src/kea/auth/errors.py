"""Credential failures that happen before any request is sent."""

from __future__ import annotations

from kea.errors import KeaError


class CredentialsRequired(KeaError):
    """An index with ``authenticate = "always"`` and no credentials found for a URL."""

    def __init__(self, message: str, hint: str | None = None, *, url: str = "") -> None:
        super().__init__(message, hint)
        self.url = url


__all__ = ["CredentialsRequired"]
