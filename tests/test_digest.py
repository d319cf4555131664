"""``kea.digest.sha256``: CPython's own SHA-256, the same digests as hashlib's, and loaded without
hashlib (whose OpenSSL module costs a warm run ~3 ms)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from kea.digest import sha256


def test_same_digests_as_hashlib() -> None:
    for data in (b"", b"kea", b"x" * 1_000_003, bytes(range(256)) * 40):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    h = sha256(b"part one, ")
    h.update(b"part two")
    assert h.digest() == hashlib.sha256(b"part one, part two").digest()


def test_does_not_import_hashlib() -> None:
    code = "import sys, kea.digest; print('hashlib' in sys.modules, '_hashlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr
