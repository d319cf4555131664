"""What the resolver's side of the index and the cache import before they parse anything.

A resolve answered from the cache reads parsed pages and metadata: no HTML parser, no zip
reader (with bz2 and lzma), no temporary files. Each is imported by the function that needs it.
Checked in a fresh interpreter; then the same interpreter parses an HTML page, reads a wheel and
makes a temporary cache, which must still work (and import them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

LAZY = ("html.parser", "html.entities", "zipfile", "bz2", "lzma", "tempfile", "shutil")

_SCRIPT = """
import json, sys
import kea.cache, kea.index.client, kea.index.page, kea.index.findlinks, kea.resolver.provider
before = sorted(m for m in {lazy!r} if m in sys.modules)
from kea.cache import Cache
from kea.index.page import parse_project_page
from kea.index.wheelmeta import metadata_from_zip
page = parse_project_page(
    b'<a href="demo-1.0-py3-none-any.whl#sha256=' + b'0' * 64 + b'">x</a>',
    "http://127.0.0.1/simple/demo/", "text/html", name="demo",
)
meta = metadata_from_zip({wheel!r})
cache = Cache.temporary_cache()
root = cache.root
cache.close()
print(json.dumps({{
    "before": before,
    "after": sorted(m for m in {lazy!r} if m in sys.modules),
    "files": [f.filename for f in page.files],
    "meta": meta.decode(),
    "temporary_removed": not root.exists(),
}}))
"""


def test_parsers_and_archives_are_imported_only_when_used(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
    script = _SCRIPT.format(lazy=LAZY, wheel=str(wheel))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before"] == []
    assert {"html.parser", "zipfile", "tempfile", "shutil"} <= set(out["after"])
    assert out["files"] == ["demo-1.0-py3-none-any.whl"]
    assert out["meta"].startswith("Name: demo")
    assert out["temporary_removed"]
