"""``kea.cli.malloc.limit_arenas``: glibc accepts the arena limit once per process; a user's own
MALLOC_ARENA_MAX is left alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from kea.cli.malloc import limit_arenas\nprint(limit_arenas(), limit_arenas())\n"


def _run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt arenas are glibc's")
def test_glibc_takes_the_limit_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True False"


def test_the_users_setting_wins() -> None:
    env = dict(os.environ, MALLOC_ARENA_MAX="4")
    assert _run(env) == "False False"
