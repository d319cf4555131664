"""``kea pip install --refresh`` / ``--refresh-package`` end to end: a loopback index whose pages
are fresh for ten minutes (``max-age=600``) and carry validators, and records what it is asked."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pip.conftest import Kea, Result
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

LAST_MODIFIED = email.utils.formatdate(time.time() - 3600, usegmt=True)


@dataclass
class PageRequest:
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int = 0


class RevalidatingIndex(SimpleIndex):
    """``SimpleIndex`` whose project pages carry ``ETag`` (or, with ``etag=False``, only
    ``Last-Modified``) and answer 304 to a matching conditional request. Every page request is
    recorded with its validators, and ``delay`` seconds are spent on each, counting how many are
    in flight at once."""

    def __init__(self, directory: Path, *, etag: bool = True, delay: float = 0.0) -> None:
        super().__init__(directory)
        self.etag = etag
        self.delay = delay
        self.pages: list[PageRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.page_headers = {"Cache-Control": "max-age=600"}

    async def _project(self, request: Any) -> Any:
        from aiohttp import web

        seen = PageRequest(
            request.path,
            request.headers.get("If-None-Match"),
            request.headers.get("If-Modified-Since"),
        )
        self.pages.append(seen)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            resp = await super()._project(request)
        finally:
            self.in_flight -= 1
        if resp.status != 200:
            seen.status = resp.status
            return resp
        headers = {"Cache-Control": "max-age=600"}
        if self.etag:
            tag = '"' + hashlib.sha256(resp.body).hexdigest()[:16] + '"'
            headers["ETag"] = tag
            fresh = seen.if_none_match == tag
        else:
            headers["Last-Modified"] = LAST_MODIFIED
            fresh = seen.if_modified_since == LAST_MODIFIED
        if fresh:
            seen.status = 304
            return web.Response(status=304, headers=headers)
        resp.headers.update(headers)
        seen.status = 200
        return resp

    def page_paths(self) -> list[str]:
        return sorted(p.path for p in self.pages)


def summary(r: Result) -> list[str]:
    return [re.sub(r" in \d+(\.\d\d)?m?s$", " in <t>", line) for line in r.lines]


def universe(directory: Path) -> None:
    build_wheel(directory, "app", "1.0", requires=["lib>=1"])
    build_wheel(directory, "lib", "1.0")
    build_wheel(directory, "lib", "2.0")


@pytest.fixture
def index(tmp_path: Path) -> Any:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    universe(wheels)
    with RevalidatingIndex(wheels) as srv:
        yield srv


def dry_run(kea: Kea, index: SimpleIndex, venv: Path, *args: str) -> Result:
    r = kea("pip", "install", "-i", index.url, "--dry-run", *args, "app", venv=venv)
    assert r.returncode == 0, r.stderr
    return r


def resolved_lib(r: Result) -> str:
    (line,) = [line for line in r.lines if line.startswith(" + lib==")]
    return line


def test_fresh_pages_are_trusted_and_refresh_revalidates_them(
    kea: Kea, index: RevalidatingIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    first = dry_run(kea, index, venv)
    assert index.page_paths() == ["/simple/app/", "/simple/lib/"]
    assert all(p.status == 200 and p.if_none_match is None for p in index.pages)

    # Fresh (max-age=600): the next run asks the index nothing at all.
    index.pages.clear()
    assert summary(dry_run(kea, index, venv)) == summary(first)
    assert index.pages == []

    # --refresh: every page is asked again with its ETag, the index answers 304, same answer.
    again = dry_run(kea, index, venv, "--refresh")
    assert summary(again) == summary(first)
    assert index.page_paths() == ["/simple/app/", "/simple/lib/"]
    assert all(p.if_none_match and p.status == 304 for p in index.pages)

    # The 304 renewed the pages: a run without --refresh is answered from the cache again.
    index.pages.clear()
    dry_run(kea, index, venv)
    assert index.pages == []


def test_a_changed_page_is_picked_up_with_refresh_and_installs(
    kea: Kea, index: RevalidatingIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    assert resolved_lib(dry_run(kea, index, venv)) == " + lib==2.0"
    build_wheel(index.directory, "lib", "2.5")
    index.scan()

    # Still fresh in the cache: the new version is not seen without asking.
    assert resolved_lib(dry_run(kea, index, venv)) == " + lib==2.0"
    index.pages.clear()

    r = kea("pip", "install", "-i", index.url, "--refresh", "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert " + lib==2.5" in r.lines and " + app==1.0" in r.lines
    statuses = {p.path: p.status for p in index.pages}
    assert statuses == {"/simple/app/": 304, "/simple/lib/": 200}
    assert list((next((venv / "lib").glob("python3.*")) / "site-packages").glob("lib-2.5*"))


def test_refresh_package_revalidates_that_page_only(
    kea: Kea, index: RevalidatingIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    dry_run(kea, index, venv)
    build_wheel(index.directory, "lib", "2.5")
    index.scan()
    index.pages.clear()

    r = dry_run(kea, index, venv, "--refresh-package", "LIB")  # any spelling of the name
    assert resolved_lib(r) == " + lib==2.5"
    assert [(p.path, p.status) for p in index.pages] == [("/simple/lib/", 200)]
    assert index.pages[0].if_none_match  # a conditional request (the page had changed)


def test_env_and_config_file_forms(kea: Kea, index: RevalidatingIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    dry_run(kea, index, venv)

    def pages_asked(extra_env: dict[str, str], *args: str) -> list[str]:
        index.pages.clear()
        saved = dict(kea.env)
        kea.env.update(extra_env)
        try:
            dry_run(kea, index, venv, *args)
        finally:
            kea.env.clear()
            kea.env.update(saved)
        assert all(p.status == 304 for p in index.pages)
        return index.page_paths()

    both = ["/simple/app/", "/simple/lib/"]
    assert pages_asked({"KEA_REFRESH": "1"}) == both
    assert pages_asked({"KEA_REFRESH": "0"}) == []
    assert pages_asked({"KEA_REFRESH_PACKAGE": "lib other"}) == ["/simple/lib/"]
    # The command line beats the environment.
    assert pages_asked({"KEA_REFRESH": "1"}, "--no-refresh") == []
    assert pages_asked({"KEA_REFRESH_PACKAGE": "lib"}, "--refresh-package", "app") == [
        "/simple/app/"
    ]

    # kea.toml in the working directory (found once KEA_NO_CONFIG is gone).
    del kea.env["KEA_NO_CONFIG"]
    config = kea.cwd / "kea.toml"
    config.write_text('refresh-package = ["app"]\n')
    assert pages_asked({}) == ["/simple/app/"]
    config.write_text("refresh = true\n")
    assert pages_asked({}) == both
    # The environment beats the file.
    assert pages_asked({"KEA_REFRESH": "false"}) == []
    config.write_text('refresh = "yes"\n')
    bad = kea("pip", "install", "-i", index.url, "--dry-run", "app", venv=venv)
    assert bad.returncode == 2
    assert bad.lines[0].startswith("error: refresh = 'yes': expected true or false")
    assert "Traceback" not in bad.stderr


def test_last_modified_alone_is_used_to_revalidate(kea: Kea, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    universe(wheels)
    with RevalidatingIndex(wheels, etag=False) as index:
        venv = kea.venv(tmp_path / "venv")
        first = dry_run(kea, index, venv)
        index.pages.clear()
        assert summary(dry_run(kea, index, venv, "--refresh")) == summary(first)
        assert index.page_paths() == ["/simple/app/", "/simple/lib/"]
        for page in index.pages:
            assert page.if_none_match is None
            assert page.if_modified_since == LAST_MODIFIED and page.status == 304


def test_revalidations_go_out_together(kea: Kea, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    names = ["alpha", "beta", "gamma", "delta"]
    for name in names:
        build_wheel(wheels, name, "1.0")
    with RevalidatingIndex(wheels, delay=0.3) as index:
        venv = kea.venv(tmp_path / "venv")
        args = ("pip", "install", "-i", index.url, "--dry-run", *names)
        assert kea(*args, venv=venv).returncode == 0
        index.pages.clear()
        index.max_in_flight = 0
        r = kea(*args, "--refresh", venv=venv)
        assert r.returncode == 0, r.stderr
        assert sorted(p.path for p in index.pages) == sorted(f"/simple/{n}/" for n in names)
        assert all(p.status == 304 for p in index.pages)
        # All four conditional requests were in flight at once, not one after the other.
        assert index.max_in_flight == len(names)


def test_refresh_and_offline(kea: Kea, index: RevalidatingIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    first = dry_run(kea, index, venv)
    index.pages.clear()
    index.requests.clear()

    # Both on the command line: they contradict each other (as in uv), one line and a hint.
    r = kea("pip", "install", "-i", index.url, "--dry-run", "--offline", "--refresh", "app",
            venv=venv)  # fmt: skip
    assert r.returncode == 2
    assert r.lines == [
        "error: --refresh and --offline contradict each other",
        "hint: --refresh asks the index again for every page; --offline never asks: drop one",
    ]

    # A refresh from elsewhere (env, file, --refresh-package) is ignored offline, with a warning.
    kea.env["KEA_REFRESH"] = "1"
    r = dry_run(kea, index, venv, "--offline")
    assert any("--refresh is ignored" in line and "--offline" in line for line in r.lines)
    assert [line for line in summary(r) if "ignored" not in line] == summary(first)
    del kea.env["KEA_REFRESH"]
    r = dry_run(kea, index, venv, "--offline", "--refresh-package", "lib")
    assert any("--refresh-package is ignored" in line for line in r.lines)
    assert index.pages == [] and index.requests == []
