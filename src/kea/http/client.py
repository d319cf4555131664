"""kea's HTTP client: one aiohttp session per run, and the redirect loop of specs/auth.md.

```python
async with HttpClient(settings) as client:
    resp = await client.get(url, headers={"Accept": ...}, purpose="page")
    resp.raise_for_status()
    async with client.stream(url, purpose="file") as s:
        s.raise_for_status()
        async for chunk in s.iter_chunks(): ...
```

kea follows redirects itself (aiohttp's following is off) and decides, hop by hop, which
credentials go on each request (``kea.auth.store``): same origin keeps them (unless the hop
enters another index's root: that index's own), another origin gets a fresh lookup and never the
previous origin's secrets, an http hop after an https one gets nothing, a 401 on a
request without credentials is retried once, to the URL that answered it, with what a full lookup
finds. aiohttp is imported (``kea.http.aio.import_aiohttp``) and the TLS context built only for the
first request, so opening a client that never sends one costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

import kea.log
from kea.auth.redact import query_has_signature, redact_url
from kea.auth.store import CredentialStore, Decision
from kea.auth.urls import (
    SplitURL,
    origin_of,
    path_as_sent,
    scheme_of,
    split_userinfo,
)
from kea.errors import UsageError
from kea.http.errors import (
    ConnectError,
    HttpError,
    HttpTimeout,
    MissingLocation,
    OfflineError,
    ProxyError,
    TooLarge,
    TooManyRedirects,
    UnsupportedRedirect,
    status_text,
)
from kea.http.failures import closed_during_tls, connect_error, tls_error
from kea.http.proxy import ProxyConfig
from kea.http.response import Hop, Outcome, Response, Stream, describe, status_error
from kea.http.retry import RETRY_STATUSES, backoff_delay, parse_retry_after
from kea.http.tls import TLSConfig, build_tls, check_tls_env
from kea.settings import Settings

if TYPE_CHECKING:
    import aiohttp

log = kea.log.get("kea.http")
TRACE = 5

Purpose = Literal["page", "file", "metadata"]
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
POOL_LIMIT = 100
# Connections to one host at once. A private index behind a router or a slow proxy answers
# every request after a fixed delay, so the number in flight bounds the rate: at 16, the
# bench's seed path (+50 ms per response) resolved jupyter in 1.22-1.28 s, at 50 (uv's
# default number of concurrent downloads) in 0.83-0.91 s; a local index saw no difference.
POOL_LIMIT_PER_HOST = 50
# Headers that belong to one origin and are dropped when a redirect leaves it.
ORIGIN_BOUND_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


def _user_agent() -> str:
    from kea import __version__

    return f"kea/{__version__}"


class HttpClient:
    """The run's HTTP client. Use as ``async with HttpClient(settings) as client``."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: CredentialStore | None = None,
        backoff_base: float | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or CredentialStore(settings)
        self.proxies = ProxyConfig.from_env(settings.env)
        self.retries = max(0, int(settings.http_retries))
        self._backoff_base = backoff_base
        if backoff_base is None:
            raw = settings.env.get("KEA_HTTP_BACKOFF")
            try:
                self._backoff_base = float(raw) if raw else None
            except ValueError:
                self._backoff_base = None
        self._tls: TLSConfig | None = None
        self._session: aiohttp.ClientSession | None = None
        self._state: Literal["new", "open", "closed"] = "new"

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> HttpClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Make the client usable. Cheap: the aiohttp session (and with it aiohttp itself) is
        created on the first request, the TLS context on the first https connection, so a run
        that answers everything from the cache never imports the network stack."""
        if self._state == "closed":
            raise RuntimeError("HttpClient reopened after close")
        check_tls_env(self.settings.env)  # a missing CA/cert file is a UsageError right away
        self._state = "open"

    def _session_now(self) -> aiohttp.ClientSession:
        """The run's session, created on first use (no await inside: tasks cannot race)."""
        if self._state != "open":
            raise RuntimeError("HttpClient used outside `async with`")
        if self._session is None:
            from kea.http.aio import import_aiohttp

            import_aiohttp()
            import aiohttp

            # Every TLS connection gets its context per request (see _ssl_for); the
            # connector's own default is never used for verification.
            connector = aiohttp.TCPConnector(limit=POOL_LIMIT, limit_per_host=POOL_LIMIT_PER_HOST)
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.settings.http_connect_timeout or None,
                sock_read=self.settings.http_timeout or None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": _user_agent()},
            )
        return self._session

    async def close(self) -> None:
        self._state = "closed"
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def tls(self) -> TLSConfig:
        """The run's TLS configuration, built on first use (``set_default_verify_paths`` and
        the system trust store are not cheap: a plain-http run never pays for them)."""
        if self._tls is None:
            self._tls = build_tls(
                self.settings.env,
                native_tls=self.settings.native_tls,
                insecure_hosts=self.settings.allow_insecure_hosts,
            )
        return self._tls

    def _ssl_for(self, origin_scheme: str, host: str, port: int, proxy_url: str | None) -> Any:
        """The ``ssl=`` argument of one request: kea's context (or False for an allowed
        insecure host) whenever a TLS handshake happens — with an https origin, or with an
        https proxy in front of an http origin — else True (no TLS at all)."""
        if origin_scheme == "https":
            return self.tls.verify_for(host, port)
        if proxy_url is not None and scheme_of(proxy_url) == "https":
            return self.tls.context
        return True

    # -- public API --------------------------------------------------------------------------

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        purpose: Purpose = "page",
        max_bytes: int | None = None,
    ) -> Response:
        """GET ``url`` following redirects; the body is read. Non-2xx statuses are returned
        (call ``raise_for_status``); network, TLS and redirect failures raise HttpError, and
        a body longer than ``max_bytes`` (when given) ``TooLarge``, as soon as it is seen."""
        attempt = 0
        while True:
            outcome = await self._chain(url, headers, purpose)
            import aiohttp  # imported (lean) by the first request's session

            try:
                if max_bytes is None:
                    body = await outcome.raw.read()
                else:
                    body = await _read_at_most(outcome.raw, max_bytes, outcome.url)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
                outcome.raw.release()
                if attempt < self.retries:
                    await self._sleep(attempt, None, outcome.url, f"body broke off: {e}")
                    attempt += 1
                    continue
                raise ConnectError(
                    f"reading {redact_url(outcome.url)} failed: {describe(e)}", url=outcome.url
                ) from None
            except TimeoutError:
                outcome.raw.release()
                if attempt < self.retries:
                    await self._sleep(attempt, None, outcome.url, "read timed out")
                    attempt += 1
                    continue
                raise HttpTimeout(
                    f"reading {redact_url(outcome.url)} timed out"
                    f" (after {self.settings.http_timeout:g}s)",
                    hint="raise KEA_HTTP_TIMEOUT for slow servers",
                    url=outcome.url,
                ) from None
            outcome.raw.release()
            status = outcome.raw.status
            return Response(
                status=status,
                url=outcome.url,
                headers=outcome.raw.headers,
                body=body,
                hops=outcome.hops,
                error=self._error_for(outcome),
            )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        url: str,
        *,
        purpose: Purpose = "file",
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Stream]:
        """GET ``url`` following redirects; yield a Stream whose body is read in chunks."""
        outcome = await self._chain(url, headers, purpose)
        try:
            yield Stream(outcome, self._error_for(outcome))
        finally:
            outcome.raw.release()

    def _error_for(self, outcome: Outcome) -> HttpError | None:
        status = outcome.raw.status
        if status < 400:
            return None
        proxy = self.proxies.for_url(outcome.url) if status == 407 else None
        if proxy is not None:
            # An http:// request goes to the proxy, whose 407 comes back as the response (an
            # https one's comes from the CONNECT, in ``_send``): the same error either way.
            return ProxyError(
                f"proxy {redact_url(proxy.url)} refused {redact_url(outcome.url)}"
                f" ({status_text(status)})",
                hint=f"check the credentials in {proxy.source}",
                url=outcome.url,
            )
        hint = self.store.where_looked(outcome.url)
        return status_error(status, outcome.url, outcome.decision, outcome.downgraded, hint)

    # -- the redirect loop -------------------------------------------------------------------

    async def _chain(
        self, url: str, headers: Mapping[str, str] | None, purpose: Purpose
    ) -> Outcome:
        hops: list[Hop] = []
        try:
            return await self._follow(url, headers, purpose, hops)
        except HttpError as e:
            e.hops = list(hops)
            raise

    async def _follow(
        self, url: str, headers: Mapping[str, str] | None, purpose: Purpose, hops: list[Hop]
    ) -> Outcome:
        split = split_userinfo(url.strip())
        _check_scheme(split.url, url)
        if self.settings.offline:
            raise OfflineError(
                f"cannot fetch {redact_url(split.url)}: network access is off (--offline)",
                hint="run without --offline, or warm the cache first",
                url=split.url,
            )
        base = dict(headers or {})
        if purpose == "file" and not any(k.lower() == "accept-encoding" for k in base):
            base["Accept-Encoding"] = "identity"  # hash exactly the bytes the index lists
        # The path the server will see (aiohttp resolves "..", "%2e%2e", "%61"): credentials
        # are chosen for it, and it is what the hops name.
        current = path_as_sent(split.url)
        userinfo: SplitURL | None = split if split.has_userinfo else None
        from_location = False
        downgraded = False
        seen_https = False
        chain = [current]
        retried: set[str] = set()
        previous: Decision | None = None
        origin_changed = False
        dropped: str | None = None

        while True:
            if (
                previous is not None
                and previous.sent
                and not origin_changed
                and userinfo is None
                and not (previous.ambient and query_has_signature(current))
                and self.store.index_for(current) in (None, previous.index)
            ):
                # Same origin: the request keeps its Authorization; but a pre-signed URL gets
                # no ambient credentials (netrc, keyring, cache), even on the same origin, and
                # a URL under another index gets that index's own (specs/auth.md, case 19).
                decision = previous
            else:
                decision = await self.store.proactive(
                    current, userinfo=userinfo, downgraded=downgraded, location=from_location
                )
            raw, attempts, elapsed = await self._send(current, base, decision, purpose)
            hop = Hop(
                url=current,
                status=raw.status,
                source=decision.source,
                sent_credentials=decision.sent,
                origin_changed=origin_changed,
                dropped=dropped,
                reason=decision.reason,
                attempts=attempts,
                elapsed=elapsed,
            )
            hops.append(hop)
            _log_hop(hop, purpose)

            if (
                raw.status == 401
                and not decision.sent
                and decision.reactive_allowed
                and current not in retried
            ):
                again = await self.store.reactive(current, userinfo=userinfo, downgraded=downgraded)
                if again.sent:
                    retried.add(current)
                    await _discard(raw)
                    decision = again
                    raw, attempts, elapsed = await self._send(current, base, decision, purpose)
                    hop = Hop(
                        url=current,
                        status=raw.status,
                        source=decision.source,
                        sent_credentials=True,
                        retry=True,
                        attempts=attempts,
                        elapsed=elapsed,
                    )
                    hops.append(hop)
                    _log_hop(hop, purpose)

            if raw.status in REDIRECT_STATUSES:
                location = raw.headers.get("Location")
                status = raw.status
                await _discard(raw)
                if not location or not location.strip():
                    raise MissingLocation(current, status)
                try:
                    target = urljoin(current, location.strip())
                except ValueError:  # e.g. "http://[oops": not a URL at all
                    raise UnsupportedRedirect(current, location.strip(), invalid=True) from None
                if scheme_of(target) not in ("http", "https"):
                    raise UnsupportedRedirect(current, target)
                try:
                    nxt = split_userinfo(target)
                    old_origin, new_origin = origin_of(current), origin_of(nxt.url)
                except UsageError:
                    raise UnsupportedRedirect(current, target, invalid=True) from None
                if len(chain) >= MAX_REDIRECTS:
                    raise TooManyRedirects([*chain, nxt.url], MAX_REDIRECTS)
                origin_changed = old_origin != new_origin
                dropped = None
                if origin_changed:
                    for name in ORIGIN_BOUND_HEADERS:
                        for key in [k for k in base if k.lower() == name.lower()]:
                            del base[key]
                    if decision.sent:
                        dropped = str(old_origin)
                # Over http after any https hop nothing is sent; back on https the hop is
                # decided as any other (rule 6 is about the http hop, not the rest).
                seen_https = seen_https or scheme_of(current) == "https"
                downgraded = seen_https and scheme_of(nxt.url) == "http"
                userinfo = nxt if nxt.has_userinfo else None
                from_location = userinfo is not None
                previous = decision
                current = path_as_sent(nxt.url)
                chain.append(current)
                continue

            if (200 <= raw.status < 300 or raw.status == 304) and decision.sent:
                self.store.record_success(current, decision)
            return Outcome(raw, current, hops, decision, downgraded)

    # -- one request, with retries -----------------------------------------------------------

    async def _send(
        self, url: str, headers: Mapping[str, str], decision: Decision, purpose: Purpose
    ) -> tuple[aiohttp.ClientResponse, int, float]:
        """Send one GET (retrying connect errors and 5xx/429); return (response, attempts,
        seconds). The response body is not read."""
        session = self._session_now()
        import aiohttp

        req_headers = dict(headers)
        if decision.credentials is not None:
            req_headers["Authorization"] = decision.credentials.basic_header()
        origin = origin_of(url)
        proxy = self.proxies.for_url(url)
        proxy_url = proxy.url if proxy else None
        ssl_arg: ssl.SSLContext | bool = self._ssl_for(
            origin.scheme, origin.host, origin.port, proxy_url
        )
        proxy_headers = None
        if proxy is not None and proxy.credentials is not None:
            # Sent to the proxy only: for https targets on the CONNECT request (the tunnelled
            # request never carries it); for http targets on the request, which goes to the
            # proxy in absolute form. Never to an origin directly.
            value = proxy.credentials.basic_header()
            if origin.scheme == "https":
                proxy_headers = {"Proxy-Authorization": value}
            else:
                req_headers["Proxy-Authorization"] = value
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE,
                "GET %s headers=%s%s",
                redact_url(url),
                sorted(req_headers),
                f" via proxy {redact_url(proxy_url)}" if proxy_url else "",
            )
        attempt = 0
        start = time.monotonic()
        while True:
            try:
                raw = await session.get(
                    url,
                    headers=req_headers,
                    allow_redirects=False,
                    ssl=ssl_arg,
                    proxy=proxy_url,
                    proxy_headers=proxy_headers,
                    auto_decompress=purpose != "file",
                )
            except aiohttp.ClientHttpProxyError as e:
                raise ProxyError(
                    f"proxy {redact_url(proxy_url or '')} refused {redact_url(url)}"
                    f" ({status_text(e.status)})",
                    hint="check the credentials in "
                    + (proxy.source if proxy else "HTTPS_PROXY/HTTP_PROXY"),
                    url=url,
                ) from None
            except aiohttp.ClientResponseError as e:
                # The response head could not be parsed (bad status line, bad header). Its
                # text names the full URL and the request's headers: never pass it on.
                what = (str(e.message).strip().splitlines() or ["unparsable"])[0].rstrip(":")
                raise ConnectError(
                    f"{redact_url(url)} sent a malformed response ({what})", url=url
                ) from None
            except aiohttp.ClientConnectorCertificateError as e:
                raise tls_error(
                    url, e.certificate_error, self.tls.ca_source, self.settings.env
                ) from None
            except aiohttp.ClientSSLError as e:
                raise tls_error(
                    url, getattr(e, "os_error", e), self.tls.ca_source, self.settings.env
                ) from None
            except aiohttp.ClientProxyConnectionError as e:
                error: HttpError = ProxyError(
                    f"cannot connect to proxy {redact_url(proxy_url or '')}: {describe(e)}",
                    url=url,
                )
                if attempt >= self.retries:
                    raise error from None
                await self._sleep(attempt, None, url, str(error))
                attempt += 1
                continue
            except aiohttp.ClientConnectorError as e:
                if isinstance(e.os_error, ssl.SSLError):
                    raise tls_error(
                        url, e.os_error, self.tls.ca_source, self.settings.env
                    ) from None
                if attempt >= self.retries:
                    if origin.scheme == "https" and isinstance(e.os_error, ConnectionResetError):
                        raise closed_during_tls(url, e, self.settings.env) from None
                    raise connect_error(url, e) from None
                await self._sleep(attempt, None, url, describe(e))
                attempt += 1
                continue
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
                if attempt >= self.retries:
                    if origin.scheme == "https":
                        # No response head came back: with TLS 1.3 a server that wants a client
                        # certificate checks it after the handshake and just hangs up.
                        raise closed_during_tls(url, e, self.settings.env) from None
                    raise ConnectError(
                        f"connection to {redact_url(url)} failed: {describe(e)}", url=url
                    ) from None
                await self._sleep(attempt, None, url, describe(e))
                attempt += 1
                continue
            except TimeoutError:
                if attempt >= self.retries:
                    raise HttpTimeout(
                        f"{redact_url(url)} timed out"
                        f" (connect {self.settings.http_connect_timeout:g}s,"
                        f" read {self.settings.http_timeout:g}s)",
                        hint="raise KEA_HTTP_TIMEOUT for slow servers",
                        url=url,
                    ) from None
                await self._sleep(attempt, None, url, "timed out")
                attempt += 1
                continue
            except aiohttp.InvalidURL:
                raise UsageError(f"invalid URL {redact_url(url)}") from None
            if raw.status in RETRY_STATUSES and attempt < self.retries:
                wait = parse_retry_after(raw.headers.get("Retry-After"))
                await _discard(raw)
                await self._sleep(attempt, wait, url, status_text(raw.status))
                attempt += 1
                continue
            return raw, attempt + 1, time.monotonic() - start

    async def _sleep(self, attempt: int, retry_after: float | None, url: str, why: str) -> None:
        kwargs = {} if self._backoff_base is None else {"base": self._backoff_base}
        delay = backoff_delay(attempt, retry_after=retry_after, **kwargs)
        log.debug(
            "retry %d/%d of %s in %.2fs (%s)",
            attempt + 1,
            self.retries,
            redact_url(url),
            delay,
            why,
        )
        await asyncio.sleep(delay)


def _check_scheme(clean: str, original: str) -> None:
    scheme = scheme_of(clean)
    if scheme not in ("http", "https"):
        raise UsageError(
            f"unsupported URL {redact_url(original)}: kea fetches http:// and https:// URLs",
        )
    origin_of(clean)  # raises UsageError without a host or with a bad port


async def _discard(raw: aiohttp.ClientResponse) -> None:
    """Read a small body (redirects, 401 pages) so the connection can be reused."""
    import aiohttp

    try:
        length = raw.headers.get("Content-Length")
        if length is None or (length.isdigit() and int(length) <= 65536):
            await raw.read()
    except (aiohttp.ClientError, TimeoutError):
        pass
    finally:
        raw.release()


def _log_hop(hop: Hop, purpose: str) -> None:
    if not log.isEnabledFor(kea.log.DEBUG):
        return
    if hop.dropped:
        log.debug("dropped credentials of %s", hop.dropped)
    extra = " (retry after 401)" if hop.retry else ""
    if hop.reason and not hop.sent_credentials:
        extra += f" [{hop.reason}]"
    log.debug(
        "%s %s %s credentials: %s%s",
        purpose,
        hop.status,
        redact_url(hop.url),
        hop.source,
        extra,
    )


async def _read_at_most(raw: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The body of ``raw``, or ``TooLarge`` once it (or its Content-Length) passes ``limit``."""
    if raw.content_length is not None and raw.content_length > limit:
        raw.release()
        raise TooLarge(f"{redact_url(url)}: the answer is larger than {limit} bytes", url=url)
    pieces: list[bytes] = []
    size = 0
    async for piece in raw.content.iter_chunked(256 * 1024):
        size += len(piece)
        if size > limit:
            raw.release()
            raise TooLarge(f"{redact_url(url)}: the answer is larger than {limit} bytes", url=url)
        pieces.append(piece)
    return b"".join(pieces)


__all__ = ["Hop", "HttpClient", "Purpose", "Response", "Stream"]
