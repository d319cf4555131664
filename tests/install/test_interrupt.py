"""kill -9 an install mid-way: every package is fully old or fully new, the next install works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kea.install.plan import WantedDist
from tests.install.conftest import run_kea
from tests.install.helpers import archive, install, py, site_packages, target_of

DRIVER = """
import json, sys
from pathlib import Path
from kea.install.environment import resolve_target
from kea.install.installer import apply_plan, installed_dists
from kea.install.plan import WantedDist, make_plan
venv, cache, spec = sys.argv[1:4]
target = resolve_target(python=venv, cache_dir=Path(cache))
wanted = [WantedDist(n, v, Path(a)) for n, v, a in json.loads(Path(spec).read_text())]
print("start", flush=True)
apply_plan(target, make_plan(wanted, installed_dists(target)), compile_bytecode=True)
print("done", flush=True)
"""

CHECK = """
import importlib, importlib.metadata as md, json, os, sys
names = json.loads(sys.argv[1])
out = {}
for n in names:
    v = md.version(n)
    m = importlib.import_module(n)
    d = os.path.dirname(m.__file__)
    files = sorted(f for f in os.listdir(d) if f.endswith(".py"))
    script = os.path.join(sys.prefix, "bin", n + "-cli")
    out[n] = [v, m.V, files, os.path.exists(script)]
print(json.dumps(out))
"""


def _versions(n: int, tmp: Path, version: str) -> list[WantedDist]:
    out = []
    for i in range(n):
        name = f"pkg{i:03d}"
        files = {f"{name}/__init__.py": f"V = {version!r}\n"}
        files[f"{name}/only_{version.replace('.', '_')}.py"] = "X = 1\n"
        for j in range(8):
            files[f"{name}/mod{j}.py"] = f"Y = {j}\n" * 50
        arch = archive(
            tmp / version, name, version, files=files, console_scripts={f"{name}-cli": f"{name}:V"}
        )
        out.append(WantedDist(name, version, arch))
    return out


def _assert_consistent(venv: Path, names: list[str]) -> dict[str, str]:
    state = json.loads(py(venv, CHECK.replace("sys.argv[1]", repr(json.dumps(names)))))
    versions = {}
    for name, (dist_version, module_version, files, script) in state.items():
        assert dist_version == module_version, (name, state[name])
        only = f"only_{dist_version.replace('.', '_')}.py"
        assert files == sorted(["__init__.py", only, *[f"mod{j}.py" for j in range(8)]])
        assert script
        versions[name] = dist_version
    sp = site_packages(venv)
    assert not (sp / ".kea-staging").exists()
    return versions


def _spawn(
    venv: Path, tmp: Path, wanted: list[WantedDist], env: dict[str, str]
) -> subprocess.Popen[str]:
    spec = tmp / "spec.json"
    spec.write_text(json.dumps([[w.name, w.version, str(w.archive)] for w in wanted]))
    cache = tmp / "cache" / "interpreters-v1"
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(venv), str(cache), str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("kill_after", [0, 1, 5, 12, 30, 61])
def test_killed_at_each_rename_rolls_back_or_forward(
    tmp_path: Path, venv: Path, kea_env: dict[str, str], kill_after: int
) -> None:
    target = target_of(venv, tmp_path / "cache")
    old = _versions(4, tmp_path, "1.0")
    new = _versions(4, tmp_path, "2.0")
    install(target, *old)
    names = [w.name for w in old]
    proc = _spawn(venv, tmp_path, new, {"KEA_TEST_KILL_AFTER_RENAMES": str(kill_after)})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert (site_packages(venv) / ".kea-staging").exists()  # the dead process left its journal
    run_kea("pip", "list", "--python", str(venv), env=kea_env)  # recovery on next use
    versions = _assert_consistent(venv, names)
    assert set(versions.values()) <= {"1.0", "2.0"}
    assert "1.0" in versions.values()  # killed before the end: not everything is new
    install(target, *new)  # the next install succeeds
    assert set(_assert_consistent(venv, names).values()) == {"2.0"}


def test_sigkill_at_random_moments(tmp_path: Path, venv: Path, kea_env: dict[str, str]) -> None:
    target = target_of(venv, tmp_path / "cache")
    n = 30
    v1 = _versions(n, tmp_path, "1.0")
    v2 = _versions(n, tmp_path, "2.0")
    names = [w.name for w in v1]
    install(target, *v1)
    seen: set[str] = set()
    for attempt, delay in enumerate([0.15, 0.3, 0.45, 0.6, 0.8]):
        wanted = v2 if attempt % 2 == 0 else v1
        proc = _spawn(venv, tmp_path, wanted, {})
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        run_kea("pip", "list", "--python", str(venv), env=kea_env)
        versions = _assert_consistent(venv, names)
        seen.add("mixed" if len(set(versions.values())) > 1 else "uniform")
    install(target, *v2)
    assert set(_assert_consistent(venv, names).values()) == {"2.0"}
    assert seen  # each attempt checked
