"""``twine upload`` (the legacy upload API) into a writable directory route, then install."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import User, token
from tests.e2e.wheels import build_wheel
from tests.serve.harness import PY, Installer, KeaServe, Run, clean_env, has_module, run
from tests.serve.test_proxy import write_bcrypt_htpasswd


@dataclass
class UploadSetup:
    serve: KeaServe
    directory: Path
    uploader: User
    reader: User
    ci_token: str
    root: Path

    def twine(self, user: str, password: str, *files: Path) -> Run:
        if not has_module("twine"):
            pytest.skip("twine is not installed in the test environment (pip install twine)")
        argv = [
            PY,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            self.serve.url + "/",
            "-u",
            user,
            "-p",
            password,
            *map(str, files),
        ]
        return run(argv, clean_env(self.root / "twine-home"), self.root)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadSetup]:
    root = tmp_path_factory.mktemp("serve-upload")
    directory = root / "uploads"
    directory.mkdir()
    workdir = root / "serve"
    workdir.mkdir()
    uploader, reader = User("uploader", token("pw-up-")), User("reader", token("pw-rd-"))
    write_bcrypt_htpasswd(
        workdir / "htpasswd", {uploader.name: uploader.password, reader.name: reader.password}
    )
    ci_token = token("tok-ci-")
    (workdir / "tokens").write_text(f"# user token\nci {ci_token}\n")
    config = f"""
[auth]
htpasswd = "htpasswd"
tokens-file = "tokens"

[server]
cache-dir = "cache"

[[route]]
name = "uploads"
match = "*"
directory = "{directory}"
write = ["uploader", "ci"]
"""
    serve = KeaServe(workdir, config, ip="127.0.0.10")
    yield UploadSetup(serve, directory, uploader, reader, ci_token, root)
    serve.stop()


def test_twine_upload_then_install(up: UploadSetup, tmp_path: Path) -> None:
    w = build_wheel(tmp_path, "fresh-upload", "1.0")
    mark = up.serve.mark()
    result = up.twine(up.uploader.name, up.uploader.password, w)
    assert result.returncode == 0, result.output
    assert (up.directory / w.name).read_bytes() == w.read_bytes()
    posts = [a for a in up.serve.access(mark) if a.method == "POST"]
    assert [(a.user, a.status) for a in posts] == [("uploader", 200)]
    assert up.uploader.password not in up.serve.text()

    installer = Installer(tmp_path / "client")
    for client in ("pip", "kea"):
        result, venv = installer.install(client, up.serve.index, "fresh-upload")
        assert result.returncode == 0, result.output
        assert installer.version_of(venv, "fresh_upload") == "1.0"

    # the same file again: 409, and the file is untouched
    result = up.twine(up.uploader.name, up.uploader.password, w)
    assert result.returncode != 0 and "409" in result.output
    assert (up.directory / w.name).read_bytes() == w.read_bytes()


def test_tokens_and_permissions(up: UploadSetup, tmp_path: Path) -> None:
    w = build_wheel(tmp_path, "token-upload", "2.0")
    result = up.twine(up.reader.name, up.reader.password, w)
    assert result.returncode != 0 and "403" in result.output
    result = up.twine("uploader", "wrong-password", w)
    assert result.returncode != 0 and "401" in result.output
    assert not (up.directory / w.name).exists()
    result = up.twine("__token__", up.ci_token, w)
    assert result.returncode == 0, result.output
    assert (up.directory / w.name).exists()
    posts = [(a.user, a.status) for a in up.serve.access() if a.method == "POST"]
    assert ("ci", 200) in posts and ("reader", 403) in posts
    assert up.ci_token not in up.serve.text()


def _post(url: str, fields: dict[str, str], filename: str, data: bytes, auth: str) -> int:
    import aiohttp

    async def go() -> int:
        form = aiohttp.FormData()
        for k, v in fields.items():
            form.add_field(k, v)
        form.add_field("content", data, filename=filename)
        async with (
            aiohttp.ClientSession() as s,
            s.post(url, data=form, headers={"Authorization": auth}) as r,
        ):
            return r.status

    return asyncio.run(go())


def test_name_and_metadata_mismatch_are_400(up: UploadSetup, tmp_path: Path) -> None:
    w = build_wheel(tmp_path / "a", "real-name", "1.0")
    data = w.read_bytes()
    auth = up.uploader.header
    base = {":action": "file_upload", "sha256_digest": hashlib.sha256(data).hexdigest()}
    # form name differs from the file name
    fields = {**base, "name": "other-name", "version": "1.0"}
    assert _post(up.serve.url + "/", fields, w.name, data, auth) == 400
    # file name and form agree, the wheel's own METADATA does not
    renamed = "fake_name-1.0-py3-none-any.whl"
    fields = {**base, "name": "fake-name", "version": "1.0"}
    assert _post(up.serve.url + "/", fields, renamed, data, auth) == 400
    # version mismatch, bad digest, traversal in the file name
    fields = {**base, "name": "real-name", "version": "2.0"}
    assert _post(up.serve.url + "/", fields, w.name, data, auth) == 400
    fields = {
        ":action": "file_upload",
        "name": "real-name",
        "version": "1.0",
        "sha256_digest": "0" * 64,
    }
    assert _post(up.serve.url + "/", fields, w.name, data, auth) == 400
    fields = {**base, "name": "real-name", "version": "1.0"}
    assert _post(up.serve.url + "/", fields, "../../" + w.name, data, auth) == 400
    assert not (up.directory.parent / w.name).exists()
    assert _post(up.serve.url + "/", fields, w.name, data, auth) == 200
    assert (up.directory / w.name).read_bytes() == data
    assert not list(up.directory.glob("fake_name*"))
    assert not list(up.directory.glob(".tmp-*"))
    # no credentials at all: 401 with a Basic challenge, before the body is read
    import urllib.request

    req = urllib.request.Request(up.serve.url + "/", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("expected 401")
    except urllib.error.HTTPError as e:
        assert e.code == 401 and e.headers["WWW-Authenticate"] == 'Basic realm="kea"'
    shutil.rmtree(tmp_path / "a")


def test_another_spelling_of_an_uploaded_file_is_409(up: UploadSetup, tmp_path: Path) -> None:
    """``1.0.0`` is ``1.0``, ``Dup_Pkg`` and ``dup.pkg`` are ``dup-pkg``: such an upload was
    accepted beside the first, and installers then took one or the other (pip the second,
    kea the first; found by a black-box audit). A wheel of other tags is another file."""
    w = build_wheel(tmp_path, "dup-pkg", "1.0")
    data = w.read_bytes()
    auth = up.uploader.header
    fields = {":action": "file_upload", "name": "dup-pkg", "version": "1.0"}
    assert _post(up.serve.url + "/", fields, w.name, data, auth) == 200
    for spelling in (
        "dup_pkg-1.0.0-py3-none-any.whl",
        "dup_pkg-01.0-py3-none-any.whl",
        "Dup_Pkg-1.0-py3-none-any.whl",
        "dup.pkg-1.0-py3-none-any.whl",
    ):
        assert _post(up.serve.url + "/", fields, spelling, data, auth) == 409, spelling
    assert sorted(p.name for p in up.directory.glob("*dup*")) == [w.name]
    assert _post(up.serve.url + "/", fields, "dup_pkg-1.0-py2-none-any.whl", data, auth) == 200
