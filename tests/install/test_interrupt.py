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
from tests.install.killpoint import CTRL_C_AFTER, CTRL_C_AT_RENAME, KILL_AFTER, KILL_AT_RENAME

_INSTALL = """
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
DRIVER = KILL_AT_RENAME + _INSTALL  # dies at a rename when the environment names one

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


def _kill_midway_then_recover(
    venv: Path, tmp: Path, wanted: list[WantedDist], delay: float, kea_env: dict[str, str]
) -> None:
    """Start installing ``wanted``, SIGKILL the installer ``delay`` s after it started, then let
    a later kea command (``pip list``) run recovery on the environment."""
    proc = _spawn(venv, tmp, wanted, {})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    run_kea("pip", "list", "--python", str(venv), env=kea_env)


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
    proc = _spawn(venv, tmp_path, new, {KILL_AFTER: str(kill_after)})
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
        _kill_midway_then_recover(venv, tmp_path, wanted, delay, kea_env)
        versions = _assert_consistent(venv, names)
        seen.add("mixed" if len(set(versions.values())) > 1 else "uniform")
    install(target, *v2)
    assert set(_assert_consistent(venv, names).values()) == {"2.0"}
    assert seen  # each attempt checked


def _assert_all_or_nothing(venv: Path, names: list[str]) -> set[str]:
    """Each package fully installed or fully absent; returns the installed ones."""
    sp = site_packages(venv)
    assert not (sp / ".kea-staging").exists()
    present = {n for n in names if list(sp.glob(f"{n}-*.dist-info"))}
    if present:
        versions = _assert_consistent(venv, sorted(present))
        assert set(versions.values()) == {"1.0"}
    for name in set(names) - present:
        assert not (sp / name).exists(), name
        assert not (venv / "bin" / f"{name}-cli").exists(), name
    expected = {f"{n}-1.0.dist-info" for n in present} | present | {"__pycache__"}
    assert {p.name for p in sp.iterdir()} <= expected
    return present


@pytest.mark.parametrize("kill_after", [0, 2, 3])
def test_fresh_install_killed_removes_what_it_created_in_place(
    tmp_path: Path, venv: Path, kea_env: dict[str, str], kill_after: int
) -> None:
    # Nothing installed yet: every package's top-level directory and launcher are claimed and
    # created in place while staging; only the dist-info renames remain for the commit.
    new = _versions(4, tmp_path, "1.0")
    names = [w.name for w in new]
    proc = _spawn(venv, tmp_path, new, {KILL_AFTER: str(kill_after)})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    sp = site_packages(venv)
    # killed at the (kill_after+1)th dist-info rename: the packages after it were laid out in
    # place already, without their dist-info
    assert all((sp / n / "__init__.py").is_file() for n in names)
    assert not list(sp.glob(f"{names[kill_after]}-*.dist-info"))
    run_kea("pip", "list", "--python", str(venv), env=kea_env)  # recovery on next use
    assert _assert_all_or_nothing(venv, names) == set(names[:kill_after])
    install(target_of(venv, tmp_path / "cache"), *new)
    assert _assert_all_or_nothing(venv, names) == set(names)


def test_fresh_install_sigkill_at_random_moments(
    tmp_path: Path, venv: Path, kea_env: dict[str, str]
) -> None:
    new = _versions(30, tmp_path, "1.0")
    names = [w.name for w in new]
    outcomes: set[int] = set()
    for delay in [0.1, 0.25, 0.4, 0.6, 0.9]:
        _kill_midway_then_recover(venv, tmp_path, new, delay, kea_env)
        outcomes.add(len(_assert_all_or_nothing(venv, names)))
        run_kea("pip", "uninstall", "--python", str(venv), *names, env=kea_env)
        assert _assert_all_or_nothing(venv, names) == set()
    assert outcomes  # each attempt checked


def test_packages_sharing_a_directory_are_merged_not_claimed(
    tmp_path: Path, venv: Path, kea_env: dict[str, str]
) -> None:
    # Two wheels of one namespace package (and one shared data directory): neither may create
    # ns/ or share/ in place (removing it on a roll-back would take the other's files).
    target = target_of(venv, tmp_path / "cache")
    a = archive(tmp_path, "ns-a", "1.0", files={"ns/a/__init__.py": "A = 1\n"},
                data={"data/share/nsdemo/a.txt": "a\n"})  # fmt: skip
    b = archive(tmp_path, "ns-b", "1.0", files={"ns/b/__init__.py": "B = 2\n"},
                data={"data/share/nsdemo/b.txt": "b\n"})  # fmt: skip
    install(target, WantedDist("ns-a", "1.0", a), WantedDist("ns-b", "1.0", b))
    assert py(venv, "import ns.a, ns.b; print(ns.a.A + ns.b.B)") == "3"
    assert sorted(p.name for p in (venv / "share" / "nsdemo").iterdir()) == ["a.txt", "b.txt"]
    run_kea("pip", "uninstall", "--python", str(venv), "ns-a", env=kea_env)
    assert py(venv, "import ns.b; print(ns.b.B)") == "2"
    assert not (site_packages(venv) / "ns" / "a").exists()
    assert [p.name for p in (venv / "share" / "nsdemo").iterdir()] == ["b.txt"]


def test_recovery_removes_a_run_killed_before_its_journal(tmp_path: Path, venv: Path) -> None:
    """A run's journal is created with its first line, written before the first change in
    place: a run directory without one (killed while staging) only held staged files."""
    from kea.install.transaction import recover

    target = target_of(venv, tmp_path / "cache")
    install(target, *_versions(2, tmp_path, "1.0"))
    sp = site_packages(venv)
    before = sorted(p.name for p in sp.iterdir())
    run = sp / ".kea-staging" / "0123456789ab"
    (run / "pkg000-2.0.dist-info").mkdir(parents=True)
    (run / "pkg000-2.0.dist-info" / "METADATA").write_text("Name: pkg000\nVersion: 2.0\n")
    (run / "pkg000.new" / "purelib" / "pkg000").mkdir(parents=True)

    assert recover(target) == 1
    assert not (sp / ".kea-staging").exists()
    assert sorted(p.name for p in sp.iterdir()) == [n for n in before if n != ".kea-staging"]
    assert _assert_consistent(venv, ["pkg000", "pkg001"]) == {"pkg000": "1.0", "pkg001": "1.0"}


def test_recovery_of_a_run_rolls_back_and_finishes_package_by_package(
    tmp_path: Path, venv: Path
) -> None:
    """One run's journal holds every package's lines: each is finished or rolled back on its
    own, and everything the run staged goes with its directory."""
    from kea.install.journal import RUN_JOURNAL
    from kea.install.transaction import recover

    target = target_of(venv, tmp_path / "cache")
    install(target, *_versions(2, tmp_path, "1.0"))
    sp = site_packages(venv)
    run = sp / ".kea-staging" / "fedcba987654"
    (run / "pkg000.trash").mkdir(parents=True)
    (run / "pkg000.new" / "purelib").mkdir(parents=True)
    (run / "pkg000.trash" / "1").write_text("displaced\n")
    (run / "pkg001-2.0.dist-info").mkdir()  # staged, never committed
    (sp / "pkg001_extra").mkdir()
    lines = [
        ["pkg001", "new", str(sp / "pkg001_extra")],
        ["pkg000", "mv", str(sp / "pkg000" / "stale.py"), str(run / "pkg000.trash" / "1")],
        ["pkg000", "committed"],
    ]
    (run / RUN_JOURNAL).write_text("".join(json.dumps(op) + "\n" for op in lines) + '["pkg0')

    assert recover(target) == 1
    assert not (sp / ".kea-staging").exists()
    assert not (sp / "pkg001_extra").exists()
    assert _assert_consistent(venv, ["pkg000", "pkg001"]) == {"pkg000": "1.0", "pkg001": "1.0"}


_CATCH = _INSTALL.replace(
    "apply_plan(target, make_plan(wanted, installed_dists(target)), compile_bytecode=True)",
    """plan = make_plan(wanted, installed_dists(target))
report = apply_plan(target, plan, compile_bytecode=True)
print("installed", len(report.installed), flush=True)
try:
    report.raise_if_interrupted()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)""",
)


@pytest.mark.parametrize("ctrl_c_after", [0, 5, 30])
def test_ctrl_c_during_the_commit_waits_until_every_package_is_new(
    tmp_path: Path, venv: Path, ctrl_c_after: int
) -> None:
    """A Ctrl-C between two packages' commits used to leave one new and requiring versions of
    the others that were still old; the commit's renames now all finish, then the run ends as
    interrupted."""
    target = target_of(venv, tmp_path / "cache")
    old = _versions(4, tmp_path, "1.0")
    new = _versions(4, tmp_path, "2.0")
    install(target, *old)
    names = [w.name for w in old]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([[w.name, w.version, str(w.archive)] for w in new]))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CTRL_C_AT_RENAME + _CATCH,
            str(venv),
            str(tmp_path / "c"),
            str(spec),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, CTRL_C_AFTER: str(ctrl_c_after)},
        timeout=120,
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["installed 4", "interrupted"], proc.stdout
    assert set(_assert_consistent(venv, names).values()) == {"2.0"}
