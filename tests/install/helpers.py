from __future__ import annotations

import subprocess
from pathlib import Path

from kea.install.environment import Target, resolve_target
from kea.install.installer import InstallReport, apply_plan, installed_dists
from kea.install.plan import WantedDist, make_plan
from tests.install.wheels import build_wheel, unpack_wheel


def target_of(venv: Path, cache: Path) -> Target:
    return resolve_target(python=str(venv), cache_dir=cache / "interpreters-v1")


def archive(tmp: Path, name: str, version: str, **kw: object) -> Path:
    whl = build_wheel(tmp / "wheels", name, version, **kw)  # type: ignore[arg-type]
    return unpack_wheel(whl, tmp / "archives")


def install(target: Target, *wanted: WantedDist, **kw: object) -> InstallReport:
    plan = make_plan(wanted, installed_dists(target))
    return apply_plan(target, plan, **kw)  # type: ignore[arg-type]


def py(venv: Path, code: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))
