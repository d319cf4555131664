"""A throw-away CA (trustme) and one server certificate valid for the loopback IPs we use."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

# Hosts the suite uses. Each is a real, distinct host on the loopback network.
LOOPBACK_IPS = tuple(f"127.0.0.{i}" for i in range(1, 13))


@dataclass
class Tls:
    ca_pem: Path  # what kea trusts through SSL_CERT_FILE
    cert_pem: Path  # server certificate chain
    key_pem: Path  # server private key
    server_context: ssl.SSLContext


def make_tls(directory: Path) -> Tls:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*LOOPBACK_IPS, "localhost")
    ca_pem = directory / "ca.pem"
    cert_pem = directory / "server-cert.pem"
    key_pem = directory / "server-key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert_pem.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_pem))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return Tls(ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem, server_context=ctx)
