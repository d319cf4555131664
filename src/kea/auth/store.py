"""Which credentials a request gets, and where they came from: the policy of specs/auth.md.

One ``CredentialStore`` per run, built from Settings. For one request URL it answers a
``Decision``: the credentials to send (or none) and the label of their source (``url``,
``index 'corp' env``, ``index 'corp' url``, ``cache``, ``netrc machine HOST``, ``netrc default``,
``keyring``, ``none``). ``proactive`` is asked before a request is sent; ``reactive`` after a 401
on a request that carried none; ``record_success`` remembers what worked, per index, origin and
path prefix, for the rest of the run (never on disk).

Sources in order (the first complete username+password wins; a username found early is kept and
only its password is looked up later):

1. userinfo of the request URL (or of a redirect's ``Location``, for that hop);
2. for a URL under a configured index: ``KEA_INDEX_<NAME>_USERNAME``/``_PASSWORD``, then the
   index URL's userinfo (explicit: never overridden by netrc or keyring);
3. the run's cache (the same index's, most specific path prefix of the same origin);
4. netrc ``machine`` for the URL's host (first entry wins; with a known username, the first whose
   login matches); netrc ``default`` only reactively and only for a configured index's origin;
5. keyring (when enabled): proactively for a known username without password or an
   ``authenticate = "always"`` index, otherwise after a 401.

Signed URLs (pre-signed S3/GCS/Azure) get no ambient credentials (cache, netrc, keyring). After an
https → http redirect nothing is sent unless the URL is under an index the user configured as
``http://``. ``authenticate = "never"`` sends nothing and looks nothing up.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

import kea.log
from kea.auth.credentials import Credentials
from kea.auth.errors import CredentialsRequired
from kea.auth.keyring import SubprocessKeyring
from kea.auth.netrc import Netrc, load_netrc
from kea.auth.redact import query_has_signature, redact_url
from kea.auth.urls import (
    Origin,
    SplitURL,
    host_of,
    hostport_of,
    index_root,
    origin_of,
    path_as_sent,
    path_under,
    split_userinfo,
)
from kea.errors import UsageError
from kea.settings import Index, Settings

log = kea.log.get("kea.auth")

NONE = "none"


class IndexAuth(msgspec.Struct, frozen=True):
    """A configured index, as far as credentials are concerned. ``repr`` shows no password."""

    index: Index
    url: str  # the configured URL without userinfo
    root: str  # index_root(url): origin + path prefix
    origin: Origin
    root_path: str
    url_user: str | None = None
    url_password: str | None = None
    env_user: str | None = None
    env_password: str | None = None

    def __repr__(self) -> str:
        return f"IndexAuth({self.label}, {redact_url(self.url)!r})"

    @property
    def authenticate(self) -> str:
        return self.index.authenticate

    @property
    def label(self) -> str:
        return f"index '{self.index.name}'" if self.index.name else "index"

    @property
    def env_names(self) -> str | None:
        prefix = self.index.env_prefix
        return f"{prefix}USERNAME/{prefix}PASSWORD" if prefix else None

    def explicit(self) -> tuple[str | None, str | None, str | None]:
        """(username, password, source label) from env then the URL; all None when neither."""
        user, password, source = self.env_user, self.env_password, None
        if user is not None or password is not None:
            source = f"{self.label} env"
        if user is None and self.url_user is not None:
            user = self.url_user
            source = source or f"{self.label} url"
        if password is None and self.url_password is not None and user == self.url_user:
            password = self.url_password
            source = source or f"{self.label} url"
        if user is None and password is not None:
            user = ""  # a password alone (a token with an empty user)
        return user, password, source


class Decision(msgspec.Struct, frozen=True):
    """What one request sends: credentials or none, the source label, and why none."""

    credentials: Credentials | None
    source: str = NONE
    index: IndexAuth | None = None
    reason: str | None = None  # why nothing was sent or looked up (downgrade, never, signed)
    cacheable: bool = True
    reactive_allowed: bool = True

    @property
    def sent(self) -> bool:
        return self.credentials is not None

    @property
    def ambient(self) -> bool:
        """True for credentials the user did not tie to this URL (netrc, keyring, run cache)."""
        return self.source in ("cache", "keyring") or self.source.startswith("netrc")


class _CacheEntry(msgspec.Struct):
    prefix: str
    credentials: Credentials


class CredentialStore:
    """The run's credential policy: one per run, shared by every request."""

    def __init__(
        self,
        settings: Settings,
        *,
        netrc: Netrc | None = None,
        keyring: SubprocessKeyring | None = None,
    ) -> None:
        self.settings = settings
        self.indexes: list[IndexAuth] = [_index_auth(i, settings.env) for i in settings.indexes]
        self._netrc = netrc
        if keyring is None and settings.keyring_provider == "subprocess":
            keyring = SubprocessKeyring(settings.env)
        self.keyring = keyring
        # The run's cache, per index (None: URLs under no index), then per origin.
        self._cache: dict[tuple[str | None, Origin], list[_CacheEntry]] = {}

    # -- lookups -----------------------------------------------------------------------------

    @property
    def netrc(self) -> Netrc:
        if self._netrc is None:
            self._netrc = load_netrc(self.settings.netrc_path)
        return self._netrc

    def index_for(self, url: str) -> IndexAuth | None:
        """The configured index ``url`` lies under; the longest root wins (segment boundaries)."""
        try:
            origin = origin_of(url)
        except UsageError:
            return None
        path = urlsplit(url).path or "/"
        best: IndexAuth | None = None
        for idx in self.indexes:
            if idx.origin != origin or not path_under(path, idx.root_path):
                continue
            if best is None or len(idx.root_path.rstrip("/")) > len(best.root_path.rstrip("/")):
                best = idx
        return best

    def index_of_origin(self, url: str) -> IndexAuth | None:
        """The index ``url`` is under, else the only index with credentials on its origin."""
        idx = self.index_for(url)
        if idx is not None:
            return idx
        try:
            origin = origin_of(url)
        except UsageError:
            return None
        same = [i for i in self.indexes if i.origin == origin]
        with_user = [i for i in same if i.explicit()[0]]
        if len(with_user) == 1:
            return with_user[0]
        return same[0] if len(same) == 1 else None

    def is_index_origin(self, url: str) -> bool:
        try:
            origin = origin_of(url)
        except UsageError:
            return False
        return any(i.origin == origin for i in self.indexes)

    def cached(self, url: str, username: str | None = None) -> Credentials | None:
        """Credentials that succeeded before for the index ``url`` is under (or for URLs under
        none) on this origin, most specific path prefix first."""
        entries = self._cache.get((_key(self.index_for(url)), origin_of(url)), [])
        path = urlsplit(url).path or "/"
        best: _CacheEntry | None = None
        for entry in entries:
            if not path_under(path, entry.prefix):
                continue
            if username is not None and entry.credentials.username != username:
                continue
            if best is None or len(entry.prefix) > len(best.prefix):
                best = entry
        return best.credentials if best else None

    def record_success(self, url: str, decision: Decision) -> None:
        """Remember credentials that worked for ``url``'s origin and path prefix (this run).

        The cache is per index: what worked under one index's root is for that index alone
        (two indexes on one server may hold different secrets). What worked for a URL under
        no index is kept for its whole origin, unless that origin has indexes: there, such a
        URL (a same-origin redirect out of an index's root kept its credentials) cannot be
        told apart from another index's files, so nothing is kept for it."""
        if decision.credentials is None or not decision.cacheable:
            return
        if decision.source == "cache":
            return
        idx = self.index_for(url)
        if idx != decision.index or (idx is None and self.is_index_origin(url)):
            return
        prefix = idx.root_path.rstrip("/") if idx else ""
        origin = origin_of(url)
        entries = self._cache.setdefault((_key(idx), origin), [])
        for entry in entries:
            if entry.prefix == prefix:
                entry.credentials = decision.credentials
                break
        else:
            entries.append(_CacheEntry(prefix, decision.credentials))
        log.log(5, "cached credentials (%s) for %s%s", decision.source, origin, prefix or "/")

    # -- the two questions -------------------------------------------------------------------

    async def proactive(
        self,
        url: str,
        *,
        userinfo: SplitURL | None = None,
        downgraded: bool = False,
        location: bool = False,
    ) -> Decision:
        """Credentials for the first request to ``url`` (a URL without userinfo).

        ``userinfo`` is what the request URL carried, or (``location=True``) what a redirect's
        Location carried: used for that hop, never cached. ``downgraded`` is True for a hop that
        followed an https → http redirect. Raises CredentialsRequired for an
        ``authenticate = "always"`` index when nothing is found.
        """
        return await self._decide(url, userinfo, downgraded, reactive=False, location=location)

    async def reactive(
        self, url: str, *, userinfo: SplitURL | None = None, downgraded: bool = False
    ) -> Decision:
        """Credentials to retry ``url`` with after a 401 to a request that carried none."""
        return await self._decide(url, userinfo, downgraded, reactive=True)

    async def _decide(
        self,
        url: str,
        userinfo: SplitURL | None,
        downgraded: bool,
        *,
        reactive: bool,
        location: bool = False,
    ) -> Decision:
        idx = self.index_for(url)
        if idx is not None and idx.authenticate == "never":
            return Decision(
                None, index=idx, reason='authenticate = "never"', reactive_allowed=False
            )
        if downgraded and not (idx is not None and idx.origin.scheme == "http"):
            return Decision(
                None,
                index=idx,
                reason="redirected from https to http: no credentials sent over http",
                reactive_allowed=False,
            )
        signed = query_has_signature(url)
        username: str | None = None
        user_source: str | None = None
        cacheable = not location

        # 1. userinfo of the URL itself (unless it is just the index URL's own userinfo).
        if userinfo is not None and (userinfo.username or userinfo.password is not None):
            own = idx is not None and (userinfo.username, userinfo.password) == (
                idx.url_user,
                idx.url_password,
            )
            if not own:
                # ``user:`` (empty password) is a username alone, as ``user@`` is.
                if userinfo.password:
                    creds = Credentials(userinfo.username or "", userinfo.password)
                    return Decision(creds, "url", idx, cacheable=cacheable)
                username, user_source = userinfo.username, "url"

        # 2. the index: env, then its URL.
        if idx is not None and username is None:
            user, password, source = idx.explicit()
            if user is not None and password is not None:
                return Decision(Credentials(user, password), source or f"{idx.label} url", idx)
            if user is not None:
                username, user_source = user, source

        ambient = not signed
        # 3. the run's cache.
        if ambient:
            hit = self.cached(url, username)
            if hit is not None:
                return Decision(hit, "cache", idx)

        # 4. netrc: machine entry (proactive and reactive), default (reactive, index origin).
        host = host_of(url)
        if ambient and host:
            entry = self.netrc.machine(host, username)
            if entry is not None and entry.password is not None:
                user = username if username is not None else (entry.login or "")
                return Decision(Credentials(user, entry.password), f"netrc machine {host}", idx)
            if entry is not None and username is None and entry.login:
                username, user_source = entry.login, f"netrc machine {host}"
            if reactive and self.is_index_origin(url):
                entry = self.netrc.default(username)
                if entry is not None and entry.password is not None:
                    user = username if username is not None else (entry.login or "")
                    return Decision(Credentials(user, entry.password), "netrc default", idx)

        # 5. keyring.
        always = idx is not None and idx.authenticate == "always"
        if ambient and self.keyring is not None:
            key_idx = idx or self.index_of_origin(url)
            key_user = username
            if key_user is None and key_idx is not None:
                key_user = key_idx.explicit()[0]
            if key_user is not None or always or reactive:
                found = await self._from_keyring(url, key_idx, key_user, always)
                if found is not None:
                    return Decision(found, "keyring", idx)

        # A username without a password is a token: send it once as ``user:``.
        if username is not None:
            token = Credentials(username, None)
            return Decision(token, user_source or "url", idx, cacheable=cacheable)
        if always and idx is not None:
            raise CredentialsRequired(
                f'{idx.label} requires credentials (authenticate = "always") but none were'
                f" found for {redact_url(url)}",
                hint=self.where_looked(url),
                url=url,
            )
        reason = "signed URL: no ambient credentials" if signed else None
        return Decision(None, index=idx, reason=reason)

    async def _from_keyring(
        self, url: str, idx: IndexAuth | None, username: str | None, always: bool
    ) -> Credentials | None:
        assert self.keyring is not None
        services: list[str] = []
        if idx is not None:
            services.append(idx.url)
        services.append(hostport_of(url))
        for service in services:
            if username is not None:
                password = await self.keyring.get_password(service, username)
                if password is not None:
                    return Credentials(username, password)
            elif always:
                creds = await self.keyring.get_credentials(service)
                if creds is not None:
                    return creds
        return None

    # -- explaining --------------------------------------------------------------------------

    def where_looked(self, url: str) -> str:
        """A hint naming every place kea looked for credentials for ``url``."""
        idx = self.index_for(url)
        places = ["the URL"]
        if idx is not None:
            if idx.env_names:
                places.append(idx.env_names)
            else:
                places.append("KEA_INDEX_<NAME>_* (the index has no name: use --index NAME=URL)")
            places.append("the index URL")
        else:
            places.append("KEA_INDEX_<NAME>_* (the URL is under no configured index)")
        path = self.settings.netrc_path
        if path is None:
            places.append("netrc (no path)")
        else:
            try:
                exists = path.is_file()
            except OSError:
                exists = False
            places.append(f"netrc {path}" + ("" if exists else " (not found)"))
        if self.settings.keyring_provider == "subprocess":
            places.append("keyring (on)")
        else:
            places.append("keyring (off; --keyring-provider subprocess)")
        return "kea looked in: " + ", ".join(places)


def _index_auth(index: Index, env: Mapping[str, str]) -> IndexAuth:
    split = split_userinfo(index.url)
    if split.url.startswith("file:") or "://" not in split.url:
        origin = Origin("file", "", 0)
        root = split.url
        root_path = "/\x00file"  # matches no http URL
    else:
        root = path_as_sent(index_root(split.url))  # as requests to it will be compared
        origin = origin_of(root)
        root_path = urlsplit(root).path
    env_user = env_password = None
    prefix = index.env_prefix
    if prefix:
        env_user = env.get(prefix + "USERNAME") or None
        env_password = env.get(prefix + "PASSWORD") or None
    return IndexAuth(
        index=index,
        url=split.url,
        root=root,
        origin=origin,
        root_path=root_path,
        url_user=split.username,
        url_password=split.password,
        env_user=env_user,
        env_password=env_password,
    )


def _key(index: IndexAuth | None) -> str | None:
    """An index's key in the run's cache: its configured URL (unique per index)."""
    return None if index is None else index.url


__all__ = ["NONE", "CredentialStore", "Decision", "IndexAuth"]
