"""Bad input through ``kea pip install`` (issue 3's list) and PEP 592/700 data from a JSON page:
a one-line error, exit 1, nothing installed, the cache not poisoned."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.cache.wheelmaker import replace_member, with_hex_record
from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*")) / "site-packages"


def installed(venv: Path) -> list[str]:
    return sorted(p.name for p in site_packages(venv).iterdir() if not p.name.startswith("."))


def cache_holds(cache: Path, needle: bytes) -> bool:
    return any(p.is_file() and needle in p.read_bytes() for p in cache.rglob("*"))


@pytest.mark.parametrize("via", ["index", "find-links"])
def test_bad_wheels_are_refused_and_never_cached(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path, via: str
) -> None:
    w = small_index.directory
    replace_member(build_wheel(w, "badhash", "1.0"), "badhash/__init__.py", b"VERSION = 'EVIL-1'\n")
    build_wheel(w, "dotdot", "1.0", files={"dotdot/__init__.py": "", "../../escaped.py": "x=1"})
    build_wheel(w, "absolute", "1.0", files={"absolute/__init__.py": "", "/tmp/abs-evil.py": ""})
    build_wheel(w, "good", "1.0", requires=["badhash"])
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    source = ("-i", small_index.url) if via == "index" else ("--no-index", "-f", str(w))
    expected = {
        "badhash": "error: badhash-1.0-py3-none-any.whl: 'badhash/__init__.py' does not match "
        "its RECORD hash (sha256)",
        "dotdot": "error: dotdot-1.0-py3-none-any.whl: refusing path '../../escaped.py' that "
        "escapes the install target",
        "absolute": "error: absolute-1.0-py3-none-any.whl: refusing path '/tmp/abs-evil.py' "
        "that escapes the install target",
    }
    for name, error in expected.items():
        for _ in range(2):  # the second attempt fails the same way: nothing bad was cached
            r = kea("pip", "install", *source, name, venv=venv)
            assert r.returncode == 1, r.stderr
            errors = [line for line in r.lines if line.startswith("error:")]
            assert errors == [error]
            assert "Traceback" not in r.stderr
            assert installed(venv) == []
    # a good package depending on a bad one: nothing of it installed either
    r = kea("pip", "install", *source, "good", venv=venv)
    assert r.returncode == 1 and installed(venv) == []
    assert not (tmp_path / "escaped.py").exists() and not Path("/tmp/abs-evil.py").exists()
    assert not cache_holds(Path(kea.env["KEA_CACHE_DIR"]), b"EVIL-1")


@pytest.mark.parametrize("via", ["index", "find-links"])
def test_a_wheel_whose_dist_info_is_not_utf8_is_refused_in_one_line(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path, via: str
) -> None:
    w = small_index.directory
    wheel_file = (
        b"Wheel-Version: 1.0\nGenerator: caf\xe9\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    build_wheel(w, "latin", "1.0", wheel_file=wheel_file)
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    source = ("-i", small_index.url) if via == "index" else ("--no-index", "-f", str(w))
    for _ in range(2):  # the second time from the cache, where the archive is unpacked
        r = kea("pip", "install", *source, "latin", venv=venv)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and "bug in kea" not in r.stderr
        errors = [line for line in r.lines if line.startswith("error:")]
        # named by its file name, not by the digest that names its archive in the cache
        assert errors == [
            "error: invalid wheel latin-1.0-py3-none-any.whl: latin-1.0.dist-info/WHEEL is not "
            "UTF-8 (invalid continuation byte at byte 33)"
        ]
        assert "hint: the wheel is malformed; nothing was installed" in r.lines
        assert installed(venv) == []


@pytest.mark.parametrize("via", ["index", "find-links"])
def test_a_wheel_with_an_invalid_entry_point_is_named_by_its_file_name(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path, via: str
) -> None:
    build_wheel(small_index.directory, "badep", "1.0", console_scripts={"bad": "nocolon"})
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    source = (
        ("-i", small_index.url)
        if via == "index"
        else ("--no-index", "-f", str(small_index.directory))
    )
    for _ in range(2):
        r = kea("pip", "install", *source, "badep", venv=venv)
        assert r.returncode == 1, r.stderr
        errors = [line for line in r.lines if line.startswith("error:")]
        assert errors == ["error: badep-1.0-py3-none-any.whl: invalid entry point bad = nocolon"]
        assert installed(venv) == [] and not (venv / "bin" / "bad").exists()


def test_a_wheel_whose_record_digests_are_in_hex_installs_and_uninstalls(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    # uv_build before 0.8.13 wrote RECORD digests in hex (astral-sh/uv#15400); pip and uv
    # install such wheels without checking RECORD, kea checks them as hex.
    wheel = build_wheel(
        small_index.directory,
        "hexrec",
        "1.0",
        files={"hexrec/__init__.py": "V = 1\n"},
        console_scripts={"hexrec-cli": "hexrec:main"},
    )
    with_hex_record(wheel)
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", small_index.url, "hexrec", venv=venv)
    assert r.returncode == 0, r.stderr
    site = site_packages(venv)
    assert (site / "hexrec" / "__init__.py").read_text() == "V = 1\n"
    assert (venv / "bin" / "hexrec-cli").exists()
    record = (site / "hexrec-1.0.dist-info" / "RECORD").read_text()
    digest = hashlib.sha256(b"V = 1\n").hexdigest()
    assert f"hexrec/__init__.py,sha256={digest}," in record  # as the wheel has it, as pip does
    r = kea("pip", "uninstall", "hexrec", venv=venv)
    assert r.returncode == 0, r.stderr
    assert installed(venv) == [] and not (venv / "bin" / "hexrec-cli").exists()


def test_pages_that_are_not_indexes(kea: Kea, small_index: SimpleIndex, tmp_path: Path) -> None:
    login = b'<html><body><form action="/login"><input name="password"></form></body></html>'
    small_index.canned["login"] = ("text/html", login)
    small_index.canned["badjson"] = (
        JSON_TYPE,
        json.dumps({"meta": {"api-version": "1.0"}}).encode(),
    )
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", small_index.url, "login", venv=venv)
    assert r.returncode == 1
    assert r.lines[0] == (
        f"error: {small_index.url}/login/ is not a package index page "
        "(it is an HTML form, perhaps a login page)"
    )
    r = kea("pip", "install", "-i", small_index.url, "badjson", venv=venv)
    assert r.returncode == 1 and len(r.lines) <= 2, r.stderr
    assert r.lines[0].startswith("error: ") and "badjson" in r.lines[0]
    assert "Traceback" not in r.stderr and installed(venv) == []


def test_exit_codes(kea: Kea, small_index: SimpleIndex, tmp_path: Path) -> None:
    build_wheel(small_index.directory, "ok", "1.0")
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    assert kea("pip", "install", "-i", small_index.url, "ok", venv=venv).returncode == 0
    assert kea("pip", "install", "-i", small_index.url, "foo>=>1", venv=venv).returncode == 1
    assert kea("pip", "install", "-r", "missing.txt", venv=venv).returncode == 1
    assert kea("pip", "install", "-i", small_index.url, "nothere", venv=venv).returncode == 1
    assert kea("pip", "install", "--no-such-flag", "ok", venv=venv).returncode == 2
    assert kea("pip", "install", venv=venv).returncode == 2  # no requirements: usage


def test_json_page_yanked_requires_python_and_upload_time(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    w = small_index.directory
    wheels = {v: build_wheel(w, "demo", v) for v in ("1.0", "1.1", "1.2", "2.0")}
    small_index.scan()

    def entry(version: str, **extra: object) -> dict[str, object]:
        path = wheels[version]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"filename": path.name, "url": f"/files/{path.name}",
                "hashes": {"sha256": digest}, **extra}  # fmt: skip

    page = {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "versions": ["1.0", "1.1", "1.2", "2.0"],
        "files": [
            entry("1.0", **{"upload-time": "2023-01-01T00:00:00Z"}),
            entry("1.1", yanked="broken", **{"upload-time": "2023-06-01T00:00:00Z"}),
            entry("1.2", **{"requires-python": ">=3.99", "upload-time": "2023-07-01T00:00:00Z"}),
            entry("2.0", **{"upload-time": "2024-06-01T00:00:00Z"}),
        ],
    }
    small_index.canned["demo"] = (JSON_TYPE, json.dumps(page).encode())
    venv = kea.venv(tmp_path / "venv")

    def dry(*args: str) -> list[str]:
        r = kea("pip", "install", "--dry-run", "-i", small_index.url, *args, venv=venv)
        return [line.strip() for line in r.lines if line.startswith((" + ", "error", "hint"))]

    assert dry("demo") == ["+ demo==2.0"]
    assert dry("demo<2") == ["+ demo==1.0"]  # 1.2 needs another Python, 1.1 is yanked
    assert dry("demo==1.1") == ["+ demo==1.1"]  # a yanked version pinned with == is allowed
    assert dry("--exclude-newer", "2024-01-01", "demo") == ["+ demo==1.0"]
    lines = dry("--exclude-newer", "2022-12-31", "demo")
    assert lines[0].startswith("error: No solution found")
    assert lines[-1] == (
        "hint: no file of demo is usable: 1 for another Python version, "
        "1 yanked (pin one with == to use it), 2 published after --exclude-newer"
    )
