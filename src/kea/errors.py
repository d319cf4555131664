"""The error type every user-facing failure is raised as.

A ``KeaError`` becomes one ``error:`` line (plus an optional ``hint:`` line) on stderr and a
non-zero exit; it never becomes a traceback. Messages must already be redacted by the raiser
(``kea.auth.redact``) — the CLI redacts once more as a last line of defence.
"""

from __future__ import annotations


class KeaError(Exception):
    """A failure the user can act on: one line, an optional hint, an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(KeaError):
    """Bad command-line or configuration input (exit 2)."""

    exit_code = 2
