"""Importing aiohttp without the default SSL contexts it builds at import time.

aiohttp's connector module builds two default SSL contexts when it is imported, and each loads
the system CA store (``set_default_verify_paths``): tens of milliseconds that kea's first
request waits for, for contexts kea never uses. ``import_aiohttp`` imports it without them.
"""

from __future__ import annotations

import ssl
import sys
import threading

_IMPORT_LOCK = threading.Lock()


def _trusting_nothing(*args: object, **kwargs: object) -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, but trusts no CA: fails closed


def _no_default_paths(self: ssl.SSLContext) -> None:
    return None


def import_aiohttp() -> None:
    """Import aiohttp without the two default SSL contexts its connector module builds at
    import time (each loads the system CA store: ``set_default_verify_paths``, tens of ms).

    kea never lets aiohttp use them: every request that makes a TLS handshake passes kea's own
    context (``HttpClient._ssl_for``), or False for an allowed insecure host, which takes
    aiohttp's unverified context (it verifies nothing, so it needs no CA). While aiohttp is
    imported, ``ssl.create_default_context`` gives a context that trusts no CA and
    ``SSLContext.set_default_verify_paths`` does nothing; both are restored right after. Should
    anything ever use aiohttp's verified default after all, verification fails (closed), it is
    never skipped. A no-op when aiohttp is already imported (``kea serve``, tests).
    """
    if "aiohttp.connector" in sys.modules:
        return
    with _IMPORT_LOCK:
        if "aiohttp.connector" in sys.modules:
            return
        create = ssl.create_default_context
        own = "set_default_verify_paths" in vars(ssl.SSLContext)
        paths = vars(ssl.SSLContext).get("set_default_verify_paths")
        setattr(ssl, "create_default_context", _trusting_nothing)  # noqa: B010
        setattr(ssl.SSLContext, "set_default_verify_paths", _no_default_paths)  # noqa: B010
        try:
            import aiohttp  # noqa: F401
        finally:
            setattr(ssl, "create_default_context", create)  # noqa: B010
            if own:
                setattr(ssl.SSLContext, "set_default_verify_paths", paths)  # noqa: B010
            else:
                delattr(ssl.SSLContext, "set_default_verify_paths")
