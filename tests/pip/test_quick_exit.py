"""``python -m kea`` / the console script end without the interpreter's teardown
(kea.cli.output._quick_exit); what has to happen at exit must still happen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel


def _temp_caches(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("kea-cache-*"))


def test_no_cache_temp_dir_is_removed_on_success_and_on_error(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    build_wheel(small_index.directory, "lib", "1.0")
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    kea.env["TMPDIR"] = str(tmp)

    ok = kea("pip", "install", "--no-cache", "-i", small_index.url, "lib", venv=venv)
    assert ok.returncode == 0, ok.stderr
    assert " + lib==1.0" in ok.stderr
    assert _temp_caches(tmp) == []  # the atexit handler ran

    bad = kea("pip", "install", "--no-cache", "-i", small_index.url, "nothere", venv=venv)
    assert bad.returncode == 1, bad.stderr
    assert bad.stderr.startswith("error: "), bad.stderr
    assert _temp_caches(tmp) == []


def test_all_output_reaches_a_pipe(kea: Kea, small_index: SimpleIndex, tmp_path: Path) -> None:
    names = [f"pkg{i:03d}" for i in range(120)]
    for name in names:
        build_wheel(small_index.directory, name, "1.0")
    small_index.scan()
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", small_index.url, *names, venv=venv)
    assert r.returncode == 0, r.stderr
    assert sum(line.startswith(" + pkg") for line in r.stderr.splitlines()) == 120

    # stdout through a pipe that is read slowly: nothing of `pip freeze` may be lost
    proc = subprocess.run(
        [sys.executable, "-m", "kea", "pip", "freeze", "--python", str(venv / "bin" / "python")],
        env=kea.env,
        cwd=kea.cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{n}==1.0" for n in names]


def test_in_process_callers_still_get_system_exit() -> None:
    code = (
        "from kea.cli.main import main\n"
        "try:\n"
        "    main(['cache', 'dir', '--cache-dir', '/nonexistent-kea-test'])\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "exit 0", proc.stderr


def test_a_profiler_still_gets_its_output(tmp_path: Path) -> None:
    out = tmp_path / "kea.prof"
    proc = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "kea", "cache", "dir"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KEA_NO_CONFIG": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    import pstats

    stats = pstats.Stats(str(out))
    assert any(fn[2] == "run_cli" for fn in stats.stats)  # type: ignore[attr-defined]


def test_a_ctrl_c_after_the_command_finished_is_not_a_traceback() -> None:
    """The CI run of 2026-11-26 caught a SIGINT landing while the finished command imported
    kea.cli.exit: a traceback after the success lines. Once the command is over, SIGINT is
    ignored, so the atexit handlers run whole, and one landing just before that is swallowed."""
    code = (
        "import os, signal, sys\n"
        "import kea.cli.exit as E\n"
        "from kea.cli import output\n"
        "def fake(code):\n"  # a real SIGINT, delivered where the process ends
        "    print('ignored:', signal.getsignal(signal.SIGINT) == signal.SIG_IGN, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    print('survived', flush=True)\n"
        "    raise KeyboardInterrupt\n"  # as if it had landed just before SIG_IGN
        "E.quick_exit = fake\n"
        "import click\n"
        "@click.command()\n"
        "def ok():\n"
        "    pass\n"
        "output.run_cli(ok, [], quick_exit=True)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ignored: True", "survived"]
    assert "Traceback" not in r.stderr and "interrupted" not in r.stderr, r.stderr
