"""``kea pip install`` options end to end (the CLI, real venvs, loopback indexes): where it
installs (--python VERSION, --system, --target, --prefix), --link-mode, --resolution,
--prerelease, --overrides, --no-binary/--only-binary and the index strategies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e


def plus(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith((" + ", " - "))]


def site_packages(root: Path) -> Path:
    return next((root / "lib").glob("python3.*")) / "site-packages"


@pytest.fixture
def universe(small_index: SimpleIndex) -> SimpleIndex:
    w = small_index.directory
    main = "import lib\ndef main():\n    print('hi', lib.VERSION)\n"
    build_wheel(w, "app", "1.0", requires=["lib>=1"], console_scripts={"app-hello": "app:main"},
                files={"app/__init__.py": main})  # fmt: skip
    for v in ("1.0", "2.0", "3.0rc1"):
        build_wheel(w, "lib", v)
    build_wheel(w, "onlypre", "1.0b1")
    build_wheel(w, "direct", "1.0", requires=["lib"])
    build_wheel(w, "direct", "2.0", requires=["lib"])
    small_index.scan()
    return small_index


@pytest.fixture
def second_index(tmp_path: Path) -> Iterator[SimpleIndex]:
    w = tmp_path / "wheels2"
    for v in ("0.5", "3.0"):
        build_wheel(w, "lib", v)
    with SimpleIndex(w) as index:
        yield index


def test_target_prefix_and_python_path(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    target = tmp_path / "target"
    r = kea("pip", "install", "--target", str(target), "-i", universe.url, "app", venv=venv)
    assert r.returncode == 0, r.stderr
    assert plus(r.stderr) == ["+ app==1.0", "+ lib==2.0"]
    assert (target / "app" / "__init__.py").is_file() and (target / "lib-2.0.dist-info").is_dir()
    assert (target / "bin" / "app-hello").is_file()
    assert not (site_packages(venv) / "app").exists()
    # the environment lock sits in the --target directory itself; nothing else of kea's is left
    assert (target / ".kea.lock").is_file()
    assert not [p.name for p in target.iterdir() if p.name.startswith(".kea-")]
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import app; app.main()"],
                         env={**os.environ, "PYTHONPATH": str(target)},
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout == "hi 2.0\n"

    prefix = tmp_path / "prefix"
    py = str(venv / "bin" / "python")
    r = kea("pip", "install", "--python", py, "--prefix", str(prefix), "-i", universe.url, "app")
    assert r.returncode == 0, r.stderr
    assert (site_packages(prefix) / "lib" / "__init__.py").is_file()
    assert (prefix / "bin" / "app-hello").is_file()
    assert not (site_packages(venv) / "app").exists()
    # the lock is at the prefix root (like uv's venv-root .lock): site-packages holds no kea file
    assert (prefix / ".kea.lock").is_file()
    assert not [p.name for p in site_packages(prefix).iterdir() if p.name.startswith(".kea")]
    # --python PATH without VIRTUAL_ENV: the venv of that interpreter
    r = kea("pip", "install", "--python", py, "-i", universe.url, "lib==1.0")
    assert r.returncode == 0, r.stderr
    assert (site_packages(venv) / "lib-1.0.dist-info").is_dir()
    assert (venv / ".kea.lock").is_file()
    assert not [p.name for p in site_packages(venv).iterdir() if p.name.startswith(".kea")]


def test_python_version_and_system_dry_run(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    # A version finds a venv, or needs --system (as uv): it took the interpreter on PATH.
    r = kea("pip", "install", "--python", version, "--dry-run", "-i", universe.url, "lib")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"error: No virtual environment found for Python {version};")
    assert f"hint: or create one: kea venv --python {version}" in r.stderr
    r = kea("pip", "install", "--python", version, "--system", "--dry-run", "-i", universe.url,
            "lib")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Would install 1 package" in r.stderr and plus(r.stderr) == ["+ lib==2.0"]
    r = kea("pip", "install", "--system", "--dry-run", "-i", universe.url, "lib")
    assert r.returncode == 0, r.stderr
    assert plus(r.stderr) == ["+ lib==2.0"]
    r = kea("pip", "list", "--python", version)  # reading it needs no --system
    assert r.returncode == 0, r.stderr
    # ...and the active venv, of that version, is the one it finds
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "--python", version, "-i", universe.url, "lib", venv=venv)
    assert r.returncode == 0, r.stderr
    assert (next((venv / "lib").glob("python3.*")) / "site-packages" / "lib").is_dir()
    r = kea("pip", "install", "--python", "2.1", "-i", universe.url, "lib")
    assert r.returncode == 1 and r.stderr.startswith("error: "), r.stderr


@pytest.mark.parametrize("mode", ["clone", "hardlink", "copy", "symlink"])
def test_link_mode(kea: Kea, universe: SimpleIndex, tmp_path: Path, mode: str) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "--link-mode", mode, "-i", universe.url, "app", venv=venv)
    assert r.returncode == 0, r.stderr
    module = site_packages(venv) / "lib" / "__init__.py"
    assert module.read_text() == 'VERSION = "2.0"\n'
    if mode == "symlink":
        assert module.is_symlink()
    elif mode == "hardlink":
        assert module.stat().st_nlink > 1 and not module.is_symlink()
    else:  # copy, or clone (a reflink where supported, else a copy): an independent file
        assert module.stat().st_nlink == 1 and not module.is_symlink()
    script = subprocess.run([str(venv / "bin" / "app-hello")], capture_output=True, text=True)
    assert script.stdout == "hi 2.0\n"
    # uninstalling never touches the cache's archive
    assert kea("pip", "uninstall", "lib", venv=venv).returncode == 0
    again = kea("pip", "install", "--link-mode", mode, "-i", universe.url, "lib", venv=venv)
    assert again.returncode == 0 and module.read_text() == 'VERSION = "2.0"\n'


def test_resolution_prerelease_overrides_binary(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")

    def dry(*args: str) -> list[str]:
        r = kea("pip", "install", "--dry-run", "-i", universe.url, *args, venv=venv)
        return plus(r.stderr) or [line for line in r.lines if line.startswith(("error", "hint"))]

    assert dry("direct") == ["+ direct==2.0", "+ lib==2.0"]
    assert dry("--resolution", "lowest", "direct") == ["+ direct==1.0", "+ lib==1.0"]
    assert dry("--resolution", "lowest-direct", "direct") == ["+ direct==1.0", "+ lib==2.0"]

    assert dry("--prerelease", "allow", "lib") == ["+ lib==3.0rc1"]
    assert dry("--pre", "lib") == ["+ lib==3.0rc1"]
    assert dry("lib>=3.0rc1") == ["+ lib==3.0rc1"]  # explicit
    assert dry("onlypre") == ["+ onlypre==1.0b1"]  # if necessary
    assert dry("--prerelease", "explicit", "onlypre>=1.0b1") == ["+ onlypre==1.0b1"]
    for mode in ("disallow", "explicit"):
        lines = dry("--prerelease", mode, "onlypre")
        assert lines[0] == "error: No solution found when resolving dependencies:"
        assert (
            "hint: only pre-releases of onlypre match (onlypre==1.0b1); "
            "pass --prerelease allow to use them"
        ) in lines
    lines = dry("--prerelease", "if-necessary", "lib>=3.0rc1")  # lib has final releases
    assert "hint: only pre-releases of lib match (lib==3.0rc1); " in lines[-1]

    (kea.cwd / "overrides.txt").write_text("lib==1.0\n")
    assert dry("--overrides", "overrides.txt", "app", "lib>=2") == ["+ app==1.0", "+ lib==1.0"]

    lines = dry("--no-binary", "lib", "lib")
    assert lines[-1].startswith("hint: --no-binary forbids the wheels of lib")
    assert dry("--no-binary", ":all:", "--only-binary", "lib", "lib") == ["+ lib==2.0"]


def test_index_strategies(
    kea: Kea, universe: SimpleIndex, second_index: SimpleIndex, tmp_path: Path
) -> None:
    """--extra-index-url comes first; the default index (-i) is last."""
    venv = kea.venv(tmp_path / "venv")
    urls = ("-i", second_index.url, "--extra-index-url", universe.url)

    def dry(strategy: str, req: str) -> list[str]:
        r = kea("pip", "install", "--dry-run", *urls, "--index-strategy", strategy, req, venv=venv)
        return plus(r.stderr) or [line for line in r.lines if line.startswith(("error", "hint"))]

    assert dry("first-index", "lib") == ["+ lib==2.0"]
    lines = dry("first-index", "lib>=3")
    assert lines[0].startswith("error: No solution found")
    assert lines[1] == (
        f"hint: lib has other versions (3.0, 0.5) on {second_index.url}, which --index-strategy "
        "first-index does not consider (only the first index that has lib is used); pass "
        "--index-strategy unsafe-best-match to consider every index"
    )
    # unsafe-first-match: the first index's versions are exhausted before the next index's
    assert dry("unsafe-first-match", "lib") == ["+ lib==2.0"]
    assert dry("unsafe-first-match", "lib>=3") == ["+ lib==3.0"]
    assert dry("unsafe-first-match", "lib<1") == ["+ lib==0.5"]
    # unsafe-best-match: the best version anywhere
    assert dry("unsafe-best-match", "lib") == ["+ lib==3.0"]
    assert dry("unsafe-best-match", "lib<1") == ["+ lib==0.5"]


def test_an_externally_managed_interpreter_is_refused_without_the_flag(
    kea: Kea, universe: SimpleIndex
) -> None:
    """PEP 668: Debian marks its Python (the machine kind this project runs on has one); kea
    installed into it, where pip and uv refuse (found by a black-box audit). --dry-run: the
    refusal comes before anything is resolved, and the test must never change this Python."""
    import glob

    marked = [
        exe
        for exe in sorted(glob.glob("/usr/bin/python3.[0-9]*"))
        if exe[-1].isdigit()
        and glob.glob(f"/usr/lib/python{exe.rsplit('python', 1)[1]}/EXTERNALLY-MANAGED")
    ]
    assert marked, "no Debian-marked interpreter (/usr/lib/python3.X/EXTERNALLY-MANAGED) here"
    exe = marked[0]
    for args in ((), ("--system",)):
        r = kea("pip", "install", "--python", exe, *args, "--dry-run", "-i", universe.url, "lib")
        assert r.returncode == 1, r.stderr
        lines = r.stderr.splitlines()
        assert lines[0].startswith("error: the interpreter at ") and "(PEP 668)" in lines[0]
        assert lines[1] == "hint: install into a venv (kea venv), or pass --break-system-packages"
    r = kea("pip", "install", "--python", exe, "--break-system-packages", "--dry-run",
            "-i", universe.url, "lib")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert plus(r.stderr) == ["+ lib==2.0"]
    r = kea("pip", "uninstall", "--python", exe, "no-such-package")
    assert r.returncode == 1 and "(PEP 668)" in r.stderr, r.stderr
    r = kea("pip", "list", "--python", exe)  # reading it is fine
    assert r.returncode == 0, r.stderr
