"""``kea pip install`` end to end on small universes of wheels built here, served on loopback."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.pip.conftest import Kea, Result
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

APP_MAIN = 'import lib\n\ndef main():\n    print("hello from app, lib", lib.VERSION)\n'


def summary(r: Result) -> list[str]:
    """stderr with timings replaced by <t>, for exact comparisons."""
    return [re.sub(r" in \d+(\.\d\d)?m?s$", " in <t>", line) for line in r.lines]


@pytest.fixture
def universe(small_index: SimpleIndex) -> SimpleIndex:
    wheels = small_index.directory
    build_wheel(
        wheels,
        "app",
        "1.0",
        requires=["lib>=1"],
        files={"app/__init__.py": APP_MAIN},
        console_scripts={"app-hello": "app:main"},
    )
    build_wheel(wheels, "lib", "1.0")
    build_wheel(wheels, "lib", "2.0")
    build_wheel(wheels, "lib", "3.0rc1")
    build_wheel(wheels, "needs-new-lib", "1.0", requires=["lib>=4"])
    build_wheel(wheels, "extra-user", "1.0", extras={"fast": ["speedup"]})
    build_wheel(wheels, "speedup", "0.5")
    small_index.scan()
    return small_index


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*")) / "site-packages"


def run_python(venv: Path, code: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_install_then_import_run_script_and_audit(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "--index-url", universe.url, "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r) == [
        "Resolved 2 packages in <t>",
        "Prepared 2 packages in <t>",
        "Installed 2 packages in <t>",
        " + app==1.0",
        " + lib==2.0",
    ]
    assert r.stdout == ""
    assert run_python(venv, "import app, lib; print(lib.VERSION)") == "2.0"
    script = subprocess.run(
        [str(venv / "bin" / "app-hello")], capture_output=True, text=True, check=True
    )
    assert script.stdout == "hello from app, lib 2.0\n"
    dist_info = site_packages(venv) / "app-1.0.dist-info"
    assert (dist_info / "INSTALLER").read_text().strip() == "kea"
    assert (dist_info / "REQUESTED").exists()
    assert not (site_packages(venv) / "lib-2.0.dist-info" / "REQUESTED").exists()

    # The second time, everything is there: answered from the environment, no request at all.
    universe.requests.clear()
    again = kea("pip", "install", "--index-url", universe.url, "app", venv=venv)
    assert again.returncode == 0, again.stderr
    assert summary(again) == ["Audited 2 packages in <t>"]
    assert universe.requests == []


def test_dry_run_changes_nothing(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", universe.url, "--dry-run", "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r) == [
        "Resolved 2 packages in <t>",
        "Would download 2 packages",
        "Would install 2 packages",
        " + app==1.0",
        " + lib==2.0",
    ]
    assert not list(site_packages(venv).glob("*.dist-info"))
    assert not any(p.endswith(".whl") for p in universe.requests)


def test_upgrade_and_preferences(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    assert kea("pip", "install", "-i", universe.url, "lib==1.0", venv=venv).returncode == 0
    # app needs lib>=1: the installed lib 1.0 is kept
    r = kea("pip", "install", "-i", universe.url, "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-1:] == [" + app==1.0"]
    assert "Installed 1 package in <t>" in summary(r)
    # -U moves lib to the newest final release (not the 3.0rc1 pre-release)
    r = kea("pip", "install", "-i", universe.url, "-U", "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-4:] == [
        "Uninstalled 1 package in <t>",
        "Installed 1 package in <t>",
        " - lib==1.0",
        " + lib==2.0",
    ]
    assert run_python(venv, "import lib; print(lib.VERSION)") == "2.0"
    assert not (site_packages(venv) / "lib-1.0.dist-info").exists()
    # --pre allows the release candidate
    r = kea("pip", "install", "-i", universe.url, "--pre", "-P", "lib", "lib", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-2:] == [" - lib==2.0", " + lib==3.0rc1"]


def test_extras_constraints_and_no_deps(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    (kea.cwd / "c.txt").write_text("lib<2\n")
    args = ["-i", universe.url, "-c", "c.txt", "app", "extra-user[fast]"]
    r = kea("pip", "install", *args, venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-4:] == [
        " + app==1.0",
        " + extra-user==1.0",
        " + lib==1.0",
        " + speedup==0.5",
    ]
    # the extra's dependency counts as needed when auditing
    again = kea("pip", "install", *args, venv=venv)
    assert summary(again) == ["Audited 4 packages in <t>"]

    other = kea.venv(tmp_path / "other")
    r = kea("pip", "install", "-i", universe.url, "--no-deps", "app", venv=other)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-1:] == [" + app==1.0"]
    assert "Resolved 1 package in <t>" in summary(r)


def test_requirements_file_with_index_and_hashes(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    wheels = universe.directory
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in wheels.glob("*.whl")}
    req = kea.cwd / "requirements.txt"
    req.write_text(
        f"--index-url {universe.url}\n"
        f"app==1.0 --hash=sha256:{digest['app-1.0-py3-none-any.whl']}\n"
        f"lib==2.0 \\\n    --hash=sha256:{'0' * 64} \\\n"
        f"    --hash=sha256:{digest['lib-2.0-py3-none-any.whl']}\n"
    )
    r = kea("pip", "install", "--require-hashes", "-r", "requirements.txt", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-2:] == [" + app==1.0", " + lib==2.0"]

    bad = kea.venv(tmp_path / "bad")
    req.write_text(
        f"-i {universe.url}\n"
        f"app==1.0 --hash=sha256:{digest['app-1.0-py3-none-any.whl']}\n"
        f"lib==2.0 --hash=sha256:{'0' * 64}\n"
    )
    r = kea("pip", "install", "-r", "requirements.txt", venv=bad)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert not list(site_packages(bad).glob("*.dist-info"))


def test_direct_wheel_path(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    wheel = build_wheel(tmp_path / "local", "localpkg", "0.1", requires=["lib<2"])
    r = kea("pip", "install", "-i", universe.url, str(wheel), venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-2:] == [" + lib==1.0", " + localpkg==0.1"]
    direct = (site_packages(venv) / "localpkg-0.1.dist-info" / "direct_url.json").read_text()
    assert wheel.resolve().as_uri() in direct


def test_direct_url_json_keeps_no_credential_of_the_url(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    """PEP 610: no credentials in direct_url.json, which is world-readable; a signed query's
    values are credentials as much as a password is."""
    build_wheel(small_index.directory, "signed", "1.0")
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    base = small_index.url.replace("/simple", "/files/signed-1.0-py3-none-any.whl")
    url = (
        base.replace("://", "://user:PW-SECRET@")
        + "?X-Amz-Signature=SIG-SECRET&token=TOK-SECRET&v=2"
    )
    r = kea("pip", "install", f"signed @ {url}", venv=venv)
    assert r.returncode == 0, r.stderr
    text = (site_packages(venv) / "signed-1.0.dist-info" / "direct_url.json").read_text()
    assert json.loads(text)["url"] == f"{base}?X-Amz-Signature=****&token=****&v=2"
    for secret in ("PW-SECRET", "SIG-SECRET", "TOK-SECRET"):
        assert secret not in text and secret not in r.stdout + r.stderr


def test_direct_url_json_keeps_a_url_with_an_at_in_its_path(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    """Masking for display takes an "@" in a path for a mistyped password and hides the host;
    direct_url.json keeps the URL whole (only secret query values are masked there)."""
    build_wheel(small_index.directory, "atpath", "1.0")
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    base = small_index.url.replace("/simple", "/files/atpath-1.0-py3-none-any.whl")
    url = base + "?at=a@b"
    r = kea("pip", "install", f"atpath @ {url}", venv=venv)
    assert r.returncode == 0, r.stderr
    text = (site_packages(venv) / "atpath-1.0.dist-info" / "direct_url.json").read_text()
    assert json.loads(text)["url"] == url


def test_another_file_of_an_installed_version_is_installed(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """A wheel given by path (or URL) replaces the installed copy of the same version when it
    is another file, as uv does; kea kept the first and said "Audited 1 package" (found by a
    black-box audit). The same file again changes nothing."""
    venv = kea.venv(tmp_path / "venv")
    first = build_wheel(tmp_path / "w1", "samever", "1.0", files={"samever/__init__.py": "V = 1\n"})
    second = build_wheel(
        tmp_path / "w2", "samever", "1.0", files={"samever/__init__.py": "V = 2\n"}
    )
    init = site_packages(venv) / "samever" / "__init__.py"
    for wheel, text in ((first, "V = 1\n"), (second, "V = 2\n")):
        r = kea("pip", "install", str(wheel), venv=venv)
        assert r.returncode == 0, r.stderr
        assert init.read_text() == text
    assert summary(r)[-2:] == [" - samever==1.0", " + samever==1.0"]
    r = kea("pip", "install", str(second), venv=venv)
    assert r.returncode == 0 and "Audited 1 package" in r.stderr, r.stderr
    # installed from the index, then asked for by URL: that file is installed
    r = kea("pip", "install", "-i", universe.url, "lib==1.0", venv=venv)
    assert r.returncode == 0, r.stderr
    local = build_wheel(tmp_path / "w3", "lib", "1.0", files={"lib/__init__.py": "MINE = 1\n"})
    r = kea("pip", "install", f"lib @ {local.resolve().as_uri()}", venv=venv)
    assert r.returncode == 0, r.stderr
    assert (site_packages(venv) / "lib" / "__init__.py").read_text() == "MINE = 1\n"


def test_a_url_in_a_constraints_file_says_where_the_package_comes_from(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """``lib @ URL`` in a -c file: lib, when something needs it, is that file (pip and uv read
    it so); kea kept the name and dropped the URL (found by a black-box audit)."""
    venv = kea.venv(tmp_path / "venv")
    local = build_wheel(tmp_path / "w", "lib", "1.0", files={"lib/__init__.py": "MINE = 1\n"})
    constraints = tmp_path / "c.txt"
    constraints.write_text(f"lib @ {local.resolve().as_uri()}\n")
    r = kea("pip", "install", "-i", universe.url, "-c", str(constraints), "app==1.0", venv=venv)
    assert r.returncode == 0, r.stderr
    assert (site_packages(venv) / "lib" / "__init__.py").read_text() == "MINE = 1\n"
    assert (
        local.resolve().as_uri()
        in (site_packages(venv) / "lib-1.0.dist-info" / "direct_url.json").read_text()
    )
    # a package nothing needs is not installed for a constraint
    other = kea.venv(tmp_path / "other")
    r = kea("pip", "install", "-i", universe.url, "-c", str(constraints), "speedup",
            "--dry-run", venv=other)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [line.strip() for line in r.stderr.splitlines() if line.startswith(" +")] == [
        "+ speedup==0.5"
    ]


@pytest.mark.parametrize("flag", [("--reinstall",), ("--reinstall-package", "lib")])
def test_a_reinstalled_package_is_resolved_anew(
    kea: Kea, universe: SimpleIndex, tmp_path: Path, flag: tuple[str, ...]
) -> None:
    """--reinstall(-package) kept the installed version (lib 1.0 over a newer 2.0); uv and
    pip --force-reinstall resolve it again (found by a black-box audit)."""
    venv = kea.venv(tmp_path / "venv")
    assert kea("pip", "install", "-i", universe.url, "lib==1.0", venv=venv).returncode == 0
    r = kea("pip", "install", "-i", universe.url, *flag, "lib", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-2:] == [" - lib==1.0", " + lib==2.0"]


def test_unsatisfiable_is_explained(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", universe.url, "needs-new-lib", venv=venv)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.lines[0] == "error: No solution found when resolving dependencies:"
    text = r.stderr
    assert "lib>=4" in text
    assert "needs-new-lib" in text
    assert not list(site_packages(venv).glob("*.dist-info"))


def test_missing_package_and_sdist_only(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    sdist = universe.directory / "srconly-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz"):
        pass
    universe.scan()
    r = kea("pip", "install", "-i", universe.url, "srconly", venv=venv)
    assert r.returncode == 1
    assert "building from source is not supported yet: srconly-1.0.tar.gz" in r.stderr
    r = kea("pip", "install", "-i", universe.url, "no-such-package", venv=venv)
    assert r.returncode == 1
    assert "no-such-package" in r.stderr
    assert "not found" in r.stderr


def test_find_links_no_index_and_quiet(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    wheels = str(universe.directory)
    r = kea("pip", "install", "-q", "--no-index", "-f", wheels, "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
    assert universe.requests == []
    assert run_python(venv, "import app, lib; print(lib.VERSION)") == "2.0"
    # the same from a requirements file carrying the options
    other = kea.venv(tmp_path / "other")
    (kea.cwd / "req.txt").write_text(f"--no-index\n--find-links {wheels}\nlib<2\n")
    r = kea("pip", "install", "-r", "req.txt", venv=other)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-1:] == [" + lib==1.0"]
    assert universe.requests == []


def test_reinstall_compile_and_offline(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", universe.url, "--compile-bytecode", "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert list((site_packages(venv) / "lib" / "__pycache__").glob("__init__.*.pyc"))
    r = kea("pip", "install", "-i", universe.url, "--reinstall-package", "app", "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-2:] == [" - app==1.0", " + app==1.0"]
    r = kea("pip", "install", "-i", universe.url, "--reinstall", "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-4:] == [" - app==1.0", " + app==1.0", " - lib==2.0", " + lib==2.0"]

    # a fresh environment from the warm cache, without the network
    universe.requests.clear()
    fresh = kea.venv(tmp_path / "fresh")
    r = kea("pip", "install", "--offline", "-i", universe.url, "app", venv=fresh)
    assert r.returncode == 0, r.stderr
    assert summary(r)[-2:] == [" + app==1.0", " + lib==2.0"]
    assert universe.requests == []
    # something never fetched cannot be had offline: one clear line
    r = kea("pip", "install", "--offline", "-i", universe.url, "speedup", venv=fresh)
    assert r.returncode == 1
    assert "--offline" in r.stderr and "Traceback" not in r.stderr
