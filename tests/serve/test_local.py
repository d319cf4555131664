"""Directory routes through a real ``kea serve``: the Simple API, bad input, real installers."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.wheels import build_wheel
from tests.serve.conftest import Wheels
from tests.serve.harness import CLIENTS, Installer, KeaServe, http_get, raw_request

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def local_serve(
    tmp_path_factory: pytest.TempPathFactory, wheels: Wheels
) -> Iterator[tuple[KeaServe, Path]]:
    root = tmp_path_factory.mktemp("serve-local")
    directory = root / "packages"
    shutil.copytree(wheels.local_dir, directory)
    config = f"""
[server]
cache-dir = "cache"

[[route]]
name = "blocked"
match = "evil-*"
deny = true

[[route]]
name = "local"
match = "*"
directory = "{directory}"
"""
    serve = KeaServe(root / "serve", config, ip="127.0.0.4")
    yield serve, directory
    serve.stop()


def test_project_page_html_and_json(local_serve: tuple[KeaServe, Path], wheels: Wheels) -> None:
    serve, _ = local_serve
    digest = hashlib.sha256(wheels.local.read_bytes()).hexdigest()
    status, headers, body = http_get(serve.index + "local-pkg/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    href = f"/files/local/local-pkg/{wheels.local.name}#sha256={digest}"
    assert f'href="{href}"' in page
    assert 'data-core-metadata="sha256=' in page

    status, headers, body = http_get(serve.index + "local-pkg/", {"Accept": JSON})
    assert status == 200 and headers["Content-Type"] == JSON
    doc = json.loads(body)
    assert doc["meta"]["api-version"] == "1.1"
    assert doc["versions"] == ["2.0"]
    (entry,) = doc["files"]
    assert entry["hashes"] == {"sha256": digest}
    assert entry["size"] == wheels.local.stat().st_size
    assert entry["upload-time"].endswith("Z")
    meta_sha = entry["core-metadata"]["sha256"]

    # PEP 658: the metadata file exists, matches its advertised hash, and names the project
    status, _, meta = http_get(serve.url + entry["url"] + ".metadata")
    assert status == 200 and hashlib.sha256(meta).hexdigest() == meta_sha
    assert b"Name: local-pkg" in meta and b"Version: 2.0" in meta
    status, _, data = http_get(serve.url + entry["url"])
    assert status == 200 and data == wheels.local.read_bytes()

    # q-values: JSON offered but weighted below HTML -> HTML
    accept = f"{JSON};q=0.1, text/html;q=0.9"
    assert http_get(serve.index + "local-pkg/", {"Accept": accept})[1]["Content-Type"].startswith(
        "text/html"
    )
    assert http_get(serve.index + "local-pkg/", {"Accept": "application/xml"})[0] == 406


def test_project_list_redirects_and_etag(local_serve: tuple[KeaServe, Path]) -> None:
    serve, _ = local_serve
    status, _, body = http_get(serve.index, {"Accept": JSON})
    assert status == 200
    assert {p["name"] for p in json.loads(body)["projects"]} == {"local-pkg", "local-app"}
    for raw in ("Local_Pkg/", "local.pkg/", "local-pkg"):
        status, headers, _ = http_get(serve.index + raw)
        assert (status, headers["Location"]) == (301, "/simple/local-pkg/"), raw
    status, headers, _ = http_get(serve.index + "local-pkg/")
    etag = headers["ETag"]
    status, _, body = http_get(serve.index + "local-pkg/", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert http_get(serve.index + "evil-pkg/")[0] == 403
    assert http_get(serve.index + "nothing-here/")[0] == 404


def test_traversal_and_overlong_names_are_refused(local_serve: tuple[KeaServe, Path]) -> None:
    serve, _ = local_serve
    for target in (
        "/files/local/../../../etc/passwd",
        "/files/local/local-pkg/..%2f..%2f..%2fetc%2fpasswd",
        "/files/local/%2e%2e/%2e%2e/kea-serve.toml",
        "/simple/..%2F..%2Fetc/",
        "/files/local/local-pkg/%00.whl",
        "/files/local/local-pkg/..%5c..%5cx.whl",
    ):
        status, body = raw_request(serve.host, serve.port, target)
        assert status in (400, 404), target
        assert b"root:" not in body and b"[server]" not in body and b"Traceback" not in body
    status, body = raw_request(serve.host, serve.port, "/simple/" + "a" * 200 + "/")
    assert status == 400 and b"longer than 128" in body
    assert raw_request(serve.host, serve.port, "/simple/" + "a" * 5000 + "/")[0] in (400, 414)
    # a name that ends with a line break is not the project's (nor a cache file, nor a log line)
    for target in ("/simple/local-pkg%0A/", "/simple/local-pkg%0D%0A/", "/simple/local-pkg%0D/"):
        status, body = raw_request(serve.host, serve.port, target)
        assert status in (400, 404) and b"local_pkg" not in body, target
    # a file of another project, or one that is not in the directory, is never served
    assert http_get(serve.url + "/files/local/local-app/local_pkg-2.0-py3-none-any.whl")[0] == 404
    assert http_get(serve.url + "/files/local/local-pkg/kea-serve.toml")[0] == 404


def test_hashes_refresh_when_a_file_changes(
    local_serve: tuple[KeaServe, Path], tmp_path: Path
) -> None:
    serve, directory = local_serve
    first = build_wheel(tmp_path / "a", "changing-pkg", "1.0", module_text="A = 1\n")
    second = build_wheel(tmp_path / "b", "changing-pkg", "1.0", module_text="B = 2222\n")
    target = directory / first.name
    shutil.copy(first, target)
    doc = json.loads(http_get(serve.index + "changing-pkg/", {"Accept": JSON})[2])
    assert doc["files"][0]["hashes"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    shutil.copy(second, target)
    doc = json.loads(http_get(serve.index + "changing-pkg/", {"Accept": JSON})[2])
    assert doc["files"][0]["hashes"]["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    target.unlink()
    assert http_get(serve.index + "changing-pkg/")[0] == 404


@pytest.mark.parametrize("client", CLIENTS)
def test_real_clients_install_from_a_local_route(
    client: str, local_serve: tuple[KeaServe, Path], tmp_path: Path
) -> None:
    serve, _ = local_serve
    installer = Installer(tmp_path)
    mark = serve.mark()
    result, venv = installer.install(client, serve.index, "local-app")
    assert result.returncode == 0, result.output
    assert installer.version_of(venv, "local_app") == "1.0"
    assert installer.version_of(venv, "local_pkg") == "2.0"
    seen = serve.access(mark)
    paths = {a.path for a in seen}
    # what kea serve received: both project pages and both wheels (or their metadata), all 200
    assert "/simple/local-app/" in paths and "/simple/local-pkg/" in paths
    assert any(p.startswith("/files/local/local-app/local_app-1.0") for p in paths)
    assert "/files/local/local-pkg/local_pkg-2.0-py3-none-any.whl" in paths
    assert all(a.status in (200, 304) for a in seen), seen
