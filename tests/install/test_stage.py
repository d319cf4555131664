"""Staging split across threads (``kea.install.stage``): a large wheel's directories and files
are created in chunks by several threads, parents before children, and a failure in any chunk
undoes the whole install."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kea.dist.record import parse_record
from kea.errors import KeaError
from kea.install.environment import resolve_target
from kea.install.installer import installed_dists
from kea.install.link import Linker
from kea.install.plan import WantedDist
from kea.install.stage import _dir_tasks, run_stages
from kea.install.wheel import plan_stage, read_wheel
from tests.install.helpers import archive, install, py, site_packages, target_of

# 16 x 12 nested directories with 2 modules each: 192 leaf directories at one depth and about
# 600 files, enough for the directories and the links each to be split into several chunks.
BIG = {
    f"big/p{i}/q{j}/{m}.py": f"WHERE = ({i}, {j}, {m!r})\n"
    for i in range(16)
    for j in range(12)
    for m in ("a", "b")
}
BIG |= {f"big/p{i}/__init__.py": "" for i in range(16)}
BIG |= {f"big/p{i}/q{j}/__init__.py": "" for i in range(16) for j in range(12)}
BIG["big/__init__.py"] = ""


class CountingPool(ThreadPoolExecutor):
    """A real thread pool that remembers which threads ran its tasks."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers)
        self.threads: set[int] = set()
        self.tasks = 0
        self._lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            with self._lock:
                self.threads.add(threading.get_ident())
                self.tasks += 1
            return fn(*args, **kwargs)

        return super().submit(run)


def test_large_wheel_is_staged_in_chunks_by_several_threads(tmp_path: Path, venv: Path) -> None:
    target = resolve_target(python=str(venv), cache_dir=tmp_path / "cache" / "interpreters-v1")
    arch = archive(tmp_path, "big", "1.0", files=BIG, console_scripts={"big-cli": "big:main"})
    layout = read_wheel(arch, target.interpreter.executable)
    stage = tmp_path / "stage"
    stage.mkdir()
    plan = plan_stage(layout, stage, scheme=target.scheme, executable="/usr/bin/python3")
    assert len(plan.staged.kept) > 500 and len(plan.dirs) > 200
    with CountingPool(4) as pool:
        run_stages([plan], Linker(), pool, 4)
    assert pool.tasks > 8  # directories at two depths, the links and the writes: split
    assert len(pool.threads) > 1
    staged = stage / "big.new" / "purelib"
    for rel in BIG:
        assert (staged / rel).read_text() == BIG[rel], rel
    assert (stage / "big.new" / "scripts" / "big-cli").is_file()
    assert (stage / "big-1.0.dist-info" / "INSTALLER").read_text() == "kea\n"


def test_directories_are_created_by_subtree() -> None:
    """Each pool task makes whole subtrees: a directory's parent is made first by the calling
    thread, earlier in the same task, or already exists; a subtree larger than its share is
    split below its root, so one large wheel still spreads over the threads."""
    sp = "/v/lib/site-packages"
    big = [f"{sp}/big"] + [f"{sp}/big/p{i}" for i in range(16)]
    big += [f"{sp}/big/p{i}/q{j}" for i in range(16) for j in range(12)]
    small = [f"{sp}/small", f"{sp}/small/sub", "/v/stage/small.new", "/v/stage/small.new/purelib"]
    dirs = sorted(big + small, key=lambda d: d.count("/"))
    first, tasks = _dir_tasks(dirs, 2)
    made = first + [d for task in tasks for d in task]
    assert sorted(made) == sorted(dirs)
    assert first == [f"{sp}/big"]  # split below it: its 16 subtrees go to the pool
    assert len(tasks) == 8 and all(tasks)
    for task in tasks:
        for i, d in enumerate(task):
            parent = d.rpartition("/")[0]
            assert parent in first or parent in task[:i] or parent not in dirs, d
    sizes = sorted(len(t) for t in tasks)
    assert sizes[-1] - sizes[0] <= 13  # packed evenly: subtrees of 13 directories at most


def test_large_wheel_installs_whole(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    big = archive(tmp_path, "big", "1.0", files=BIG)
    small = archive(tmp_path, "small", "1.0", console_scripts={"small-cli": "small:main"})
    install(target, WantedDist("big", "1.0", big), WantedDist("small", "1.0", small))
    assert py(venv, "import big.p15.q11.b as m; print(m.WHERE)") == "(15, 11, 'b')"
    sp = site_packages(venv)
    record = parse_record((sp / "big-1.0.dist-info" / "RECORD").read_text())
    assert {e.path for e in record} >= set(BIG)
    for e in record:
        assert (sp / e.path).is_file(), e.path
    assert (venv / "bin" / "small-cli").is_file()
    assert not any(p.name.startswith(".kea-staging") and any(p.iterdir()) for p in sp.iterdir())


def test_missing_file_in_one_chunk_undoes_every_package(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    small = archive(tmp_path, "small", "1.0", console_scripts={"small-cli": "small:main"})
    big = archive(tmp_path, "big", "1.0", files=BIG)
    (big / "big" / "p6" / "q3" / "b.py").unlink()  # in the middle: not the first chunk
    with pytest.raises(
        KeaError, match=r"cached copy of big 1\.0 is damaged: big/p6/q3/b\.py is missing from"
    ):
        install(target, WantedDist("small", "1.0", small), WantedDist("big", "1.0", big))
    assert list(site_packages(venv).iterdir()) == []
    assert not (venv / "bin" / "small-cli").exists()
    assert installed_dists(target) == {}


def test_scripts_not_rewritten_are_linked_when_executable(tmp_path: Path, venv: Path) -> None:
    """Only #!python scripts are rewritten; another script is linked from the archive (a large
    binary is not read into memory) when it is executable there, else copied as executable."""
    import os
    import subprocess

    target = target_of(venv, tmp_path / "cache")
    arch = archive(
        tmp_path,
        "tools",
        "1.0",
        files={"tools/__init__.py": ""},
        data={
            "scripts/run-sh": "#!/bin/sh\necho linked\n",
            "scripts/plain-sh": "#!/bin/sh\necho copied\n",
            "scripts/run-py": "#!python\nprint('rewritten')\n",
        },
    )
    data = arch / "tools-1.0.data" / "scripts"
    os.chmod(data / "run-sh", 0o755)
    os.chmod(data / "plain-sh", 0o644)
    install(target, WantedDist("tools", "1.0", arch))
    bin_ = venv / "bin"
    for name, said in (("run-sh", "linked"), ("plain-sh", "copied"), ("run-py", "rewritten")):
        out = subprocess.run([str(bin_ / name)], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == said, (name, out.stderr)
    assert (bin_ / "run-sh").stat().st_ino == (data / "run-sh").stat().st_ino
    assert (bin_ / "plain-sh").stat().st_ino != (data / "plain-sh").stat().st_ino
    assert (data / "plain-sh").stat().st_mode & 0o777 == 0o644  # the archive is left as it is
    record = parse_record((site_packages(venv) / "tools-1.0.dist-info" / "RECORD").read_text())
    rows = {e.path: e for e in record}
    for name in ("run-sh", "plain-sh", "run-py"):
        assert rows[f"../../../bin/{name}"].hash.startswith("sha256=")
