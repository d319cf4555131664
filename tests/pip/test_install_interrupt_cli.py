"""``kea pip install`` killed mid-install (SIGKILL at a rename, SIGINT at random moments): each
package is fully old or fully new, and the next ``kea pip install`` succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.install.killpoint import CLI, CTRL_C_AFTER, CTRL_C_STAGING, KILL_AFTER
from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

NAMES = [f"pkg{i}" for i in range(12)]
CHECK = """
import importlib, importlib.metadata as md, json, sys
out = {}
for name in json.loads(sys.argv[1]):
    try:
        dist = md.version(name)
    except md.PackageNotFoundError:
        dist = None
    try:
        mod = importlib.import_module(name).VERSION
    except ImportError:
        mod = None
    out[name] = [dist, mod]
print(json.dumps(out))
"""


def state(venv: Path) -> dict[str, list[str | None]]:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", CHECK, json.dumps(NAMES)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, list[str | None]] = json.loads(out.stdout)
    return result


def consistent(venv: Path) -> set[str]:
    versions = set()
    for name, (dist, mod) in state(venv).items():
        assert dist == mod and dist in ("1.0", "2.0"), (name, dist, mod)
        versions.add(dist)
    return versions


@pytest.fixture
def universe(small_index: SimpleIndex) -> SimpleIndex:
    for name in NAMES:
        for version in ("1.0", "2.0"):
            files = {f"{name}/__init__.py": f'VERSION = "{version}"\n'}
            files |= {f"{name}/mod{j}.py": f"X = {j}\n" for j in range(20)}
            build_wheel(small_index.directory, name, version, files=files)
    small_index.scan()
    return small_index


def spawn(kea: Kea, venv: Path, url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    """``kea pip install`` of every package at 2.0 (``killpoint.CLI``: as ``python -m kea``,
    dying at a rename when ``env`` names one)."""
    reqs = [f"{n}==2.0" for n in NAMES]
    return subprocess.Popen([sys.executable, "-c", CLI, "pip", "install", "-i", url, *args, *reqs],
                            cwd=kea.cwd, env={**kea.env, "VIRTUAL_ENV": str(venv), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_kea_pip_install_killed_then_next_install_succeeds(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    old = [f"{n}==1.0" for n in NAMES]
    assert kea("pip", "install", "-i", universe.url, *old, venv=venv).returncode == 0
    # SIGKILL at a chosen rename of the install transaction
    for kill_after in (1, 7):
        proc = spawn(kea, venv, universe.url, **{KILL_AFTER: str(kill_after)})
        proc.communicate(timeout=120)
        assert proc.returncode != 0
        assert kea("pip", "list", venv=venv).returncode == 0  # recovery on next use
        assert consistent(venv) <= {"1.0", "2.0"}
        r = kea("pip", "install", "-i", universe.url, *old, venv=venv)
        assert r.returncode == 0, r.stderr
        assert consistent(venv) == {"1.0"}
    # SIGINT (Ctrl-C) at moments spread over preparing and installing (timed from the
    # "Resolved" line, so a loaded machine still interrupts kea, not Python's start-up)
    for delay in (0.0, 0.05, 0.1, 0.2, 0.4):
        proc = spawn(kea, venv, universe.url)
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("Resolved"), first
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
        err = first + rest
        # 130: interrupted; 0 or -SIGINT: the signal came after the work was done
        assert proc.returncode in (0, 130, -signal.SIGINT), err
        assert "Traceback" not in err, err
        consistent(venv)
        r = kea("pip", "install", "-i", universe.url, *[f"{n}==2.0" for n in NAMES], venv=venv)
        assert r.returncode == 0, r.stderr
        assert consistent(venv) == {"2.0"}
        assert kea("pip", "install", "-i", universe.url, *old, venv=venv).returncode == 0


@pytest.mark.parametrize("renames", ["5", "5,30"], ids=["one Ctrl-C", "two Ctrl-Cs"])
def test_ctrl_c_in_the_commit_finishes_it_says_so_and_exits_130(
    kea: Kea, universe: SimpleIndex, tmp_path: Path, renames: str
) -> None:
    """A Ctrl-C between two packages' commits waits until every package is new; the run then
    prints what it installed, and ends as interrupted. On this path (pages fetched) the
    install runs inside asyncio.run, whose own SIGINT handler cancelled the run at a second
    Ctrl-C, in the middle of the commit."""
    venv = kea.venv(tmp_path / "venv")
    old = [f"{n}==1.0" for n in NAMES]
    assert kea("pip", "install", "-i", universe.url, *old, venv=venv).returncode == 0
    proc = spawn(kea, venv, universe.url, **{CTRL_C_AFTER: renames})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert "Installed 12 packages" in "".join(lines), err
    assert lines[-1] == "error: interrupted", err
    assert consistent(venv) == {"2.0"}


@pytest.mark.parametrize("path", ["network", "cache"])
def test_ctrl_c_while_staging_installs_nothing_and_exits_130(
    kea: Kea, universe: SimpleIndex, tmp_path: Path, path: str
) -> None:
    """A Ctrl-C before the first commit stops the install there, whichever path the run took:
    on the network path asyncio's handler only cancelled the run once the install had
    finished, so every package was installed before the run ended as interrupted."""
    venv = kea.venv(tmp_path / "venv")
    old = [f"{n}==1.0" for n in NAMES]
    assert kea("pip", "install", "-i", universe.url, *old, venv=venv).returncode == 0
    args: list[str] = []
    if path == "cache":  # every page and wheel of 2.0 in the cache: no event loop at all
        other = kea.venv(tmp_path / "other")
        new = [f"{n}==2.0" for n in NAMES]
        assert kea("pip", "install", "-i", universe.url, *new, venv=other).returncode == 0
        args.append("--offline")
    proc = spawn(kea, venv, universe.url, *args, **{CTRL_C_STAGING: "1"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Installed" not in err, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == "error: interrupted", err
    assert consistent(venv) == {"1.0"}
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    assert not (site / ".kea-staging").exists()
    assert kea("pip", "install", "-i", universe.url, *old, venv=venv).returncode == 0  # no-op
