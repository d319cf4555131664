"""``--compile-bytecode``: compile staged ``.py`` files with the *target* interpreter, in parallel.

The ``.pyc`` files are written next to the staged sources (``__pycache__``) but name the final,
installed path as their source (``dfile``), so tracebacks show real paths; they move into place
with the rest of the package and are listed in its RECORD.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

from kea.dist.record import RecordEntry, hash_bytes
from kea.errors import KeaError
from kea.install.environment import Scheme
from kea.install.wheel import StagedWheel

# The child must not outlive kea: a kea killed mid-compile (SIGKILL, OOM) is rolled back by the
# next kea command, and a compiler still running would write __pycache__ directories back into
# what was just removed. On Linux the kernel kills it with its parent (PR_SET_PDEATHSIG); the
# parent-pid check before every file covers the start-up race and other systems.
_SCRIPT = r"""
import json, os, py_compile, sys, importlib.util
parent = int(sys.argv[1])
if sys.platform.startswith("linux"):
    try:
        import ctypes, signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:
        pass
out = []
for src, final in json.load(sys.stdin):
    if os.getppid() != parent:
        sys.exit(3)  # kea is gone: write nothing more
    cfile = importlib.util.cache_from_source(src)
    try:
        py_compile.compile(src, cfile=cfile, dfile=final, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
        out.append(cfile)
    except py_compile.PyCompileError:
        pass  # like pip: a file that does not compile is installed without bytecode
print(json.dumps(out))
"""


def compile_staged(
    staged: list[StagedWheel], scheme: Scheme, python: str, *, jobs: int | None = None
) -> int:
    """Compile every staged ``.py`` under purelib/platlib; returns the number of .pyc files."""
    jobs_list: list[tuple[str, str]] = []
    owners: dict[str, tuple[StagedWheel, str, str]] = {}  # staged .py -> (wheel, key, rel)
    for wheel in staged:
        for key, rel in wheel.paths():
            if key not in ("purelib", "platlib") or not rel.endswith(".py"):
                continue
            src = str(wheel.staged_path(key, rel))
            final = os.path.join(str(getattr(scheme, key)), rel)
            jobs_list.append((src, final))
            owners[src] = (wheel, key, rel)
    if not jobs_list:
        return 0
    n = max(1, min(jobs or os.cpu_count() or 1, (len(jobs_list) + 49) // 50))
    chunks = [jobs_list[i::n] for i in range(n)]

    def run(chunk: list[tuple[str, str]]) -> list[str]:
        proc = subprocess.run(
            [python, "-I", "-c", _SCRIPT, str(os.getpid())],
            input=json.dumps(chunk).encode(),
            capture_output=True,
        )
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            raise KeaError(f"bytecode compilation failed: {last}")
        result: list[str] = json.loads(proc.stdout)
        return result

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(run, chunks))
    count = 0
    for pycs in results:
        for pyc in pycs:
            # __pycache__/name.<tag>.pyc -> the source next to __pycache__
            cache_dir = os.path.dirname(pyc)
            stem = os.path.basename(pyc).split(".", 1)[0]
            src = os.path.join(os.path.dirname(cache_dir), stem + ".py")
            owner = owners.get(src)
            if owner is None:
                continue
            wheel, key, rel = owner
            parent = os.path.dirname(rel)
            pyc_rel = f"{parent}/__pycache__/" if parent else "__pycache__/"
            pyc_rel += os.path.basename(pyc)
            with open(pyc, "rb") as f:
                data = f.read()
            wheel.files[(key, pyc_rel)] = RecordEntry("", hash_bytes(data), len(data))
            count += 1
    return count
