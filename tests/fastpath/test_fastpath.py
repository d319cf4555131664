"""The no-op fast path of ``kea pip install`` (kea.cli.fastpath): hits, and everything that
must make it miss.

Each test installs real wheels from a loopback index into a real venv, then runs the same no-op
command in fresh interpreters. A *hit* is proven by what the interpreter imported: the fast path
answers before click (or packaging, msgspec, logging, asyncio) is imported; the full path cannot.
Files the tests made are backdated by ``settle`` (as if the user paused): the full path refuses
to write a stamp while any file it depends on changed within 2 seconds of the run ("racy").
"""

from __future__ import annotations

import json
import marshal
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kea.cli import fastpath
from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.test_install_startup import IN_PROCESS
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

# Never imported by a hit; always by the full path (click, at least).
HIT_FORBIDDEN = ("click", "packaging", "msgspec", "logging", "asyncio", "platformdirs", "rich")
AUDITED = re.compile(r"^Audited (\d+) packages? in \d+ms\n$")


@dataclass
class Run:
    code: int
    modules: set[str]
    stderr: str

    @property
    def hit(self) -> bool:
        return not any(m.split(".")[0] in HIT_FORBIDDEN for m in self.modules)


@dataclass
class Setup:
    kea: Kea
    index: SimpleIndex
    tmp: Path
    venv: Path
    reqs: Path
    args: list[str]
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """``kea ARGS`` (default: the no-op install) in a fresh interpreter."""
        proc = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, *(args or self.args)],
            cwd=self.kea.cwd,
            env=env if env is not None else self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        return Run(out["code"], set(out["modules"]), proc.stderr)

    def stamps(self) -> list[Path]:
        d = self.tmp / "cache" / fastpath.BUCKET
        return sorted(p for p in d.iterdir() if not p.name.endswith(".tmp")) if d.is_dir() else []

    def settle(self) -> None:
        settle(self.tmp)

    def primed(self) -> None:
        """Settle, then one full no-op run writes the stamp and the next one hits."""
        self.settle()
        first = self.run()
        assert first.code == 0 and AUDITED.match(first.stderr), first.stderr
        assert not first.hit
        second = self.run()
        assert second.code == 0 and AUDITED.match(second.stderr), second.stderr
        assert second.hit, "the second identical no-op should be answered by the fast path"


def settle(root: Path) -> None:
    """Backdate every file and directory under ``root`` (not following symlinks) by 10 s."""
    then = time.time_ns() - 10_000_000_000
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), ns=(then, then), follow_symlinks=False)
    os.utime(root, ns=(then, then))


@pytest.fixture
def universe(small_index: SimpleIndex) -> SimpleIndex:
    w = small_index.directory
    build_wheel(w, "app", "1.0", requires=["lib>=1"], extras={"fast": ["speedup"]})
    build_wheel(w, "lib", "2.0", requires=["leaf"])
    build_wheel(w, "leaf", "1.0")
    build_wheel(w, "speedup", "1.0")
    small_index.scan()
    return small_index


@pytest.fixture
def setup(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> Iterator[Setup]:
    venv = kea.venv(tmp_path / "venv")
    reqs = tmp_path / "requirements.txt"
    (tmp_path / "nested.txt").write_text("leaf\n")
    reqs.write_text("app[fast]==1.0\nlib>=1\n-r nested.txt\n")
    args = ["pip", "install", "-i", universe.url, "-r", str(reqs)]
    r = kea(*args, venv=venv)
    assert r.returncode == 0, r.stderr
    assert "Installed 4 packages" in r.stderr
    env = dict(kea.env, VIRTUAL_ENV=str(venv))
    yield Setup(kea, universe, tmp_path, venv, reqs, args, env)


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def test_second_run_hits_with_the_same_output(setup: Setup) -> None:
    setup.settle()
    full = setup.run()
    assert full.code == 0 and not full.hit
    assert AUDITED.match(full.stderr).group(1) == "4"  # type: ignore[union-attr]
    (stamp,) = setup.stamps()
    watched = marshal.loads(stamp.read_bytes())["paths"]
    # the code that answered is watched too: an upgraded or edited kea makes the stamp miss
    import kea.cli.install_request

    assert kea.cli.install_request.__file__ in watched
    assert str(site_packages(setup.venv) / "lib-2.0.dist-info" / "METADATA") in watched
    requests = len(setup.index.requests)

    hit = setup.run()
    assert hit.code == 0
    assert hit.hit, sorted(m for m in hit.modules if m.split(".")[0] in HIT_FORBIDDEN)
    assert AUDITED.match(hit.stderr).group(1) == "4"  # type: ignore[union-attr]
    assert "kea.cli.fastpath" in hit.modules and "kea.dist.installed" not in hit.modules
    assert len(setup.index.requests) == requests  # nothing asked of the index
    # the real command (python -m kea: the console script's path, which ends with a quick
    # exit) hits too, and its line reaches the pipe
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kea", *setup.args],
        cwd=setup.kea.cwd,
        env=setup.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout == ""
    timings = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rpartition("|")[2].strip() for line in timings}
    assert "kea.cli.fastpath" in imported and "click" not in imported
    rest = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert len(rest) == 1 and AUDITED.match(rest[0] + "\n"), rest


def _edit_requirements(s: Setup) -> Callable[[Run], None]:
    s.reqs.write_text("lib>=1\n")

    def check(r: Run) -> None:
        assert AUDITED.match(r.stderr).group(1) == "2"  # type: ignore[union-attr]

    return check


def _edit_nested(s: Setup) -> Callable[[Run], None]:
    (s.tmp / "nested.txt").write_text("leaf\nspeedup==9\n")

    def check(r: Run) -> None:
        assert r.code != 0 and "speedup" in r.stderr

    return check


def _uninstall_by_kea(s: Setup) -> Callable[[Run], None]:
    r = s.kea("pip", "uninstall", "leaf", venv=s.venv)
    assert r.returncode == 0, r.stderr

    def check(r: Run) -> None:
        assert " + leaf==1.0" in r.stderr.splitlines()

    return check


def _remove_dist_info(s: Setup) -> Callable[[Run], None]:
    import shutil

    shutil.rmtree(site_packages(s.venv) / "leaf-1.0.dist-info")

    def check(r: Run) -> None:
        assert " + leaf==1.0" in r.stderr.splitlines()

    return check


def _edit_metadata(s: Setup) -> Callable[[Run], None]:
    meta = site_packages(s.venv) / "lib-2.0.dist-info" / "METADATA"
    text = meta.read_text()
    with meta.open("w") as f:  # in place: same inode
        f.write(text.replace("Requires-Dist: leaf", "Requires-Dist: leaf\nRequires-Dist: nothere"))

    def check(r: Run) -> None:  # the audit saw the new dependency: the resolver ran
        assert r.code == 0 and r.stderr.startswith("Resolved 4 packages"), r.stderr

    return check


def _kea_toml_in_cwd(s: Setup) -> Callable[[Run], None]:
    s.env.pop("KEA_NO_CONFIG")  # config files are read: a stamp for that command first
    s.primed()
    (s.kea.cwd / "kea.toml").write_text("bogus-key = 1\n")

    def check(r: Run) -> None:
        assert r.code != 0 and "bogus-key" in r.stderr

    return check


def _pyproject_in_parent(s: Setup) -> Callable[[Run], None]:
    s.env.pop("KEA_NO_CONFIG")
    s.primed()
    (s.tmp / "pyproject.toml").write_text("[tool.kea]\nbogus-key = 1\n")

    def check(r: Run) -> None:
        assert r.code != 0 and "bogus-key" in r.stderr

    return check


def _other_python(s: Setup) -> Callable[[Run], None]:
    other = s.kea.venv(s.tmp / "other")
    s.args = [*s.args, "--python", str(other)]

    def check(r: Run) -> None:
        assert "Installed 4 packages" in r.stderr

    return check


def _force_color(s: Setup) -> Callable[[Run], None]:
    s.env.pop("NO_COLOR")
    s.env["FORCE_COLOR"] = "1"

    def check(r: Run) -> None:
        assert "\x1b[" in r.stderr and "Audited" in r.stderr

    return check


def _verbose(s: Setup) -> Callable[[Run], None]:
    s.args = [*s.args, "-v"]

    def check(r: Run) -> None:
        assert "Audited 4 packages" in r.stderr

    return check


def _env_var_in_requirements(s: Setup) -> Callable[[Run], None]:
    # needs its own stamp first: a file that expands ${LEAF_SPEC}
    s.reqs.write_text("app[fast]==1.0\n${LEAF_SPEC}\n")
    s.env["LEAF_SPEC"] = "leaf==1.0"
    s.primed()
    s.env["LEAF_SPEC"] = "leaf==7"

    def check(r: Run) -> None:
        assert r.code != 0 and "leaf" in r.stderr

    return check


CHANGES = {
    "requirements file edited": _edit_requirements,
    "nested -r file edited": _edit_nested,
    "package uninstalled by kea": _uninstall_by_kea,
    "dist-info removed behind kea's back": _remove_dist_info,
    "METADATA edited in place": _edit_metadata,
    "kea.toml created in cwd": _kea_toml_in_cwd,
    "pyproject.toml created in a parent": _pyproject_in_parent,
    "another --python": _other_python,
    "another env var (colour)": _force_color,
    "-v": _verbose,
    "${VAR} of a requirements file changed": _env_var_in_requirements,
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_each_input_invalidates(setup: Setup, change: str) -> None:
    setup.primed()
    check = CHANGES[change](setup)
    r = setup.run()
    assert not r.hit, f"{change}: answered from a stale stamp"
    assert "Traceback" not in r.stderr
    check(r)


def test_colour_is_replayed(setup: Setup) -> None:
    setup.env.pop("NO_COLOR")
    setup.env["FORCE_COLOR"] = "1"
    setup.settle()
    full = setup.run()
    hit = setup.run()
    assert hit.hit
    times = re.compile(r"\d+ms")
    assert "\x1b[" in full.stderr
    assert times.sub("T", hit.stderr) == times.sub("T", full.stderr)


def test_quiet_hit_prints_nothing(setup: Setup) -> None:
    setup.args = [*setup.args, "-q"]
    setup.settle()
    full = setup.run()
    hit = setup.run()
    assert (full.code, full.stderr, full.hit) == (0, "", False)
    assert (hit.code, hit.stderr, hit.hit) == (0, "", True)


def test_verbose_runs_write_no_stamp(setup: Setup) -> None:
    setup.settle()
    for _ in range(2):
        r = setup.run(*setup.args, "-v")
        assert r.code == 0 and not r.hit and "Audited 4 packages" in r.stderr
    assert setup.stamps() == []


def test_venv_created_in_cwd_changes_the_target(setup: Setup) -> None:
    # the target is found as .venv in a parent of cwd, not through VIRTUAL_ENV
    setup.venv.rename(setup.tmp / ".venv")
    del setup.env["VIRTUAL_ENV"]
    setup.primed()
    setup.kea.venv(setup.kea.cwd / ".venv")
    r = setup.run()
    assert not r.hit
    assert "Installed 4 packages" in r.stderr
    assert (site_packages(setup.kea.cwd / ".venv") / "lib-2.0.dist-info").is_dir()


def _racy(setup: Setup, path: Path, ns: int, field: str) -> tuple[dict[str, Any], Path]:
    """Settle, give ``path`` the times ``ns``, and let one full run write the stamp: (the
    stamp's content, the stamp). Only ``path`` is racy: its entry in the stamp's ``field``
    (``digests``: its content; ``cfg``: the content the interpreter's facts were for) is what
    vouches for it."""
    setup.settle()
    os.utime(path, ns=(ns, ns))
    first = setup.run()
    assert first.code == 0 and AUDITED.match(first.stderr) and not first.hit
    (stamp,) = setup.stamps()
    data = marshal.loads(stamp.read_bytes())
    assert [i for i, _ in data[field]] == [data["paths"].index(str(path))]
    assert [i for i, _ in data["cfg" if field == "digests" else "digests"]] == []
    return data, stamp


def _unseen_change(stamp: Path, data: dict[str, Any], path: Path) -> None:
    """Give the stamp ``path``'s identity now, as if its change fell in the tick of the read."""
    index = data["paths"].index(str(path))
    st = path.stat()
    data["identities"][index] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
    stamp.write_bytes(marshal.dumps(data))


def _leaf_metadata(setup: Setup) -> Path:
    return site_packages(setup.venv) / "leaf-1.0.dist-info" / "METADATA"


def test_racy_file_is_vouched_for_by_its_content(setup: Setup) -> None:
    # changed "now" from every run's point of view (its mtime is ahead of the clock), so a
    # change in the same tick as a run's read would not show in its identity
    ahead = time.time_ns() + 60_000_000_000
    meta = _leaf_metadata(setup)
    data, stamp = _racy(setup, meta, ahead, "digests")
    hit = setup.run()
    assert hit.code == 0 and AUDITED.match(hit.stderr) and hit.hit
    assert marshal.loads(stamp.read_bytes())["digests"] == data["digests"]  # still racy: kept
    # a change that the identity does not show (as if it fell in the tick of the run's read):
    # same size, the same mtime, and the stamp made to hold the new change time
    meta.write_bytes(meta.read_bytes().replace(b"Version: 1.0", b"Version: 1.9"))
    os.utime(meta, ns=(ahead, ahead))
    _unseen_change(stamp, data, meta)
    r = setup.run()
    assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit


def test_racy_stamp_settles_into_a_plain_one(setup: Setup) -> None:
    meta = _leaf_metadata(setup)
    data, stamp = _racy(setup, meta, time.time_ns() - 500_000_000, "digests")
    assert setup.run().hit
    assert marshal.loads(stamp.read_bytes())["digests"] == data["digests"]
    # once the file is older than 2 s, a hit writes the stamp again without the digest
    time.sleep(max(0.0, (meta.stat().st_mtime_ns + 2_100_000_000 - time.time_ns()) / 1e9))
    assert setup.run().hit
    settled = marshal.loads(stamp.read_bytes())
    assert settled["digests"] == [] and settled["cfg"] == []
    assert {k: v for k, v in settled.items() if k != "digests"} == {
        k: v for k, v in data.items() if k != "digests"
    }
    assert stamp.stat().st_mode & 0o777 == 0o600
    assert setup.run().hit


def test_racy_config_file_is_vouched_for_by_its_content(setup: Setup) -> None:
    setup.env.pop("KEA_NO_CONFIG")
    setup.settle()
    config = setup.kea.cwd / "kea.toml"
    config.write_text('link-mode = "copy"\n')  # written now: racy for the next 2 s
    first = setup.run()
    assert first.code == 0 and AUDITED.match(first.stderr) and not first.hit
    (stamp,) = setup.stamps()
    data = marshal.loads(stamp.read_bytes())
    assert data["paths"].index(str(config)) in [i for i, _ in data["digests"]]
    assert setup.run().hit
    config.write_text('bogus-key = "1"\n')  # the same size
    r = setup.run()
    assert r.code != 0 and "bogus-key" in r.stderr and not r.hit


def test_config_file_that_is_a_pipe_is_read_by_the_run(setup: Setup) -> None:
    # a FIFO made just now is racy; the stamp's recorder must not open it (that would wake the
    # writer, which would write into a pipe nobody reads), so the run's own read gets the text
    fifo = setup.tmp / "config.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as f:  # blocks until a reader opens it
            f.write('bogus-key = "1"\n')

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kea", *setup.args, "--config-file", str(fifo)],
            cwd=setup.kea.cwd,
            env=setup.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if writer.is_alive():  # kea never read it: let the writer go
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(10)
    assert proc.returncode != 0 and "bogus-key" in proc.stderr, proc.stderr
    assert setup.stamps() == []


def test_racy_pyvenv_cfg_is_vouched_for_by_the_content_the_facts_were_for(setup: Setup) -> None:
    # the target's pyvenv.cfg is read while the target is found, before it can be watched: the
    # digest of the content the interpreter's facts were for vouches for it (a venv made, then
    # installed into and audited within 2 s: the bench's no-op, and scripts)
    cfg = setup.venv / "pyvenv.cfg"
    assert not str(cfg).startswith(str(setup.kea.cwd))  # not one of the cwd's .venv markers
    data, stamp = _racy(setup, cfg, time.time_ns(), "cfg")
    assert setup.run().hit
    cfg.write_text(cfg.read_text() + "prompt = other\n")  # another content, the same identity
    _unseen_change(stamp, data, cfg)
    r = setup.run()
    assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit


def test_racy_file_read_before_it_was_watched_refuses_the_stamp(tmp_path: Path) -> None:
    from kea.cli.fastpath_stamp import Recorder

    fresh = tmp_path / "fresh"
    fresh.write_text("x")
    recorder = Recorder(["pip", "install"], str(tmp_path / "stamp"))
    recorder._watch(str(fresh))
    assert recorder.digests == [(0, fastpath.content_digest("stamp", str(fresh)))]
    digest = fastpath.content_digest
    assert digest("stamp", str(tmp_path)) != digest("stamp", str(fresh))
    assert digest("other", str(fresh)) != digest("stamp", str(fresh))  # salted by the key
    # a pipe (``--config-file <(...)``) is never read for a digest: that would take its
    # content from kea, or wait for a writer
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    watcher = threading.Thread(target=recorder._watch, args=(str(fifo),), daemon=True)
    watcher.start()
    watcher.join(10)
    assert not watcher.is_alive()
    assert str(fifo) in recorder.paths and len(recorder.digests) == 1
    with pytest.raises(OSError, match="not a regular file"):
        fastpath.content_digest("stamp", str(fifo))
    # kea's own code is watched after it was imported: its content now may not be what ran
    code = tmp_path / "code.py"
    code.write_text("y")
    recorder._watch(str(code), unread=False)
    assert len(recorder.paths) == 3 and len(recorder.digests) == 1


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\x00\xff", marshal.dumps([1, 2, 3]), marshal.dumps({"format": 1})],
    ids=["empty", "garbage", "wrong-type", "missing-fields"],
)
def test_corrupt_stamp_runs_the_full_path(setup: Setup, content: bytes) -> None:
    setup.primed()
    (stamp,) = setup.stamps()
    stamp.write_bytes(content)
    r = setup.run()
    assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit
    assert "Traceback" not in r.stderr
    assert setup.run().hit  # the full run wrote a good stamp again


def test_stamp_of_another_key_is_refused(setup: Setup) -> None:
    setup.primed()
    (stamp,) = setup.stamps()
    data = marshal.loads(stamp.read_bytes())
    data["key"] = "0" * 64
    stamp.write_bytes(marshal.dumps(data))
    assert not setup.run().hit


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_stamp_of_another_user_is_not_read(setup: Setup) -> None:
    setup.primed()
    (stamp,) = setup.stamps()
    os.chown(stamp, 65534, 65534)  # nobody: what another user of a shared cache would leave
    r = setup.run()
    assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit
    (stamp,) = setup.stamps()
    assert stamp.stat().st_uid == os.getuid()  # the full run wrote its own in its place
    assert setup.run().hit


def test_cache_clean_removes_stamps(setup: Setup) -> None:
    setup.primed()
    r = setup.kea("cache", "clean")
    assert r.returncode == 0, r.stderr
    assert setup.stamps() == []
    assert not setup.run().hit


def test_kea_no_fastpath(setup: Setup) -> None:
    setup.primed()
    before = setup.stamps()
    env = dict(setup.env, KEA_NO_FASTPATH="1")
    for _ in range(2):
        r = setup.run(env=env)
        assert r.code == 0 and AUDITED.match(r.stderr) and not r.hit
    assert setup.stamps() == before  # and it writes none


def test_direct_references_write_no_stamp(setup: Setup) -> None:
    wheel = next(setup.index.directory.glob("leaf-*.whl"))
    setup.args = [*setup.args, f"leaf @ {wheel.as_uri()}"]
    setup.settle()
    for _ in range(2):
        assert not setup.run().hit
    assert setup.stamps() == []


# -- the cache directory, computed without platformdirs --------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"HOME": "/home/u"},
        {"HOME": "/home/u", "XDG_CACHE_HOME": "/var/xdg"},
        {"HOME": "/home/u", "XDG_CACHE_HOME": ""},
    ],
)
@pytest.mark.skipif(sys.platform != "linux", reason="Linux's default cache directory")
def test_default_cache_dir_is_platformdirs_answer(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import platformdirs

    for k in ("HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert fastpath.cache_dir(["pip", "install", "x"], env) == platformdirs.user_cache_dir("kea")


def test_cache_dir_from_arguments_and_env(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    env = {"HOME": "/home/u", "KEA_CACHE_DIR": b}
    assert fastpath.cache_dir(["pip", "install", "--cache-dir", a, "x"], env) == a
    assert fastpath.cache_dir(["pip", "install", f"--cache-dir={a}", "x"], env) == a
    assert fastpath.cache_dir(["pip", "install", "x"], env) == b
    assert fastpath.cache_dir(["pip", "install", "--", "--cache-dir", a], env) == b
    # the last value wins; a short spelling counts only when asked for; "-p=x" is not "-p x"
    args = ["--python", "a", "-p", "b", "--python=c", "--", "--python", "d"]
    assert fastpath.option_value(args, "--python", "-p") == "c"
    assert fastpath.option_value(["-p", "b"], "--python") is None
    assert fastpath.option_value(["-p=b"], "--python", "-p") is None
    # relative HOME or XDG_CACHE_HOME: not told cheaply, so no fast path
    assert fastpath.cache_dir(["pip", "install", "x"], {"HOME": "rel"}) is None
    assert (
        fastpath.cache_dir(["pip", "install", "x"], {"HOME": "/h", "XDG_CACHE_HOME": "r"}) is None
    )


def test_stamps_are_trimmed(setup: Setup) -> None:
    from kea.cli.fastpath_stamp import MAX_STAMPS

    bucket = setup.tmp / "cache" / fastpath.BUCKET
    bucket.mkdir(parents=True)
    for i in range(MAX_STAMPS + 10):
        (bucket / f"{i:064x}").write_bytes(b"old")
    settle(setup.tmp)
    r = setup.run()
    assert r.code == 0 and not r.hit
    left = list(bucket.iterdir())
    assert len(left) == MAX_STAMPS // 2
    assert setup.run().hit  # the newest, just written, was kept
