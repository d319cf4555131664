from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.pip.conftest import path_without_venvs


def run_kea(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("VIRTUAL_ENV", None)
    full_env.pop("CONDA_PREFIX", None)
    full_env["PATH"] = path_without_venvs(full_env.get("PATH", ""))
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "kea", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kea {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def kea_env(tmp_path: Path) -> dict[str, str]:
    """Environment for kea subprocesses: a private cache (interpreter facts)."""
    return {"KEA_CACHE_DIR": str(tmp_path / "cache"), "KEA_NO_CONFIG": "1"}


@pytest.fixture
def make_venv(tmp_path: Path, kea_env: dict[str, str]) -> Callable[[str], Path]:
    def make(name: str = "venv") -> Path:
        path = tmp_path / name
        run_kea("venv", str(path), env=kea_env)
        assert (path / "pyvenv.cfg").is_file()
        return path

    return make


@pytest.fixture
def venv(make_venv: Callable[[str], Path]) -> Path:
    return make_venv("venv")
