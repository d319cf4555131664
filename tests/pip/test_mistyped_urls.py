"""A mistyped URL that carries a credential is refused without printing the credential.

The parser finds no userinfo in ``http:/u:p@h``, ``u:p@h/simple`` (no scheme), or a password
holding ``/``, ``?`` or ``#`` (written unencoded), and kea's messages quote the URL they refuse:
each form through each place a URL comes from, at ``-vvv``, against a real index on loopback
that a correct URL reaches. (Found by a black-box audit of session 33.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

SECRET = "s3cr3t-PW-xyzzy"
# every piece of the secret that a split at "/", "?" or "#" could print
PIECES = ("s3cr3t", "PW-xyzzy", SECRET)


def _forms(host: str) -> dict[str, str]:
    return {
        "one slash": f"http:/user-qq:{SECRET}@{host}/simple",
        "no slash": f"http:user-qq:{SECRET}@{host}/simple",
        "backslashes": f"http:\\\\user-qq:{SECRET}@{host}/simple",
        "no scheme": f"user-qq:{SECRET}@{host}/simple",
        "token, no scheme": f"{SECRET}@{host}/simple",
        "slash in password": f"http://user-qq:s3cr3t/-PW-xyzzy@{host}/simple",
        "hash in password": f"http://user-qq:s3cr3t#-PW-xyzzy@{host}/simple",
        "question mark in password": f"http://user-qq:s3cr3t?-PW-xyzzy@{host}/simple",
    }


FORMS = list(_forms("h"))
WHERE = ["--index-url", "--extra-index-url", "KEA_INDEX_URL", "--find-links", "direct reference"]


@pytest.fixture
def index(small_index: SimpleIndex) -> SimpleIndex:
    build_wheel(small_index.directory, "alpha", "1.0")
    small_index.scan()
    return small_index


def _clean(text: str) -> None:
    for piece in PIECES:
        assert piece not in text, text


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("form", FORMS)
def test_mistyped_url_is_refused_without_its_secret(
    kea: Kea, index: SimpleIndex, tmp_path: Path, form: str, where: str
) -> None:
    host = index.url.split("//", 1)[1].split("/", 1)[0]
    url = _forms(host)[form]
    venv = kea.venv(tmp_path / "v")
    args = ["pip", "install", "-vvv"]
    if where == "--index-url":
        args += ["--index-url", url, "alpha"]
    elif where == "--extra-index-url":
        args += ["--index-url", index.url, "--extra-index-url", url, "alpha"]
    elif where == "KEA_INDEX_URL":
        kea.env["KEA_INDEX_URL"] = url
        args += ["alpha"]
    elif where == "--find-links":
        args += ["--no-index", "--find-links", url, "alpha"]
    else:
        args += ["--index-url", index.url, f"alpha @ {url}/alpha-1.0-py3-none-any.whl"]
    r = kea(*args, venv=venv)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert any(line.startswith("error: ") for line in r.lines), r.stderr
    _clean(r.stdout + r.stderr)
    assert not list((venv / "lib").glob("python3*/site-packages/alpha*"))


@pytest.mark.parametrize("form", FORMS)
def test_auth_check_of_a_mistyped_url_shows_no_secret(
    kea: Kea, index: SimpleIndex, form: str
) -> None:
    host = index.url.split("//", 1)[1].split("/", 1)[0]
    r = kea("auth", "check", "-vvv", _forms(host)[form] + "/alpha/")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    _clean(r.stdout + r.stderr)


def test_a_port_that_is_a_piece_of_password_gets_a_hint(
    kea: Kea, index: SimpleIndex, tmp_path: Path
) -> None:
    host = index.url.split("//", 1)[1].split("/", 1)[0]
    url = f"http://user-qq:s3cr3t/-PW-xyzzy@{host}/simple"
    r = kea("auth", "check", url + "/alpha/")
    assert r.returncode == 2
    _clean(r.stdout + r.stderr)
    assert "its port is not a number" in r.stderr
    assert "percent-encoded" in r.stderr
