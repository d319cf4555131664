"""Fixtures for ``kea pip install`` end-to-end tests: the wheelhouse, a loopback index, venvs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pip.server import SimpleIndex

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("KEA_TEST_WHEELHOUSE", ROOT / "wheelhouse"))
MARKER = ".kea-wheelhouse.json"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


@dataclass
class Kea:
    """Runs ``python -m kea`` in a clean environment (own cache, no config, no venv)."""

    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, venv: Path | None = None, timeout: float = 240) -> Result:
        env = dict(self.env)
        if venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
        proc = subprocess.run(
            [sys.executable, "-m", "kea", *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def venv(self, path: Path) -> Path:
        result = self("venv", str(path))
        assert result.returncode == 0, result.stderr
        assert (path / "bin" / "python").exists()
        return path


def path_without_venvs(path: str) -> str:
    """``path`` without the bin directories of virtual environments: scripts/test puts its own
    venv first on PATH, and kea, asked for ``--python 3.X`` or ``--system``, would find and
    act on that venv instead of what the test means."""
    keep = [
        p for p in path.split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").is_file()
    ]
    return os.pathsep.join(keep)


@pytest.fixture
def kea(tmp_path: Path) -> Kea:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KEA_", "VIRTUAL_ENV", "CONDA_", "PIP_", "UV_"))
    }
    env.update(
        PATH=path_without_venvs(env.get("PATH", "")),
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        KEA_CACHE_DIR=str(tmp_path / "cache"),
        KEA_NO_CONFIG="1",
        NO_COLOR="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return Kea(env=env, cwd=work)


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    if not (WHEELHOUSE / MARKER).is_file():
        pytest.skip(
            f"the wheelhouse is missing ({WHEELHOUSE}): run scripts/fetch-wheelhouse once "
            "(scripts/test does) to download the real wheels these tests install"
        )
    return WHEELHOUSE


@pytest.fixture(scope="session")
def wheelhouse_index(wheelhouse: Path) -> Iterator[SimpleIndex]:
    with SimpleIndex(wheelhouse) as index:
        yield index


@pytest.fixture
def small_index(tmp_path: Path) -> Iterator[SimpleIndex]:
    """An index over ``tmp_path/wheels`` (tests put wheels there, then call ``scan()``)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with SimpleIndex(wheels) as index:
        yield index
