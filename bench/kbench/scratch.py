"""Where the tools write: a fresh ext4 filesystem with a journal, on a loop device.

This machine's disk is ext4 without a journal. There, every inode allocation skips the inodes
freed in the last 60 s, or 360 s while their inode table block is dirty (Linux 6.18,
``recently_deleted`` in fs/ext4/ialloc.c), one buffer lookup each. A run that follows the
deletion of a venv or a cache pays for that scan on every file it creates. Measured by hand
(cold jupyter, alternated, the previous venv and cache deleted right before each run): on the
disk kea went 1.2 -> 6.0 s and uv 0.7 -> 8.2 s within six rounds; on this filesystem both
stayed level (kea 1.13-1.21 s after a first run of 1.45 s, uv 0.74-0.80 s). A journal turns
that check off, as on most users' machines, so the bench can delete between runs and needs
no settling time.

Making it needs root (losetup, mount). Without root the bench falls back to the disk and to
its graveyard-and-settle workaround (``Bench.retire``, ``Bench.settle``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from kbench import WORK

IMAGE = WORK / "scratch.img"
MOUNT = WORK / "scratch"
SIZE = "48G"  # sparse; blocks freed inside are given back to the disk (mount -o discard)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def _loops() -> list[str]:
    """Loop devices backed by IMAGE (left by an earlier run that was killed)."""
    try:
        out = _run("losetup", "-j", str(IMAGE))
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line.split(":", 1)[0] for line in out.splitlines() if line]


def unmount() -> None:
    """Take the filesystem down and delete its image; quiet when there is none."""
    if os.path.ismount(MOUNT):
        subprocess.run(["umount", str(MOUNT)], check=False, capture_output=True)
    for dev in _loops():
        subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)
    IMAGE.unlink(missing_ok=True)
    if not os.path.ismount(MOUNT):
        with contextlib.suppress(OSError):
            MOUNT.rmdir()


def mount() -> tuple[Path | None, str]:
    """A fresh journaled ext4 at MOUNT, or None and why not."""
    if os.geteuid() != 0:
        return None, "not root"
    missing = [t for t in ("mkfs.ext4", "losetup", "mount", "umount") if not shutil.which(t)]
    if missing:
        return None, f"{', '.join(missing)} not found"
    unmount()
    try:
        _run("truncate", "-s", SIZE, str(IMAGE))
        # Inode tables and journal written now, not by a kernel thread during the runs.
        _run(
            "mkfs.ext4", "-q", "-F", "-O", "has_journal",
            "-E", "lazy_itable_init=0,lazy_journal_init=0", str(IMAGE),
        )  # fmt: skip
        # direct-io: the image's blocks are not cached a second time in the disk's page cache.
        dev = _run("losetup", "-f", "--show", "--direct-io=on", str(IMAGE))
        MOUNT.mkdir(parents=True, exist_ok=True)
        _run("mount", "-o", "discard", dev, str(MOUNT))
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", None) or str(e)
        unmount()
        return None, f"could not make it: {err.strip().splitlines()[-1] if err.strip() else e}"
    return MOUNT, f"ext4 with a journal on {dev} ({SIZE} sparse image)"
