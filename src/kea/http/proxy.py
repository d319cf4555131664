"""Proxies from the run's environment, read by kea (aiohttp's ``trust_env`` stays off).

``http_proxy``/``HTTP_PROXY`` for http URLs, ``https_proxy``/``HTTPS_PROXY`` for https URLs,
``all_proxy``/``ALL_PROXY`` for both (lower case wins, as in curl); ``no_proxy``/``NO_PROXY``:
comma- or space-separated hosts (a host covers its subdomains; a leading dot is allowed),
``host:port``, IP networks in CIDR form, or ``*``. Credentials in a proxy URL become
``Proxy-Authorization`` sent to that proxy only, never to the origin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

from kea.auth.credentials import Credentials
from kea.auth.redact import redact_url
from kea.auth.urls import split_userinfo
from kea.errors import UsageError


class Proxy(msgspec.Struct, frozen=True):
    url: str  # without userinfo
    credentials: Credentials | None = None
    source: str = ""  # the env variable it came from

    def __repr__(self) -> str:  # the URL may carry a signed query; never the credentials
        return f"Proxy({redact_url(self.url)!r}, source={self.source!r})"


class ProxyConfig(msgspec.Struct, frozen=True):
    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxyConfig:
        def first(*names: str) -> tuple[str, str] | None:
            for name in names:
                value = env.get(name, "").strip()
                if value:
                    return name, value
            return None

        all_ = first("all_proxy", "ALL_PROXY")
        http = first("http_proxy", "HTTP_PROXY") or all_
        https = first("https_proxy", "HTTPS_PROXY") or all_
        raw_no = first("no_proxy", "NO_PROXY")
        no = tuple(e for e in (raw_no[1].replace(",", " ").split() if raw_no else []) if e)
        return cls(
            http=_parse_proxy(*http) if http else None,
            https=_parse_proxy(*https) if https else None,
            no_proxy=no,
        )

    def for_url(self, url: str) -> Proxy | None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None:
            return None
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            port = 0
        if bypass(host, port, self.no_proxy):
            return None
        return proxy


def _parse_proxy(name: str, value: str) -> Proxy:
    if "://" not in value:
        value = "http://" + value
    split = split_userinfo(value)
    scheme = urlsplit(split.url).scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(
            f"{name}={redact_url(value)}: unsupported proxy scheme {scheme!r}",
            hint="kea supports http:// and https:// proxies",
        )
    if not urlsplit(split.url).hostname:
        raise UsageError(f"{name}={redact_url(value)}: the proxy URL has no host")
    creds = None
    if split.username or split.password:
        creds = Credentials(split.username or "", split.password or "")
    return Proxy(split.url, creds, name)


def bypass(host: str, port: int, no_proxy: tuple[str, ...]) -> bool:
    """True when ``host:port`` matches a NO_PROXY entry."""
    host = host.strip("[]").lower()
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy:
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if "/" in entry and ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry_port = None
        if entry.startswith("["):
            h, _, rest = entry[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
            entry = h
        elif entry.count(":") == 1:
            h, p = entry.split(":")
            if p.isdigit():
                entry, entry_port = h, int(p)
        if entry_port is not None and entry_port != port:
            continue
        entry = entry.lstrip(".")
        if not entry:
            continue
        if host == entry or host.endswith("." + entry):
            return True
    return False


__all__ = ["Proxy", "ProxyConfig", "bypass"]
