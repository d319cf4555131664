"""Adversarial cases for the no-op fast path: what a user of pip/uv may do between two identical
``kea pip install`` runs, and what the stamp may keep. Each test either proves a change makes the
stamp miss (the full path answers, with its own answer) or that a hit is right.

Same machinery as test_fastpath: real venvs, real wheels, a loopback index, fresh interpreters.
"""

from __future__ import annotations

import marshal
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kea.cli import fastpath
from tests.fastpath.test_fastpath import AUDITED, Setup, settle, setup, site_packages, universe
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

__all__ = ["setup", "universe"]  # fixtures, imported for pytest


def _stamp(s: Setup) -> dict[str, Any]:
    (path,) = s.stamps()
    data = marshal.loads(path.read_bytes())
    assert isinstance(data, dict)
    return data


# -- files changed behind kea's back ---------------------------------------------------------------


def test_metadata_rewritten_in_place_with_its_mtime_restored(setup: Setup) -> None:
    """``cp -p``, ``rsync -a --inplace``, a tar restore: same inode, same size, same mtime, other
    content. Only the inode's change time (which no one can set) tells."""
    setup.primed()
    meta = site_packages(setup.venv) / "lib-2.0.dist-info" / "METADATA"
    before = meta.stat()
    text = meta.read_text()
    new = text.replace("Requires-Dist: leaf", "Requires-Dist: leaX")
    assert len(new) == len(text) and new != text
    with meta.open("r+") as f:  # in place: same inode, same size
        f.write(new)
    os.utime(meta, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = meta.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    r = setup.run()
    assert not r.hit, "answered from a stamp about METADATA that is no longer there"
    # the full path's audit saw the new dependency (leax, not installed): the resolver ran
    assert r.code == 0 and r.stderr.startswith("Resolved 4 packages"), r.stderr


def test_other_installer_replaces_a_version(setup: Setup) -> None:
    """pip (not kea) installs another version of a dependency: the dist-info is renamed."""
    pytest.importorskip("pip")
    w = setup.index.directory
    wheel = build_wheel(w, "leaf", "0.5")
    setup.primed()
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(setup.venv / "bin" / "python"), "install",
         "--no-deps", "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (site_packages(setup.venv) / "leaf-0.5.dist-info").is_dir()
    r = setup.run()
    assert not r.hit
    # nested.txt says just "leaf": 0.5 satisfies it, the full path audits 4 again
    assert r.code == 0 and AUDITED.match(r.stderr), r.stderr
    # and then the new state is stamped
    setup.settle()
    assert not setup.run().hit
    assert setup.run().hit


def test_egg_info_added_misses_and_changes_nothing(setup: Setup) -> None:
    setup.primed()
    egg = site_packages(setup.venv) / "other-1.0.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: other\nVersion: 1.0\n")
    r = setup.run()
    assert not r.hit and r.code == 0 and AUDITED.match(r.stderr)


def test_requirements_symlink_repointed(setup: Setup) -> None:
    other = setup.tmp / "other.txt"
    other.write_text("app[fast]==1.0\nlib>=1\nspeedup==9\n")
    link = setup.tmp / "link.txt"
    link.symlink_to(setup.reqs)
    setup.args = ["pip", "install", "-i", setup.index.url, "-r", str(link)]
    setup.primed()
    link.unlink()
    link.symlink_to(other)
    settle(setup.tmp)  # even with every mtime as old as before
    r = setup.run()
    assert not r.hit and r.code != 0 and "speedup" in r.stderr, r.stderr


def test_constraints_file_edited(setup: Setup) -> None:
    cons = setup.tmp / "constraints.txt"
    cons.write_text("leaf<2\n")
    setup.args = [*setup.args, "-c", str(cons)]
    setup.primed()
    cons.write_text("leaf>=3\n")
    r = setup.run()
    assert not r.hit and r.code != 0 and "leaf" in r.stderr, r.stderr


def test_venv_through_a_symlink_repointed(setup: Setup) -> None:
    """VIRTUAL_ENV (or --python DIR) names a symlink that later points to another venv."""
    other = setup.kea.venv(setup.tmp / "empty-venv")
    link = setup.tmp / "current"
    link.symlink_to(setup.venv)
    for how in ("VIRTUAL_ENV", "--python"):
        if how == "VIRTUAL_ENV":
            setup.env["VIRTUAL_ENV"] = str(link)
        else:
            setup.args = [*setup.args, "--python", str(link)]
        link.unlink()
        link.symlink_to(setup.venv)
        setup.primed()
        link.unlink()
        link.symlink_to(other)
        r = setup.run(*setup.args, "--dry-run")
        assert "Would install 4 packages" in r.stderr, (how, r.stderr)  # the full answer
        r = setup.run()
        assert not r.hit, how
        assert "Installed 4 packages" in r.stderr, (how, r.stderr)
        shutil.rmtree(other)
        other = setup.kea.venv(setup.tmp / f"empty-{how}")


def test_venv_recreated_at_the_same_path(setup: Setup) -> None:
    setup.primed()
    shutil.rmtree(setup.venv)
    setup.kea.venv(setup.venv)
    r = setup.run()
    assert not r.hit and "Installed 4 packages" in r.stderr, r.stderr


# -- the cache directory ---------------------------------------------------------------------------


def test_relative_cache_dir_is_per_working_directory(setup: Setup) -> None:
    del setup.env["KEA_CACHE_DIR"]
    setup.env["KEA_CACHE_DIR"] = "rel-cache"
    setup.primed()
    assert (setup.kea.cwd / "rel-cache" / fastpath.BUCKET).is_dir()
    # another working directory: another cache (and another key): the full path answers
    elsewhere = setup.tmp / "elsewhere"
    elsewhere.mkdir()
    setup.kea.cwd = elsewhere
    r = setup.run()
    assert not r.hit and r.code == 0 and AUDITED.match(r.stderr)
    assert (elsewhere / "rel-cache" / fastpath.BUCKET).is_dir()


# -- what is printed, and what the stamp keeps -----------------------------------------------------


@pytest.mark.parametrize("flags", [["-qq"], ["--color", "always"], ["--color", "never"]])
def test_output_flags_replayed_exactly(setup: Setup, flags: list[str]) -> None:
    import re

    setup.args = [*setup.args, *flags]
    setup.settle()
    full = setup.run()
    hit = setup.run()
    assert not full.hit and hit.hit
    times = re.compile(r"\d+ms")
    assert (hit.code, times.sub("T", hit.stderr)) == (full.code, times.sub("T", full.stderr))
    if flags == ["--color", "always"]:
        assert "\x1b[" in hit.stderr
    if flags == ["-qq"]:
        assert hit.stderr == ""


def test_secrets_stay_out_of_the_stamp(setup: Setup) -> None:
    password, token = "s3cr3t-pw", "t0k3n-value"
    index = setup.index.url.replace("http://", f"http://user:{password}@")
    setup.reqs.write_text("app[fast]==1.0\n--extra-index-url https://u:${TOKEN}@example.invalid/\n")
    setup.env["TOKEN"] = token
    setup.args = ["pip", "install", "-i", index, "-r", str(setup.reqs)]
    bucket = setup.tmp / "cache" / fastpath.BUCKET
    bucket.mkdir(parents=True)
    bucket.chmod(0o755)  # as an older kea made it
    setup.primed()
    (path,) = setup.stamps()
    raw = path.read_bytes()
    for secret in (password, token):
        assert secret.encode() not in raw
        # nor an unsalted digest of it, which a dictionary finds
        assert fastpath.sha256_hex(secret.encode()).encode() not in raw
    # private to the user, as the credentials it was keyed with
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    r = setup.run()
    assert r.hit and password not in r.stderr and token not in r.stderr
    # the check still follows the variable
    setup.env["TOKEN"] = "other"
    assert not setup.run().hit
    assert _stamp(setup)["key"] == path.name


def _on_a_terminal(s: Setup) -> tuple[int, str]:
    """The no-op command with stderr on a pseudo-terminal: (exit code, what the terminal got)."""
    import pty

    main, sub = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kea", *s.args],
            cwd=s.kea.cwd, env=s.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=sub, timeout=240,
        )  # fmt: skip
        os.close(sub)
        sub = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(main)
        if sub >= 0:
            os.close(sub)
    assert proc.stdout == b""
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


def test_terminal_colour_is_keyed_and_replayed(setup: Setup) -> None:
    import re

    del setup.env["NO_COLOR"]
    setup.env["TERM"] = "xterm-256color"
    setup.settle()
    times = re.compile(r"\d+ms")
    code, full = _on_a_terminal(setup)
    assert code == 0 and "\x1b[" in full and "Audited" in full, full
    (stamp,) = setup.stamps()
    assert _stamp(setup)["output"][0].startswith("\x1b[")
    before = stamp.stat().st_mtime_ns
    code, hit = _on_a_terminal(setup)
    assert code == 0 and times.sub("T", hit) == times.sub("T", full)
    assert stamp.stat().st_mtime_ns == before  # answered from it, not rewritten
    # the same command on a pipe: another key, plain text
    r = setup.run()
    assert not r.hit and AUDITED.match(r.stderr), r.stderr
    # TERM=dumb on the terminal: no colour, another key
    setup.env["TERM"] = "dumb"
    code, plain = _on_a_terminal(setup)
    assert code == 0 and "\x1b[" not in plain and AUDITED.match(plain), plain


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_closed_stream_ends_as_the_full_path_does(setup: Setup, closed: str) -> None:
    """``kea pip install ... >&-`` (or ``2>&-``): Python starts with that stream None. A no-op
    writes nothing on stdout: the answer stands, exit 0, no traceback, hit or not."""
    fd = 1 if closed == "stdout" else 2
    cmd = ["sh", "-c", f'exec "$@" {fd}>&-', "sh", sys.executable, "-m", "kea", *setup.args]
    setup.settle()
    results = []
    for _ in range(3):  # the full path (writes the stamp), then two hits
        proc = subprocess.run(
            cmd, cwd=setup.kea.cwd, env=setup.env, capture_output=True, text=True, timeout=240
        )
        results.append((proc.returncode, proc.stdout, proc.stderr))
    if closed == "stdout":
        for code, _out, err in results:
            assert code == 0 and AUDITED.match(err), err
    else:  # nowhere to say it: the same ending, hit or not
        assert len({r[0] for r in results}) == 1 and all(r[1:] == ("", "") for r in results)
    assert len(setup.stamps()) == (1 if closed == "stdout" else 0)
    if closed == "stdout":
        assert setup.run().hit  # the stamp is the one a normal run uses


def test_an_interpreter_launcher_writes_no_stamp(setup: Setup) -> None:
    """``--python`` names a launcher (a pyenv shim, a wrapper script) that picks the real
    interpreter when it runs, from things no stamp can watch (PYENV_VERSION, .python-version,
    here PICK_VENV): nothing about it may be stamped."""
    launcher = setup.tmp / "launcher" / "python3"
    launcher.parent.mkdir()
    launcher.write_text('#!/bin/sh\nexec "$PICK_VENV/bin/python" "$@"\n')
    launcher.chmod(0o755)
    setup.env["PICK_VENV"] = str(setup.venv)
    setup.args = [*setup.args, "--python", str(launcher)]
    setup.settle()
    for _ in range(2):
        r = setup.run()
        assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit, r.stderr
    assert setup.stamps() == []


def test_user_config_created(setup: Setup) -> None:
    del setup.env["KEA_NO_CONFIG"]
    setup.primed()
    config = Path(setup.env["XDG_CONFIG_HOME"]) / "kea" / "kea.toml"
    config.parent.mkdir(parents=True)
    config.write_text("bogus-key = 1\n")
    r = setup.run()
    assert not r.hit and r.code != 0 and "bogus-key" in r.stderr, r.stderr


@pytest.mark.parametrize("how", ["KEA_NO_CACHE", "config cache-dir"])
def test_no_stamp_where_the_run_does_not_use_that_cache(setup: Setup, how: str) -> None:
    """KEA_NO_CACHE=1, or a cache-dir from a config file (the fast path does not read config
    files): the full path answers every time and no stamp is written anywhere."""
    elsewhere = setup.tmp / "configured-cache"
    if how == "KEA_NO_CACHE":
        setup.env["KEA_NO_CACHE"] = "1"
    else:
        del setup.env["KEA_NO_CONFIG"], setup.env["KEA_CACHE_DIR"]
        setup.env["XDG_CACHE_HOME"] = str(setup.tmp / "xdg-cache")
        (setup.kea.cwd / "kea.toml").write_text(f'cache-dir = "{elsewhere}"\n')
    setup.settle()
    for _ in range(2):
        r = setup.run()
        assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit, r.stderr
    assert setup.stamps() == []
    assert not (elsewhere / fastpath.BUCKET).exists()
    assert not (setup.tmp / "xdg-cache" / "kea" / fastpath.BUCKET).exists()


def test_hit_times_are_printed_as_the_full_path_prints_them() -> None:
    from kea.cli.install_output import elapsed

    for seconds in (0, 0.0004, 0.0005, 0.0126, 0.9994, 0.9996, 1, 1.234, 75.5, -0.001):
        assert fastpath.elapsed(seconds) == elapsed(seconds), seconds


def test_env_digests_are_salted_per_stamp_and_name() -> None:
    a = fastpath.env_digest("k1", "TOKEN", "v")
    assert a is not None and a != fastpath.sha256_hex(b"v")
    assert a != fastpath.env_digest("k2", "TOKEN", "v")
    assert a != fastpath.env_digest("k1", "OTHER", "v")
    assert fastpath.env_digest("k1", "TOKEN", None) is None
    assert fastpath.env_digest("k1", "TOKEN", "") not in (None, a)


def _another_python() -> Path | None:
    """A CPython 3.11+ of another minor version than the one running the tests, if any."""
    import glob

    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pattern = os.path.expanduser("~/.pyenv/versions/3.1*/bin/python3.1*")
    for path in [*sorted(glob.glob(pattern)), *sorted(glob.glob("/usr/bin/python3.1*"))]:
        name = os.path.basename(path)
        if name.endswith("-config") or name[len("python") :] == mine:
            continue
        if name[len("python") :] in ("3.11", "3.12", "3.13", "3.14") and os.access(path, os.X_OK):
            return Path(path)
    return None


def test_venv_interpreter_upgraded_in_place(setup: Setup) -> None:
    """Same venv path, a new Python behind its ``bin/python`` (the base upgraded to another minor
    version, its pyvenv.cfg edited in place with its mtime put back): the full path answers,
    and installs into the new version's site-packages."""
    other = _another_python()
    if other is None:
        pytest.skip("no CPython of another minor version on this machine")
    version = other.name[len("python") :]
    setup.primed()
    bindir = setup.venv / "bin"
    # every name of the old interpreter goes, whichever of them the venv's layout chains through
    for name in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        (bindir / name).unlink(missing_ok=True)
    (bindir / "python3").symlink_to(other)
    (bindir / "python").symlink_to("python3")
    cfg = setup.venv / "pyvenv.cfg"
    st = cfg.stat()
    lines = [
        f"home = {other.parent}" if line.startswith("home") else line
        for line in cfg.read_text().splitlines()
        if not line.startswith(("version", "executable", "command"))
    ]
    cfg.write_text("\n".join(lines) + "\n")
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = setup.run()
    assert not r.hit
    assert r.code == 0 and "Installed 4 packages" in r.stderr, r.stderr
    new_site = setup.venv / "lib" / f"python{version}" / "site-packages"
    assert (new_site / "lib-2.0.dist-info").is_dir()


def test_a_stamp_that_cannot_be_written_or_read(setup: Setup) -> None:
    """Its path taken by a directory (a read-only cache as root would be, in effect): every run
    is the full path, exit 0, one line, no traceback, and nothing is left behind."""
    proc = subprocess.run(
        [sys.executable, "-c",
         "import os, sys\nfrom kea.cli import fastpath\n"
         "print(fastpath.stamp_path(sys.argv[1:], os.environ))", *setup.args],
        cwd=setup.kea.cwd, env=setup.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    taken = Path(proc.stdout.strip())
    taken.mkdir(parents=True)
    setup.settle()
    for _ in range(2):
        r = setup.run()
        assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit, r.stderr
    assert taken.is_dir() and list(taken.parent.iterdir()) == [taken]  # no .tmp left


def test_uninstall_racing_a_stamp_writer(setup: Setup) -> None:
    """Another installer removes a package while a full no-op run is writing its stamp: whatever
    the interleaving (the run saw the package or not, stamped or not), the next run must not
    answer from a stamp that still has it installed."""
    runner = [sys.executable, "-c", "from kea.cli.main import main; main()", *setup.args]
    uninstall = [sys.executable, "-m", "kea", "pip", "uninstall", "leaf"]
    stale_risk = 0
    # the last one (None) removes it only once the run is over: it surely stamped
    for delay in (0.0, 0.15, 0.3, 0.45, None):
        setup.settle()
        noop = subprocess.Popen(
            runner, cwd=setup.kea.cwd, env=setup.env, stderr=subprocess.PIPE, text=True
        )
        if delay is None:
            noop.wait(timeout=240)
            assert len(setup.stamps()) == 1
        else:
            time.sleep(delay)
        gone = subprocess.run(
            uninstall, cwd=setup.kea.cwd, env=setup.env, capture_output=True, text=True,
            timeout=240,
        )  # fmt: skip
        noop.wait(timeout=240)
        assert gone.returncode == 0, gone.stderr
        assert noop.returncode == 0
        saw = noop.stderr.read() if noop.stderr else ""
        present = (site_packages(setup.venv) / "leaf-1.0.dist-info").is_dir()
        r = setup.run()
        if present:  # the no-op run came second and put it back: the truth is "Audited"
            assert r.code == 0 and AUDITED.match(r.stderr), (delay, saw, r.stderr)
            continue
        # the run audited before the removal (it may have stamped): that stamp must miss
        stale_risk += saw.startswith("Audited")
        assert not r.hit, f"delay {delay}: answered from a stamp of a package now gone"
        assert " + leaf==1.0" in r.stderr.splitlines(), r.stderr  # and leaf is back
    assert stale_risk, "no interleaving where the run audited before the removal"
