"""Credentials that an index puts in its own links (userinfo, a signed query) are kept in the
cache only in files that their owner alone may read (found by a black-box audit, session 33)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

SECRET = "dl-s3cret-xyzzy"


@pytest.mark.parametrize(
    "form",
    ["http://dl-user:{secret}@{host}/files/{name}", "http://{host}/files/{name}?token={secret}"],
    ids=["userinfo", "signed query"],
)
def test_links_with_credentials_are_cached_owner_only(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path, form: str
) -> None:
    wheel = build_wheel(small_index.directory, "alpha", "1.0")
    small_index.scan()
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    host = small_index.url.split("//", 1)[1].split("/", 1)[0]
    link = form.format(secret=SECRET, host=host, name=Path(wheel).name)
    href = f"{link}#sha256={digest}"
    page = f'<html><body><a href="{href}">{Path(wheel).name}</a></body></html>'
    small_index.canned["alpha"] = ("text/html", page.encode())
    small_index.page_headers = {"Cache-Control": "max-age=600"}
    old = os.umask(0o022)
    try:
        for venv in ("a", "b"):  # the second resolve is answered by, or writes, the memo
            r = kea(
                "pip", "install", "-i", small_index.url, "alpha", venv=kea.venv(tmp_path / venv)
            )
            assert r.returncode == 0, r.stderr
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    cache = Path(kea.env["KEA_CACHE_DIR"])
    holding = []
    for path in cache.rglob("*"):
        if path.is_file() and SECRET.encode() in path.read_bytes():
            holding.append(path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # the page, and the resolution memo that names the chosen file
    assert {p.relative_to(cache).parts[0] for p in holding} == {"simple-v1", "resolved-v1"}
