"""``kea.http.aio.import_aiohttp``: aiohttp without its import-time default SSL contexts.

Runs in a fresh interpreter (aiohttp must not be imported yet) against stdlib servers on
loopback: plain http never loads a CA store; https still verifies with kea's own context
(SSL_CERT_FILE), an unknown CA still fails, ``--allow-insecure-host`` still connects; the ssl
module is restored exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trustme

_SCRIPT = r"""
import asyncio, http.server, json, ssl, sys, threading
from pathlib import Path

tmp = Path(sys.argv[1])
calls = []
real_paths = ssl.SSLContext.set_default_verify_paths
real_create = ssl.create_default_context

def counting(self):
    calls.append(1)
    return real_paths(self)

ssl.SSLContext.set_default_verify_paths = counting  # counts every CA-store load from here on
server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(str(tmp / "server.pem"))

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *a):
        pass

def serve(tls):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    if tls:
        srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"{'https' if tls else 'http'}://127.0.0.1:{srv.server_address[1]}/"

plain, secure = serve(False), serve(True)
from kea.http.client import HttpClient
from kea.settings import load_settings

def settings(ca, insecure=()):
    env = {"HOME": str(tmp), "KEA_NO_CONFIG": "1", "NETRC": str(tmp / "netrc"),
           "SSL_CERT_FILE": str(tmp / ca)}
    return load_settings(cli={"allow_insecure_host": list(insecure)}, env=env, cwd=tmp)

async def get(s, url):
    async with HttpClient(s) as c:
        try:
            r = await c.get(url)
            return r.status
        except Exception as e:
            return type(e).__name__

async def main():
    out = {}
    out["plain"] = await get(settings("ca.pem"), plain)
    out["loads_after_plain"] = len(calls)
    out["aiohttp"] = "aiohttp" in sys.modules
    out["restored"] = (ssl.create_default_context is real_create
                       and ssl.SSLContext.set_default_verify_paths is counting)
    out["https"] = await get(settings("ca.pem"), secure)
    out["wrong_ca"] = await get(settings("other.pem"), secure)
    out["insecure"] = await get(settings("other.pem", ["127.0.0.1"]), secure)
    import aiohttp.connector
    out["default_cas"] = aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_aiohttp_is_imported_without_loading_a_ca_store(tmp_path: Path) -> None:
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other.cert_pem.write_to_path(str(tmp_path / "other.pem"))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    (tmp_path / "netrc").write_text("")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["plain"] == 200
    assert out["aiohttp"] is True
    assert out["loads_after_plain"] == 0  # aiohttp's import loaded no CA store
    assert out["restored"] is True  # the ssl module is as it was
    assert out["https"] == 200  # kea's context (SSL_CERT_FILE) verifies the server
    assert out["wrong_ca"] == "TLSError"  # verification is on: an unknown CA is refused
    assert out["insecure"] == 200  # an allowed insecure host uses aiohttp's unverified context
    assert out["default_cas"] == 0  # aiohttp's verified default trusts nothing: fails closed
