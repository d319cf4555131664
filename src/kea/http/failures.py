"""What a failed connection or TLS handshake means, said for the user: the error kea raises,
with a hint at the likely fix (a client certificate, a CA bundle, the host name)."""

from __future__ import annotations

from collections.abc import Mapping

from kea.auth.redact import redact_url
from kea.auth.urls import origin_of
from kea.http.errors import ConnectError, TLSError
from kea.http.response import describe


def client_cert_hint(env: Mapping[str, str]) -> str:
    path = env.get("SSL_CLIENT_CERT")
    if path:
        return f"the server did not accept the client certificate from SSL_CLIENT_CERT={path}"
    return "set SSL_CLIENT_CERT to a PEM file holding your client certificate and its key"


def closed_during_tls(url: str, err: BaseException, env: Mapping[str, str]) -> TLSError:
    """The server closed the connection in the handshake: most often, it wants a client
    certificate that was not sent."""
    origin = origin_of(url)
    return TLSError(
        f"{origin.host}:{origin.port} closed the TLS connection before answering"
        f" ({describe(err)}): the server may require a client certificate",
        hint=client_cert_hint(env),
        url=url,
    )


def tls_error(url: str, err: BaseException, ca_source: str, env: Mapping[str, str]) -> TLSError:
    """The handshake failed: refused by the server (an alert), or the server's certificate
    failed kea's verification against the CA certificates from ``ca_source``."""
    origin = origin_of(url)
    reason = getattr(err, "verify_message", None) or getattr(err, "reason", None) or str(err)
    if "alert" in str(reason).lower() or "ALERT" in str(err):
        # The server refused the handshake (TLS 1.2 reports a missing or untrusted client
        # certificate this way); our own verification of the server did not fail.
        return TLSError(
            f"TLS handshake with {origin.host}:{origin.port} refused by the server"
            f" ({str(reason).lower()}): it may require a client certificate",
            hint=client_cert_hint(env),
            url=url,
        )
    return TLSError(
        f"TLS verification failed for {origin.host}:{origin.port} ({reason});"
        f" CA certificates from {ca_source}",
        hint="point SSL_CERT_FILE at the CA bundle that signed the server's certificate,"
        f" or pass --allow-insecure-host {origin.host} to skip the check",
        url=url,
    )


def connect_error(url: str, e: Exception) -> ConnectError:
    """No connection: the host name did not resolve, or the connection failed."""
    import aiohttp

    if isinstance(e, aiohttp.ClientConnectorDNSError):
        host = origin_of(url).host
        return ConnectError(
            f"cannot resolve host {host} (for {redact_url(url)})",
            hint="check the host name and your network/DNS settings",
            url=url,
        )
    return ConnectError(f"cannot connect to {redact_url(url)}: {describe(e)}", url=url)
