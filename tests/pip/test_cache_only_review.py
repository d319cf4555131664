"""Review of the cache-only run of ``kea pip install`` (``kea.index.cached``,
``resolve_from_cache``, ``install_pipeline._from_cache``) against the network path: each test
here is a difference or a bug found by running kea against a real loopback index."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.pip.conftest import Kea, Result
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e


def summary(r: Result) -> list[str]:
    return [re.sub(r" in \d+(\.\d+)?m?s$", " in <t>", line) for line in r.lines]


def _rebuild(directory: Path, name: str, version: str, requires: list[str]) -> Path:
    """Build ``name==version`` again in place (same file name, other contents), with an mtime
    that differs from the first build's even on a coarse clock."""
    path = build_wheel(directory, name, version, requires=requires)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    return path


@pytest.mark.parametrize("how", ["direct", "find-links"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_local_wheel_rebuilt_in_place_is_resolved_with_its_new_metadata(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path, how: str, dry_run: bool
) -> None:
    """A local wheel has no sha256 on any page: its cached metadata is keyed by its path only.
    Rebuilt under the same file name with other dependencies, it must be resolved with what it
    says now (its archive already is: unpacked again by size and mtime), or the environment gets
    the old dependencies and a package whose own metadata asks for others."""
    small_index.page_headers = {"Cache-Control": "max-age=600"}  # the cache-only run is tried
    build_wheel(small_index.directory, "lib", "1.0")
    build_wheel(small_index.directory, "leaf", "1.0")
    small_index.scan()
    local = tmp_path / "local"
    wheel = build_wheel(local, "app", "1.0", requires=["lib"])
    req = f"app @ {wheel.as_uri()}" if how == "direct" else "app"
    extra = ["--find-links", str(local)] if how == "find-links" else []

    first = kea("pip", "install", "-i", small_index.url, *extra, req, venv=kea.venv(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert " + lib==1.0" in first.lines

    _rebuild(local, "app", "1.0", requires=["leaf"])
    venv = kea.venv(tmp_path / "b")
    flags = ["--dry-run"] if dry_run else []
    r = kea("pip", "install", "-i", small_index.url, *extra, *flags, req, venv=venv)
    assert r.returncode == 0, r.stderr
    changes = [line for line in r.lines if line.startswith(" + ")]
    assert changes == [" + app==1.0", " + leaf==1.0"], r.stderr
    if not dry_run:
        site = next((venv / "lib").glob("python3*/site-packages"))
        assert sorted(p.name for p in site.glob("*.dist-info")) == [
            "app-1.0.dist-info",
            "leaf-1.0.dist-info",
        ]
        meta = (site / "app-1.0.dist-info" / "METADATA").read_text()
        assert "Requires-Dist: leaf" in meta
