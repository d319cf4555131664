"""The TLS context of a run: the system trust store (truststore) unless the user says otherwise.

``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (from the run's environment) replace the system store;
``SSL_CLIENT_CERT`` adds a client certificate (a PEM holding certificate and key);
``--allow-insecure-host HOST[:PORT]`` skips verification for that host only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from kea.errors import UsageError

if TYPE_CHECKING:
    import ssl


class TLSConfig(msgspec.Struct):
    context: ssl.SSLContext
    ca_source: str  # for error messages: where trusted CAs come from
    insecure_hosts: tuple[str, ...] = ()

    def verify_for(self, host: str, port: int) -> ssl.SSLContext | bool:
        """The ``ssl=`` argument for a request to host:port (False when the user allowed it)."""
        return False if is_insecure(host, port, self.insecure_hosts) else self.context


def is_insecure(host: str, port: int, allowed: Sequence[str]) -> bool:
    host = host.lower().strip("[]")
    for entry in allowed:
        entry = entry.strip().lower()
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        entry = entry.split("/", 1)[0]
        if entry.startswith("["):  # [::1]:443
            h, _, rest = entry[1:].partition("]")
            p = rest[1:] if rest.startswith(":") else ""
        elif entry.count(":") == 1:
            h, p = entry.split(":")
        else:
            h, p = entry, ""
        if h == host and (not p or p == str(port)):
            return True
    return False


def check_tls_env(env: Mapping[str, str]) -> None:
    """UsageError when ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` or ``SSL_CLIENT_CERT`` names a path
    that does not exist. Cheap (no context is built): the HTTP client checks this when it is
    opened, and builds the context only for its first TLS connection."""
    for name, want_dir in (
        ("SSL_CERT_FILE", False),
        ("SSL_CERT_DIR", True),
        ("SSL_CLIENT_CERT", False),
    ):
        value = env.get(name) or None
        if value is None:
            continue
        p = Path(value)
        if not (p.is_dir() if want_dir else p.is_file()):
            kind = "directory" if want_dir else "file"
            raise UsageError(f"{name}={value}: no such {kind}")


def build_tls(
    env: Mapping[str, str], *, native_tls: bool = True, insecure_hosts: Sequence[str] = ()
) -> TLSConfig:
    """Build the run's TLS context; UsageError for a missing or unreadable CA/cert file."""
    import ssl

    check_tls_env(env)
    cafile = env.get("SSL_CERT_FILE") or None
    capath = env.get("SSL_CERT_DIR") or None
    if cafile or capath:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(cafile=cafile, capath=capath)
        except (ssl.SSLError, OSError) as e:
            raise UsageError(f"cannot load CA certificates from {cafile or capath}: {e}") from None
        source = " and ".join(
            f"{n}={v}" for n, v in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath)) if v
        )
    elif native_tls:
        import truststore

        ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        source = "the system trust store"
    else:
        ctx = ssl.create_default_context()
        source = "OpenSSL's default CA paths"
    client_cert = env.get("SSL_CLIENT_CERT")
    if client_cert:
        try:
            ctx.load_cert_chain(client_cert)
        except (ssl.SSLError, OSError) as e:
            raise UsageError(f"SSL_CLIENT_CERT={client_cert}: cannot load it: {e}") from None
    return TLSConfig(ctx, source, tuple(insecure_hosts))


__all__ = ["TLSConfig", "build_tls", "check_tls_env", "is_insecure"]
