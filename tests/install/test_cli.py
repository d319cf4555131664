from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from kea.install.environment import query_interpreter, resolve_target
from kea.install.plan import WantedDist
from tests.install.conftest import run_kea
from tests.install.helpers import archive, install, target_of


def test_kea_venv_output_and_clear(tmp_path: Path, kea_env: dict[str, str]) -> None:
    out = run_kea("venv", env=kea_env, cwd=tmp_path)
    lines = out.stderr.splitlines()
    assert lines[0].startswith("Using CPython 3.") and " interpreter at: " in lines[0]
    assert lines[1:] == [
        "Creating virtual environment at: .venv",
        "Activate with: source .venv/bin/activate",
    ]
    assert (tmp_path / ".venv" / "pyvenv.cfg").is_file()
    assert not list((tmp_path / ".venv" / "lib").glob("python3*/site-packages/pip"))
    marker = tmp_path / ".venv" / "marker"
    marker.write_text("old")
    # An existing venv is refused (it was replaced, its packages lost, with exit 0: found by
    # a black-box audit; uv refuses too), and replaced with --clear.
    out = run_kea("venv", env=kea_env, cwd=tmp_path, check=False)
    assert out.returncode == 1 and marker.exists()
    errors = [line for line in out.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors == [
        f"error: a virtual environment already exists at {tmp_path / '.venv'}",
        "hint: use --clear to replace it (its packages are removed)",
    ]
    run_kea("venv", "--clear", env=kea_env, cwd=tmp_path)
    assert not marker.exists()


def test_kea_venv_refuses_non_venv_dir(tmp_path: Path, kea_env: dict[str, str]) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    out = run_kea("venv", str(precious), env=kea_env, check=False)
    assert out.returncode == 1
    assert "is not a virtual environment; refusing to replace it" in out.stderr
    assert "Traceback" not in out.stderr
    assert (precious / "thesis.txt").read_text() == "keep me"


def test_no_environment_found(tmp_path: Path, kea_env: dict[str, str]) -> None:
    out = run_kea("pip", "list", env=kea_env, cwd=tmp_path, check=False)
    assert out.returncode == 1
    assert out.stderr.startswith("error: No virtual environment found; run `kea venv`")
    assert "--system" in out.stderr


def test_environment_discovery_order(tmp_path: Path, make_venv: object) -> None:
    assert callable(make_venv)
    project = make_venv("project/.venv")
    other = make_venv("other")
    sub = tmp_path / "project" / "src" / "deep"
    sub.mkdir(parents=True)
    cache = tmp_path / "cache" / "interpreters-v1"
    t = resolve_target(env={"PATH": os.environ["PATH"]}, cwd=sub, cache_dir=cache)
    assert Path(t.interpreter.prefix) == project and t.kind == "venv"
    env = {"PATH": os.environ["PATH"], "VIRTUAL_ENV": str(other)}
    t = resolve_target(env=env, cwd=sub, cache_dir=cache)
    assert Path(t.interpreter.prefix) == other
    env = {"PATH": os.environ["PATH"], "CONDA_PREFIX": str(other)}
    assert Path(resolve_target(env=env, cwd=sub, cache_dir=cache).interpreter.prefix) == other
    t = resolve_target(python=str(project), env=env, cwd=sub, cache_dir=cache)
    assert Path(t.interpreter.prefix) == project


def test_interpreter_facts_are_cached(tmp_path: Path, venv: Path) -> None:
    cache = tmp_path / "facts"
    info = query_interpreter(venv / "bin" / "python", cache)
    assert info.is_venv and info.tags and info.markers["python_version"].startswith("3.")
    assert info.tags[0].startswith("cp3")  # tags computed inside that interpreter
    files = list(cache.iterdir())
    assert len(files) == 1
    # a cache entry is trusted only for the same path + file identity: tamper and check reuse
    data = json.loads(files[0].read_text())
    data["info"]["python_full_version"] = "3.99.0"
    files[0].write_text(json.dumps(data))
    assert query_interpreter(venv / "bin" / "python", cache).python_full_version == "3.99.0"
    data["key"][0] += 1  # mtime changed: asked again
    files[0].write_text(json.dumps(data))
    assert query_interpreter(venv / "bin" / "python", cache).python_full_version != "3.99.0"


def test_list_freeze_show_check_uninstall(
    tmp_path: Path, venv: Path, kea_env: dict[str, str]
) -> None:
    target = target_of(venv, tmp_path / "cache")
    app = archive(
        tmp_path, "My_App", "2.0", requires=["libdep>=1.5", "never-installed; python_version < '3'"]
    )
    dep = archive(tmp_path, "libdep", "1.0")
    install(target, WantedDist("My_App", "2.0", app), WantedDist("libdep", "1.0", dep))
    kp = ["--python", str(venv)]

    out = run_kea("pip", "list", *kp, env=kea_env)
    assert out.stdout.splitlines() == [
        "Package Version",
        "------- -------",
        "libdep  1.0",
        "My_App  2.0",
    ]
    out = run_kea("pip", "list", "--format", "json", *kp, env=kea_env)
    assert json.loads(out.stdout) == [
        {"name": "libdep", "version": "1.0"},
        {"name": "My_App", "version": "2.0"},
    ]
    out = run_kea("pip", "freeze", *kp, env=kea_env)
    assert out.stdout.splitlines() == ["libdep==1.0", "My_App==2.0"]

    out = run_kea("pip", "show", "my-app", "-f", *kp, env=kea_env)
    lines = out.stdout.splitlines()
    assert "Name: My_App" in lines and "Version: 2.0" in lines
    assert "Requires: libdep" in lines and "Required-by: " in lines
    assert "  My_App/__init__.py" in lines
    out = run_kea("pip", "show", "libdep", *kp, env=kea_env)
    assert "Required-by: my-app" in out.stdout.splitlines()

    out = run_kea("pip", "check", *kp, env=kea_env, check=False)
    assert out.returncode == 1
    assert "Found 1 incompatibility" in out.stderr
    assert "The package `my-app` requires `libdep>=1.5`, but `1.0` is installed" in out.stderr

    (tmp_path / "reqs.txt").write_text("libdep\n")
    out = run_kea("pip", "uninstall", "-r", str(tmp_path / "reqs.txt"), *kp, env=kea_env)
    assert out.stderr.splitlines()[0].startswith("Uninstalled 1 package in ")
    assert out.stderr.splitlines()[1] == " - libdep==1.0"
    out = run_kea("pip", "check", *kp, env=kea_env, check=False)
    assert "The package `my-app` requires `libdep>=1.5`, but it's not installed" in out.stderr

    env = {**kea_env, "VIRTUAL_ENV": str(venv)}
    # -y, as `pip uninstall -y` in scripts: accepted (kea never asks); "No such option" before
    out = run_kea("pip", "uninstall", "-y", "my-app", "ghost", env=env)
    assert "warning: Skipping ghost as it is not installed" in out.stderr
    assert " - my-app==2.0" in out.stderr.splitlines()
    assert run_kea("pip", "freeze", env=env).stdout == ""
    out = run_kea("pip", "check", env=env)
    assert "All installed packages are compatible" in out.stderr


def test_kea_venv_quiet_and_seed(tmp_path: Path, kea_env: dict[str, str]) -> None:
    out = run_kea("venv", "-q", "quiet", env=kea_env, cwd=tmp_path)
    assert out.stderr == "" and out.stdout == ""
    assert (tmp_path / "quiet" / "pyvenv.cfg").is_file()
    assert not list((tmp_path / "quiet" / "bin").glob("pip*"))  # no pip without --seed
    run_kea("venv", "-q", "--seed", "seeded", env=kea_env, cwd=tmp_path)
    pip = subprocess.run([str(tmp_path / "seeded" / "bin" / "python"), "-m", "pip", "--version"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert str(tmp_path / "seeded") in pip.stdout
    frozen = run_kea("pip", "list", "--format", "freeze", "--python", str(tmp_path / "seeded"),
                     env=kea_env).stdout.splitlines()  # fmt: skip
    assert any(line.startswith("pip==") for line in frozen)
