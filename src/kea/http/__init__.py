"""kea's one HTTP client (aiohttp), its redirect loop and its errors.

- ``kea.http.client``: ``HttpClient(settings)`` (async context manager) with
  ``await get(url, headers=..., purpose="page"|"file"|"metadata") -> Response`` and
  ``async with stream(url, purpose="file") as s`` (``s.iter_chunks()``); ``Hop`` per request.
- ``kea.http.errors``: every failure as a one-line, redacted ``KeaError`` subclass
  (``NotFound`` → try the next index; ``AuthError`` → stop, first-index strategy).
- ``kea.http.proxy`` / ``kea.http.tls`` / ``kea.http.retry``: proxies from the environment,
  the TLS context, backoff and ``Retry-After``.

Import ``kea.http.client`` freely: aiohttp itself is imported only for a first request.
"""
