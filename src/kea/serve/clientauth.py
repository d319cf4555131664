"""Who a client is: htpasswd users (bcrypt, apr1, through libpass) and tokens.

htpasswd entries are verified in the formats Apache's htpasswd writes on Unix (bcrypt, apr1,
sha256/sha512 crypt, {SHA}, crypt): never as plaintext, which libpass's htpasswd context would
fall back to for a hash it does not know (a yescrypt ``$y$`` entry then let in whoever sent the
hash itself as the password). A line that is not ``user:hash`` is skipped with a warning; it
made the whole file unreadable, locking every user out without a word.

A token file has one ``USER TOKEN`` pair per line (``#`` comments). A token is accepted as
``Authorization: Bearer TOKEN`` or as the password of Basic credentials (user ``__token__`` or the
token's user). Verified Basic credentials are remembered (by a keyed digest, never the password)
so bcrypt runs once per user and password, not once per request. Both files are re-read when
they change.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
from pathlib import Path
from typing import Any

from kea.serve.config import Route

log = logging.getLogger("kea.serve")


class ClientAuth:
    def __init__(self, htpasswd: Path | None, tokens_file: Path | None) -> None:
        self.htpasswd_path = htpasswd
        self.tokens_path = tokens_file
        self._ht: Any = None
        self._ht_stamp: tuple[int, int] | None = None
        self._tokens: dict[str, str] = {}  # token -> user
        self._tokens_stamp: tuple[int, int] | None = None
        self._key = secrets.token_bytes(32)
        self._good: dict[bytes, str] = {}
        self._lock = threading.Lock()
        self._warned = False
        self._warned_users: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self.htpasswd_path is not None or self.tokens_path is not None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _htpasswd(self) -> Any:
        if self.htpasswd_path is None:
            return None
        stamp = self._stamp(self.htpasswd_path)
        if stamp != self._ht_stamp:
            self._ht, problems = load_htpasswd(self.htpasswd_path)
            for problem in problems:
                log.warning("%s", problem)
            self._ht_stamp = stamp
            self._warned_users.clear()
            with self._lock:
                self._good.clear()
        return self._ht

    def _token_map(self) -> dict[str, str]:
        if self.tokens_path is None:
            return {}
        stamp = self._stamp(self.tokens_path)
        if stamp != self._tokens_stamp:
            tokens: dict[str, str] = {}
            try:
                text = self.tokens_path.read_text(encoding="utf-8")
            except OSError:
                text = ""
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, _, token = line.partition(" ")
                if token.strip():
                    tokens[token.strip()] = user
            self._tokens = tokens
            self._tokens_stamp = stamp
            with self._lock:
                self._good.clear()
        return self._tokens

    def _token_user(self, token: str) -> str | None:
        for known, user in self._token_map().items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None

    def _check_password(self, user: str, password: str) -> bool:
        ht = self._htpasswd()
        if ht is None:
            return False
        try:
            if user not in ht.users():
                self._equal_cost(ht, password)
                return False
            return bool(ht.check_password(user, password))
        except (ValueError, TypeError):
            # a hash none of the formats knows (UnknownHashError is a ValueError): refused
            if user not in self._warned_users:
                self._warned_users.add(user)
                log.warning("%s's htpasswd entry is in a format kea serve cannot verify", user)
            return False
        except Exception as e:  # passlib's MissingBackendError: bcrypt entries, no bcrypt
            if not self._warned:
                self._warned = True
                log.error(
                    "cannot verify %s's htpasswd entry: %s (install bcrypt for bcrypt entries)",
                    user,
                    type(e).__name__,
                )
            return False

    @staticmethod
    def _equal_cost(ht: Any, password: str) -> None:
        """Verify ``password`` against some entry and discard the answer: an unknown user costs
        as much as a known one, so timing does not reveal which users exist."""
        users = ht.users()
        if not users:
            return
        try:
            ht.context.verify(password, ht.get_hash(users[0]))
        except (ValueError, TypeError):
            pass

    async def identify(self, authorization: str | None) -> tuple[str | None, bool]:
        """(user or None, whether credentials were presented)."""
        if not authorization:
            return None, False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return self._token_user(value), True
        if scheme.lower() != "basic":
            return None, True
        try:
            raw = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, True
        user, sep, password = raw.partition(":")
        if not sep:
            return None, True
        digest = hmac.new(self._key, raw.encode(), hashlib.sha256).digest()
        self._htpasswd()
        self._token_map()  # refresh both (clears the memo when a file changed)
        with self._lock:
            known = self._good.get(digest)
        if known is not None:
            return known, True
        token_user = self._token_user(password)
        if token_user is not None and user in ("__token__", token_user, ""):
            found: str | None = token_user
        elif await asyncio.to_thread(self._check_password, user, password):
            found = user
        else:
            found = None
        if found is not None:
            with self._lock:
                if len(self._good) > 10000:
                    self._good.clear()
                self._good[digest] = found
        return found, True


# What Apache's htpasswd writes on Unix; libpass's own htpasswd context adds "plaintext".
_SCHEMES = ("bcrypt", "apr_md5_crypt", "sha256_crypt", "sha512_crypt", "ldap_sha1", "des_crypt")


def load_htpasswd(path: Path) -> tuple[Any, list[str]]:
    """The htpasswd file at ``path`` (None when unreadable) and what is wrong with it, a line
    each: lines that are not ``user:hash`` (skipped) and entries in no format kea serve
    verifies (their users cannot log in)."""
    from passlib.apache import HtpasswdFile
    from passlib.context import CryptContext

    try:
        data = path.read_bytes()
    except OSError as e:
        return None, [f"cannot read htpasswd file {path}: {e.strerror}"]
    kept: list[bytes] = []
    skipped: list[str] = []
    for number, line in enumerate(data.splitlines(), 1):
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        user, colon, rest = text.partition(b":")
        hashed = rest.partition(b":")[0]  # fields after the hash: ignored, as Apache does
        try:
            user.decode("utf-8")
        except UnicodeDecodeError:
            user = b""
        if not colon or not user or not hashed:
            skipped.append(str(number))
            continue
        kept.append(user + b":" + hashed)
    problems = []
    if skipped:
        problems.append(
            f"htpasswd file {path}: line {', '.join(skipped)} is not user:hash in UTF-8 (skipped)"
        )
    context = CryptContext(schemes=list(_SCHEMES))
    try:
        ht = HtpasswdFile.from_string(b"\n".join(kept) + b"\n", context=context)
    except (ValueError, UnicodeDecodeError) as e:
        return None, [*problems, f"cannot read htpasswd file {path}: {e}"]
    for user in ht.users():
        if context.identify(ht.get_hash(user), required=False) is None:
            problems.append(
                f"htpasswd file {path}: {user}'s entry is in a format kea serve cannot verify"
                " (bcrypt, apr1, sha256/sha512 crypt, {SHA} and crypt are)"
            )
    return ht, problems


def allowed(users: tuple[str, ...], user: str | None) -> bool:
    if "*" in users:
        return True
    if user is None:
        return False
    return "authenticated" in users or user in users


def can_read(route: Route, user: str | None) -> bool:
    return allowed(route.read, user)


def can_write(route: Route, user: str | None) -> bool:
    return bool(route.write) and allowed(route.write, user)


__all__ = ["ClientAuth", "allowed", "can_read", "can_write", "load_htpasswd"]
