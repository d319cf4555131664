"""``kea venv``: a virtual environment made by the target interpreter's own ``venv`` module.

Without ``--seed`` the environment has no pip (``--without-pip``); with it, ``ensurepip`` seeds
pip. An existing virtual environment at the path is replaced (as uv does); any other existing,
non-empty directory (or a file) is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kea.errors import KeaError
from kea.install.environment import Interpreter, is_venv_dir, query_interpreter, venv_python


@dataclass(frozen=True)
class VenvResult:
    path: Path
    python: Path
    base: Interpreter  # the interpreter the venv was made from
    replaced: bool


def check_venv_path(path: Path, *, clear: bool = False) -> bool:
    """True when ``path`` holds a venv to replace (only with ``clear``: an existing venv is
    refused otherwise, as uv does; its packages would be lost); raise if it must not be
    touched."""
    if path.is_symlink() or path.is_file():
        raise KeaError(f"{path} exists and is not a directory", hint="choose another path")
    if not path.exists():
        return False
    if is_venv_dir(path):
        if not clear:
            raise KeaError(
                f"a virtual environment already exists at {path}",
                hint="use --clear to replace it (its packages are removed)",
            )
        return True
    try:
        empty = not any(path.iterdir())
    except OSError as e:
        raise KeaError(f"cannot read {path}: {e.strerror}") from None
    if empty:
        return False
    raise KeaError(
        f"{path} exists and is not a virtual environment; refusing to replace it",
        hint="remove it yourself, or choose another path",
    )


def create_venv(
    path: Path,
    base: Interpreter,
    *,
    seed: bool = False,
    prompt: str | None = None,
    system_site_packages: bool = False,
    cache_dir: Path | None = None,
    clear: bool = False,
) -> VenvResult:
    """Create a venv at ``path`` with ``base``'s ``venv`` module (replacing an old venv only
    with ``clear``)."""
    path = Path(os.path.abspath(path))
    replaced = check_venv_path(path, clear=clear)
    if replaced:
        try:
            shutil.rmtree(path)
        except OSError as e:
            raise KeaError(f"cannot remove the old environment at {path}: {e.strerror}") from None
    args = [base.sys_executable or base.executable, "-I", "-m", "venv"]
    if not seed:
        args.append("--without-pip")
    if prompt:
        args += ["--prompt", prompt]
    if system_site_packages:
        args.append("--system-site-packages")
    args.append(str(path))
    try:
        proc = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    except OSError as e:
        raise KeaError(f"cannot run {args[0]}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise KeaError("creating the virtual environment took more than 10 minutes") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise KeaError(f"creating the virtual environment failed: {lines[-1]}")
    python = venv_python(path)
    if not python.exists():
        raise KeaError(f"the new environment has no interpreter at {python}")
    # Warm the interpreter cache: the next `kea pip` in this venv needs no probe run.
    try:
        query_interpreter(python, cache_dir)
    except KeaError:
        pass
    return VenvResult(path=path, python=python, base=base, replaced=replaced)
