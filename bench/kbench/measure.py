"""Timing one command (wall clock, peak RSS of its process tree) and the statistics on samples."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mb: float  # peak RSS of the largest process in the tool's tree (wait4's ru_maxrss)
    ok: bool
    error: str | None = None
    cpu: float = 0.0  # user + system CPU seconds of the whole tree (robust to a loaded machine)


def last_line(text: str, secrets: Sequence[str] = (), limit: int = 240) -> str:
    """The last non-empty line of a tool's stderr, secrets masked, cut to ``limit``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith(("error", "fatal")) or "Error:" in ln]
    line = errors[-1] if errors else (lines[-1] if lines else "(no output)")
    for s in secrets:
        if s:
            line = line.replace(s, "****")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def run_timed(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float,
    secrets: Sequence[str] = (),
    cwd: str | None = None,
    log: str | None = None,
) -> Sample:
    """Run ``cmd``; on failure keep its stderr (secrets masked) in ``log`` if given."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
            start_new_session=True,  # its own process group: a kill reaches pip's child too
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # the harness is being stopped: stop the tool with it
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_mb = usage.ru_maxrss / 1024.0  # KiB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        if proc.returncode == 0:
            return Sample(elapsed, rss_mb, True, cpu=cpu)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        if log is not None:
            masked = text
            for secret in secrets:
                if secret:
                    masked = masked.replace(secret, "****")
            with open(log, "w") as f:
                f.write(masked)
        if elapsed >= timeout:
            msg = f"timed out after {timeout:.0f}s"
        else:
            msg = f"exit {proc.returncode}: {last_line(text, secrets)}"
        return Sample(elapsed, rss_mb, False, msg, cpu=cpu)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def pair_ratios(a: Sequence[float | None], b: Sequence[float | None]) -> list[float]:
    """``a[i] / b[i]`` for the runs where both tools produced a time (runs are paired by index)."""
    return [x / y for x, y in zip(a, b, strict=False) if x is not None and y is not None and y > 0]


def spread(values: Sequence[float]) -> tuple[float, float] | None:
    return (min(values), max(values)) if values else None
