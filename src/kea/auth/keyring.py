"""Passwords from the ``keyring`` executable (``--keyring-provider subprocess``).

kea runs ``keyring get <service> <username>`` (found on the run's ``PATH``), at most once per
(service, username) per run: results, and failures, are remembered for the run, and concurrent
askers for the same pair share one call. A keyring that hangs is killed after a time-out, warned
about once, and not asked again in this run; a missing executable is warned about once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping

import kea.log
from kea.auth.credentials import Credentials
from kea.auth.redact import redact_url

log = kea.log.get("kea.auth.keyring")

DEFAULT_TIMEOUT = 10.0

_Key = tuple[str, str | None]


class SubprocessKeyring:
    """Asks the ``keyring`` command line tool, caching every answer for the run."""

    def __init__(self, env: Mapping[str, str], timeout: float | None = None) -> None:
        self._env = dict(env)
        if timeout is None:
            try:
                timeout = float(self._env.get("KEA_KEYRING_TIMEOUT") or DEFAULT_TIMEOUT)
            except ValueError:
                timeout = DEFAULT_TIMEOUT
        self.timeout = timeout
        self._results: dict[_Key, asyncio.Task[Credentials | None]] = {}
        self._disabled_reason: str | None = None
        self.calls = 0  # subprocesses actually started (for tests and -vv)

    @property
    def available(self) -> bool:
        return self._disabled_reason is None

    def _executable(self) -> str | None:
        return shutil.which("keyring", path=self._env.get("PATH", os.defpath))

    async def get_password(self, service: str, username: str) -> str | None:
        """The password for (service, username), or None."""
        creds = await self._lookup(service, username)
        return creds.password if creds else None

    async def get_credentials(self, service: str) -> Credentials | None:
        """Username and password for ``service`` (``keyring --mode creds get``), or None."""
        return await self._lookup(service, None)

    async def _lookup(self, service: str, username: str | None) -> Credentials | None:
        # One task per (service, username), shared by every asker: an asker that is cancelled
        # (a sibling request failed) stops waiting, the call itself goes on for the others.
        key = (service, username)
        task = self._results.get(key)
        if task is None:
            task = asyncio.ensure_future(self._call(service, username))
            self._results[key] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the loop is shutting down: the next run asks again
                self._results.pop(key, None)
            raise

    async def _call(self, service: str, username: str | None) -> Credentials | None:
        if self._disabled_reason is not None:
            return None
        exe = self._executable()
        if exe is None:
            self._disable("no `keyring` executable on PATH; going on without keyring")
            return None
        args = (
            [exe, "get", service, username]
            if username is not None
            else [exe, "--mode", "creds", "get", service]
        )
        shown = redact_url(service)
        log.log(5, "keyring: asking for service %s user %s", shown, "****" if username else "-")
        self.calls += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
            )
        except OSError as e:
            self._disable(f"cannot run keyring: {e.strerror or e}; going on without keyring")
            return None
        try:
            out, _err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            await proc.wait()
            self._disable(
                f"keyring did not answer within {self.timeout:g}s; going on without keyring"
            )
            return None
        if proc.returncode != 0:
            log.debug("keyring: nothing for service %s (exit %s)", shown, proc.returncode)
            return None
        text = out.decode("utf-8", "replace")
        if username is not None:
            password = text[:-1] if text.endswith("\n") else text
            password = password.rstrip("\r")
            if not password:
                return None
            return Credentials(username, password)
        lines = text.splitlines()
        if len(lines) < 2 or not lines[0]:
            return None
        return Credentials(lines[0], lines[1])

    def _disable(self, reason: str) -> None:
        self._disabled_reason = reason
        from kea.cli.output import warn

        warn(reason)


__all__ = ["SubprocessKeyring"]
