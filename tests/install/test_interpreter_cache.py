"""Interpreter facts survive a venv made again at the same path (benchmarks and CI do that before
every run), and are asked again when the venv's options or its interpreter differ."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kea.install import environment
from kea.install.environment import query_interpreter
from tests.install.conftest import run_kea


def _tamper(cache: Path) -> None:
    """Mark the one cached entry, so a later answer shows whether it came from the cache."""
    (entry,) = list(cache.iterdir())
    data = json.loads(entry.read_text())
    data["info"]["python_full_version"] = "3.99.0"
    entry.write_text(json.dumps(data))


def test_facts_are_reused_for_a_venv_made_again_at_the_same_path(
    tmp_path: Path, make_venv: Callable[[str], Path], kea_env: dict[str, str]
) -> None:
    cache = tmp_path / "facts"
    venv = make_venv("venv")
    python = venv / "bin" / "python"
    first = query_interpreter(python, cache)
    assert first.is_venv and Path(first.prefix) == venv
    _tamper(cache)

    shutil.rmtree(venv)
    make_venv("venv")  # a new symlink, a new pyvenv.cfg with the same content
    again = query_interpreter(python, cache)
    assert again.python_full_version == "3.99.0"  # from the cache: no probe
    assert again.paths == first.paths and again.sys_path == first.sys_path

    # other options of the venv: asked again (and the answer reflects them)
    shutil.rmtree(venv)
    run_kea("venv", "--system-site-packages", str(venv), env=kea_env)
    other = query_interpreter(python, cache)
    assert other.python_full_version == first.python_full_version
    assert len(other.sys_path) > len(first.sys_path)  # the base's site-packages are visible


def test_facts_are_asked_again_when_pyvenv_cfg_changes(tmp_path: Path, venv: Path) -> None:
    cache = tmp_path / "facts"
    python = venv / "bin" / "python"
    first = query_interpreter(python, cache)
    _tamper(cache)
    assert query_interpreter(python, cache).python_full_version == "3.99.0"
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text() + "prompt = changed\n")
    assert query_interpreter(python, cache).python_full_version == first.python_full_version


def test_a_launcher_is_never_cached(tmp_path: Path, venv: Path) -> None:
    """A wrapper script (as a pyenv shim) picks its interpreter anew on every run: its facts
    must follow the interpreter it runs now, not the one it ran when first asked."""
    cache = tmp_path / "facts"
    real = (venv / "bin" / "python").resolve()
    choice = tmp_path / "which"
    choice.write_text(str(venv / "bin" / "python"))
    launcher = tmp_path / "python-launcher"
    launcher.write_text(f'#!/bin/sh\nexec "$(cat {choice})" "$@"\n')
    launcher.chmod(0o755)

    first = query_interpreter(launcher, cache)
    assert first.is_venv and Path(first.prefix) == venv
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing cached for a launcher

    choice.write_text(str(real))  # the launcher now runs the base interpreter
    second = query_interpreter(launcher, cache)
    assert not second.is_venv and Path(second.prefix) != venv
    # a real interpreter is still cached as before
    query_interpreter(venv / "bin" / "python", cache)
    assert len(list(cache.iterdir())) == 1


def test_probe_markers_are_packagings_default_environment(tmp_path: Path) -> None:
    """The probe computes PEP 508's marker environment itself (importing packaging.markers was
    half its run time): it must be what packaging says for the same interpreter."""
    import sys

    from packaging.markers import default_environment

    info = query_interpreter(sys.executable, tmp_path / "facts")
    assert info.markers == default_environment()


def test_early_probe_is_started_from_the_raw_arguments_and_collected(
    tmp_path: Path, venv: Path
) -> None:
    """``kea pip install --python VENV --cache-dir DIR`` on a cold cache: the probe starts
    before click is imported, and the query of that interpreter takes its answer (no second
    probe); with the facts cached, nothing is started."""
    import os

    from kea.cli import early_probe
    from kea.install import environment

    python = str(venv / "bin" / "python")
    cache = tmp_path / "cold-cache"  # not the fixtures' cache, where `kea venv` left the facts
    args = ["-r", "req.txt", "--python", str(venv), "--cache-dir", str(cache), "--no-progress"]
    early_probe.start(args, os.environ)
    started = environment._STARTED.get(python, (None,))[0]
    assert started is not None
    info = query_interpreter(python, cache / "interpreters-v1")
    assert python not in environment._STARTED and started.returncode == 0  # collected
    assert info.is_venv and Path(info.prefix) == venv

    early_probe.start(args, os.environ)  # cached now
    assert python not in environment._STARTED
    # --system, --target, --prefix, a version request: nothing is guessed
    for extra in (["--system"], ["--target", "t"], ["--prefix=p"]):
        early_probe.start([*args[:-1], *extra], os.environ)
    early_probe.start(["--python", "3.11", "--cache-dir", str(tmp_path / "other")], os.environ)
    assert environment._STARTED == {}


def test_a_probe_started_before_pyvenv_cfg_changed_is_not_taken(
    tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    """The probe started ahead saw the venv without the base's site-packages; the venv was
    then changed to include them before kea asked: the answer (and what is cached) must be
    the venv's as it is when asked, not as it was when the probe started."""
    cache = tmp_path / "facts"
    venv = make_venv("venv")
    python = str(venv / "bin" / "python")
    plain = query_interpreter(python, tmp_path / "elsewhere")
    environment.probe_in_background(python, cache)
    ahead = environment._STARTED[python][0]
    ahead.wait(60)  # it has read the venv as it was (its answer waits in the pipe)
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(
        cfg.read_text().replace(
            "include-system-site-packages = false", "include-system-site-packages = true"
        )
    )
    info = query_interpreter(python, cache)
    assert python not in environment._STARTED
    assert ahead.stdout is not None and ahead.stdout.closed  # ended, its answer unread
    assert len(info.sys_path) > len(plain.sys_path)  # the base's site-packages are visible
    assert query_interpreter(python, cache) == info  # cached under the identity it answers


def test_kea_works_while_it_waits_for_a_probe(
    tmp_path: Path, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``while_probing`` runs while the probe still runs, and is told when it answered; its
    failure costs nothing but the head start."""
    slow = tmp_path / "python-slow"  # a probe that surely outlasts the call below
    slow.write_text(f'#!/bin/sh\nsleep 0.3\nexec "{venv / "bin" / "python"}" "$@"\n')
    slow.chmod(0o755)
    seen: list[bool] = []

    def hook(still_probing: Callable[[], bool]) -> None:
        seen.append(still_probing())
        deadline = time.monotonic() + 30
        while still_probing() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(still_probing())

    monkeypatch.setattr(environment, "while_probing", hook)
    info = query_interpreter(slow, tmp_path / "facts")
    assert seen == [True, False]
    assert info.is_venv and Path(info.prefix) == venv

    def broken(still_probing: Callable[[], bool]) -> None:
        raise RuntimeError("an import failed")

    monkeypatch.setattr(environment, "while_probing", broken)
    assert query_interpreter(slow, tmp_path / "facts").prefix == info.prefix
