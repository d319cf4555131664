"""The environment lock (kea.install.envlock): exclusive across processes, a time-out with a
clear error, released when its holder dies, and the same lock filelock takes (older kea)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kea.errors import KeaError
from kea.install.envlock import EnvLock, LockTimeout
from kea.install.plan import WantedDist
from kea.install.transaction import EnvTransaction
from tests.install.helpers import archive, install, py, target_of

HOLD = """
import sys, time
{make}
lock.acquire({acquire})
print("held", flush=True)
sys.stdin.readline()
"""


def _holder(path: Path, *, use_filelock: bool = False) -> subprocess.Popen[str]:
    if use_filelock:
        make = f"import filelock; lock = filelock.FileLock({str(path)!r})"
        acquire = "timeout=10"
    else:
        make = f"from kea.install.envlock import EnvLock; lock = EnvLock({str(path)!r})"
        acquire = "10"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(make=make, acquire=acquire)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("use_filelock", [False, True])
def test_held_elsewhere_times_out_then_is_taken(tmp_path: Path, use_filelock: bool) -> None:
    path = tmp_path / ".kea.lock"
    holder = _holder(path, use_filelock=use_filelock)
    try:
        lock = EnvLock(str(path))
        start = time.monotonic()
        with pytest.raises(LockTimeout):
            lock.acquire(0.3)
        assert time.monotonic() - start >= 0.3
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    lock.acquire(5)  # free now
    lock.release()


def test_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / ".kea.lock"
    holder = _holder(path)
    holder.kill()
    holder.wait(timeout=30)
    lock = EnvLock(str(path))
    lock.acquire(5)
    lock.release()


def test_install_waits_for_the_environment_lock(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    arch = archive(tmp_path, "waited", "1.0", files={"waited/__init__.py": "X = 1\n"})
    holder = _holder(venv / ".kea.lock")
    try:
        txn = EnvTransaction(target, timeout=0.3)
        with pytest.raises(KeaError, match="another kea process holds the environment lock"):
            txn.__enter__()
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    install(target, WantedDist("waited", "1.0", arch))
    assert py(venv, "import waited; print(waited.X)") == "1"
    assert (venv / ".kea.lock").is_file()
