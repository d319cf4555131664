"""What the fast paths of ``kea pip install`` import (issue 4: start-up).

A no-op install (everything already installed) answers from the installed metadata: no event
loop, no network stack, no resolver bridge, no cache. A resolve whose index pages and metadata
are all fresh in the HTTP cache (``Cache-Control: max-age``), and an install whose archives are
cached too, run from the cache in the calling thread: no event loop (asyncio, ssl, socket),
kea.http or aiohttp, as ``--offline`` does. Each check runs kea in a fresh interpreter and
reads its ``sys.modules`` afterwards; control cases (stale pages, a missing archive) show the
check does see asyncio and aiohttp when the network is really used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kea.install.wheel import LAYOUT_FILE
from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

# Modules the no-op path must not import (each costs milliseconds at start-up).
NOOP_FORBIDDEN = (
    "asyncio", "ssl", "socket", "aiohttp", "truststore", "rich", "email", "urllib.request",
    "shutil", "bz2", "lzma", "zipfile", "tempfile", "tomllib", "kea.http", "kea.cache",
    "kea.resolver.provider", "kea.index.client", "kea.cli.install_pipeline",
)  # fmt: skip
# Modules a resolve answered from a fresh cache must not import.
FRESH_FORBIDDEN = (
    "aiohttp", "yarl", "multidict", "truststore", "rich", "urllib.request", "email", "kea.http",
    "asyncio", "ssl", "socket", "kea.index.client", "kea.resolver.prefetch", "click", "inspect",
)  # fmt: skip
# ... nor, when it only resolves (an install's thread pool imports logging), these.
RESOLVE_FORBIDDEN = ("logging", "traceback", "packaging.specifiers")

# Runs kea.cli.main.main(argv) in a fresh interpreter and prints its exit code and sys.modules.
IN_PROCESS = """
import json, sys
from kea.cli.main import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_in_process(kea: Kea, venv: Path, *args: str) -> tuple[int, set[str], str]:
    """Run ``kea ARGS`` inside a fresh interpreter; (exit code, modules imported, stderr)."""
    env = dict(kea.env, VIRTUAL_ENV=str(venv))
    proc = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, *args],
        cwd=kea.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["code"], set(out["modules"]), proc.stderr


def py_ok(venv: Path, code: str) -> bool:
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], timeout=60).returncode == 0


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names (packages count with their submodules) that were imported."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


@pytest.fixture
def universe(small_index: SimpleIndex) -> SimpleIndex:
    w = small_index.directory
    build_wheel(w, "app", "1.0", requires=["lib>=1", 'winonly; sys_platform == "win32"'],
                extras={"fast": ["speedup"]})  # fmt: skip
    build_wheel(w, "lib", "2.0", requires=["leaf"])
    build_wheel(w, "leaf", "1.0")
    build_wheel(w, "speedup", "1.0")
    small_index.scan()
    return small_index


def test_noop_install_imports_no_network_stack(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("app[fast]==1.0\nlib>=1\n")
    r = kea("pip", "install", "-i", universe.url, "-r", str(reqs), venv=venv)
    assert r.returncode == 0, r.stderr
    before = len(universe.requests)

    code, modules, stderr = run_in_process(
        kea, venv, "pip", "install", "-i", universe.url, "-r", str(reqs)
    )
    assert code == 0, stderr
    assert stderr.startswith("Audited 4 packages in "), stderr
    assert len(universe.requests) == before  # not a single request
    assert imported(modules, NOOP_FORBIDDEN) == []
    # the audit did read installed metadata and requirements (the path is the real one)
    assert "kea.dist.installed" in modules and "kea.cli.install_request" in modules


def test_fresh_cache_resolve_never_imports_aiohttp(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    universe.page_headers = {"Cache-Control": "max-age=600"}
    venv = kea.venv(tmp_path / "venv")
    first = kea("pip", "install", "-i", universe.url, "--dry-run", "app[fast]", venv=venv)
    assert first.returncode == 0, first.stderr
    before = len(universe.requests)
    assert before > 0

    code, modules, stderr = run_in_process(
        kea, venv, "pip", "install", "-i", universe.url, "--dry-run", "app[fast]"
    )
    assert code == 0, stderr
    assert "Would install 4 packages" in stderr, stderr
    assert [line for line in stderr.splitlines() if line.startswith(" + ")] == [
        " + app==1.0", " + leaf==1.0", " + lib==2.0", " + speedup==1.0",
    ]  # fmt: skip
    assert len(universe.requests) == before  # every page and metadata came from the cache
    assert imported(modules, FRESH_FORBIDDEN + RESOLVE_FORBIDDEN) == []


def test_an_install_on_a_cache_without_archives_does_not_try_the_cache(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """The cache can install nothing when it holds no archive: the run goes to the network
    without setting up a resolver on the cache first (``kea.resolver.provider_cached`` is that
    attempt's module). The control: with archives and fresh pages, the cache answers."""
    universe.page_headers = {"Cache-Control": "max-age=600"}
    first = kea.venv(tmp_path / "first")
    code, modules, stderr = run_in_process(kea, first, "pip", "install", "-i", universe.url, "app")
    assert code == 0, stderr
    assert "Installed 3 packages" in stderr, stderr
    assert "kea.resolver.provider_cached" not in modules
    assert py_ok(first, "import app, lib, leaf")

    before = len(universe.requests)
    second = kea.venv(tmp_path / "second")
    code, modules, stderr = run_in_process(kea, second, "pip", "install", "-i", universe.url, "app")
    assert code == 0, stderr
    assert "Installed 3 packages" in stderr, stderr
    assert "kea.resolver.provider_cached" in modules and "aiohttp" not in modules
    assert len(universe.requests) == before  # all from the cache
    assert py_ok(second, "import app, lib, leaf")


def test_stale_cache_resolve_does_use_the_network(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """The control: pages without max-age are revalidated, so aiohttp is imported then."""
    venv = kea.venv(tmp_path / "venv")
    first = kea("pip", "install", "-i", universe.url, "--dry-run", "app", venv=venv)
    assert first.returncode == 0, first.stderr
    before = len(universe.requests)

    code, modules, stderr = run_in_process(
        kea, venv, "pip", "install", "-i", universe.url, "--dry-run", "app"
    )
    assert code == 0, stderr
    assert "Would install 3 packages" in stderr, stderr
    assert len(universe.requests) > before
    assert "aiohttp" in modules and "kea.http.client" in modules and "asyncio" in modules
    # plain http: no TLS context was built, so truststore was never needed
    assert "truststore" not in modules


def test_warm_offline_install_never_imports_the_network_stack(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """Issue 4: a warm offline install (pages without max-age, so stale) links from the cache
    without importing kea.http or aiohttp; the packages are really installed and importable."""
    first_venv = kea.venv(tmp_path / "first")
    first = kea("pip", "install", "-i", universe.url, "app[fast]", venv=first_venv)
    assert first.returncode == 0, first.stderr
    before = len(universe.requests)

    venv = kea.venv(tmp_path / "venv")
    code, modules, stderr = run_in_process(
        kea, venv, "pip", "install", "--offline", "-i", universe.url, "app[fast]"
    )
    assert code == 0, stderr
    assert "Installed 4 packages" in stderr, stderr
    assert len(universe.requests) == before
    assert imported(modules, FRESH_FORBIDDEN) == []
    assert "kea.install.installer" in modules  # the real install ran in this process
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert sorted(p.name for p in site.glob("*.dist-info")) == [
        "app-1.0.dist-info", "leaf-1.0.dist-info", "lib-2.0.dist-info", "speedup-1.0.dist-info",
    ]  # fmt: skip


def test_fresh_cache_install_runs_without_an_event_loop(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """A warm install into a fresh venv (pages fresh, archives cached): no request, no event
    loop; the packages are installed and the output is that of any install."""
    universe.page_headers = {"Cache-Control": "max-age=600"}
    first = kea("pip", "install", "-i", universe.url, "app[fast]", venv=kea.venv(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    before = len(universe.requests)

    venv = kea.venv(tmp_path / "venv")
    code, modules, stderr = run_in_process(kea, venv, "pip", "install", "-i", universe.url,
                                           "app[fast]")  # fmt: skip
    assert code == 0, stderr
    assert len(universe.requests) == before
    assert imported(modules, FRESH_FORBIDDEN) == []
    lines = stderr.splitlines()
    assert [ln.split(" in ")[0] for ln in lines if not ln.startswith(" + ")] == [
        "Resolved 4 packages", "Prepared 4 packages", "Installed 4 packages",
    ]  # fmt: skip
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert len(list(site.glob("*.dist-info"))) == 4


def test_missing_archive_sends_the_run_through_the_network(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    """Pages and metadata are fresh but one archive is gone from the cache: the cache-only
    attempt stops before printing anything, and the run downloads that one wheel."""
    universe.page_headers = {"Cache-Control": "max-age=600"}
    first = kea("pip", "install", "-i", universe.url, "app", venv=kea.venv(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    archives = Path(kea.env["KEA_CACHE_DIR"]) / "archive-v1"
    (gone,) = [p for p in archives.iterdir() if (p / "lib-2.0.dist-info").is_dir()]
    shutil.rmtree(gone)
    before = len(universe.requests)

    venv = kea.venv(tmp_path / "venv")
    code, modules, stderr = run_in_process(kea, venv, "pip", "install", "-i", universe.url, "app")
    assert code == 0, stderr
    assert [r for r in universe.requests[before:]] == ["/files/lib-2.0-py3-none-any.whl"]
    assert "asyncio" in modules and "aiohttp" in modules
    assert sum(line.startswith("Resolved 3 packages") for line in stderr.splitlines()) == 1
    assert py_ok(venv, "import lib")
    assert gone.is_dir()  # stored again
    # Its layout was worked out while the run prepared it, not left for the install.
    assert (gone / LAYOUT_FILE).is_file()


def test_workers_start_before_the_loop_only_when_every_wheel_is_downloaded(
    tmp_path: Path,
) -> None:
    """``_downloads_everything``: an installing, online run on a cache with no archive at all
    starts the unpacking workers at once; a dry run, an offline run or a cache that holds
    archives does not (the workers would likely have nothing to do)."""
    from types import SimpleNamespace

    from kea.cache import Cache
    from kea.cli.install_pipeline import _downloads_everything

    cache = Cache(tmp_path / "cache")
    install, dry = SimpleNamespace(dry_run=False), SimpleNamespace(dry_run=True)
    online, offline = SimpleNamespace(offline=False), SimpleNamespace(offline=True)
    assert _downloads_everything(install, online, cache)  # type: ignore[arg-type]
    assert not _downloads_everything(dry, online, cache)  # type: ignore[arg-type]
    assert not _downloads_everything(install, offline, cache)  # type: ignore[arg-type]
    cache.bucket("archive-v1")
    assert not _downloads_everything(install, online, cache)  # type: ignore[arg-type]
