"""``kea pip install`` on a real terminal: the progress bar and ``--color``.

kea runs under a pseudo-terminal (``os.openpty``: its stderr is the slave side, the test reads the
master side) against a loopback index of wheels the tests build. The progress bar is drawn only
when stderr is a TTY and neither ``-q`` nor ``--no-progress`` is given, and rich is imported only
then. ``--color always|never|auto`` (and ``NO_COLOR`` / ``FORCE_COLOR``) decide the colour of the
summary lines and errors; redaction still applies to coloured lines.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from kea.cli.output import color_enabled
from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel

pytestmark = pytest.mark.e2e

SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour / style codes
ANY_ESCAPE = re.compile(r"\x1b[\[\]()][0-9;?]*[A-Za-z]?")
HIDE_CURSOR = "\x1b[?25l"
BAR = "\u2501"  # rich's bar segment
RICH_IMPORT = re.compile(r"^import time:.*\|\s+rich(\.\w+)*\s*$", re.M)


@dataclass
class Run:
    returncode: int
    raw: str  # what kea wrote to stderr, escape codes and all

    @property
    def body(self) -> str:
        """``raw`` without the ``-X importtime`` report lines."""
        return "".join(
            line for line in self.raw.splitlines(keepends=True)
            if not line.startswith("import time:")
        )  # fmt: skip

    @property
    def text(self) -> str:
        """The output as a reader sees it once the terminal has interpreted it (roughly)."""
        plain = ANY_ESCAPE.sub("", self.raw.replace("\r\n", "\n"))
        return "\n".join(line.rsplit("\r", 1)[-1] for line in plain.split("\n"))

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if not line.startswith("import time:")]


def run_kea(kea: Kea, *args: str, venv: Path, tty: bool, env: dict[str, str] | None = None) -> Run:
    """``python -X importtime -m kea ARGS`` with stderr on a pseudo-terminal (``tty``) or a pipe."""
    full_env = {**kea.env, "VIRTUAL_ENV": str(venv), "TERM": "xterm-256color", **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v != "<unset>"}
    cmd = [sys.executable, "-X", "importtime", "-m", "kea", *args]
    if not tty:
        proc = subprocess.run(cmd, cwd=kea.cwd, env=full_env, capture_output=True, text=True,
                              timeout=240)  # fmt: skip
        return Run(proc.returncode, proc.stderr)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave side closed it
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc2 = subprocess.Popen(cmd, cwd=kea.cwd, env=full_env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=slave)  # fmt: skip
    finally:
        os.close(slave)
    try:
        rc = proc2.wait(timeout=240)
    finally:
        proc2.kill()
        reader.join(timeout=30)
        os.close(master)
    return Run(rc, b"".join(chunks).decode("utf-8", "replace"))


@pytest.fixture
def universe(small_index: SimpleIndex) -> SimpleIndex:
    w = small_index.directory
    build_wheel(w, "app", "1.0", requires=["lib>=1", "util"])
    build_wheel(w, "lib", "2.0")
    build_wheel(w, "util", "0.3")
    small_index.scan()
    return small_index


def changes(run: Run) -> list[str]:
    return [line.strip() for line in run.lines if line.startswith((" + ", " - "))]


def test_progress_bar_only_on_a_tty(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = run_kea(kea, "pip", "install", "-i", universe.url, "app", venv=venv, tty=True)
    assert r.returncode == 0, r.raw
    # the bar was drawn (rich hides the cursor, draws bar segments and the N/M count) ...
    assert HIDE_CURSOR in r.raw and BAR in r.raw and "Preparing" in r.raw, r.raw
    assert re.search(r"[0-3]/3", r.raw), r.raw
    assert RICH_IMPORT.search(r.raw), "a TTY run imports rich for the bar"
    # ... and the uv-style summary is still there, readable once the transient bar is gone
    assert any(line.startswith("Resolved 3 packages in ") for line in r.lines), r.lines
    assert any(line.startswith("Prepared 3 packages in ") for line in r.lines), r.lines
    assert any(line.startswith("Installed 3 packages in ") for line in r.lines), r.lines
    assert changes(r) == ["+ app==1.0", "+ lib==2.0", "+ util==0.3"]
    assert not SGR.search(r.raw), "NO_COLOR (set by the fixture) keeps even the bar colourless"

    # no TTY: no bar, no escape codes at all, rich never imported; same summary
    r = run_kea(kea, "pip", "install", "--reinstall", "-i", universe.url, "app", venv=venv,
                tty=False)  # fmt: skip
    assert r.returncode == 0, r.raw
    assert "\x1b" not in r.raw and "Preparing" not in r.raw and BAR not in r.raw
    assert not RICH_IMPORT.search(r.raw), "rich must stay a lazy import without a TTY"
    assert changes(r) == ["- app==1.0", "+ app==1.0", "- lib==2.0", "+ lib==2.0",
                          "- util==0.3", "+ util==0.3"]  # fmt: skip


def test_the_bar_counts_a_locked_request_s_wheels_once(
    kea: Kea, universe: SimpleIndex, tmp_path: Path
) -> None:
    # Every requirement pinned: the wheels download while the resolver works (their metadata
    # is read from them), and the bar counts them then, before its size is known.
    venv = kea.venv(tmp_path / "venv")
    pins = ("app==1.0", "lib==2.0", "util==0.3")
    r = run_kea(kea, "pip", "install", "-i", universe.url, *pins, venv=venv, tty=True)
    assert r.returncode == 0, r.raw
    assert HIDE_CURSOR in r.raw and BAR in r.raw and "Preparing" in r.raw, r.raw
    assert re.search(r"3/3", r.raw), r.raw
    assert not re.search(r"[4-9]/3", r.raw), "a wheel counted twice"
    summary = [line.split(" ")[0] for line in r.lines if " packages in " in line]
    assert summary == ["Resolved", "Prepared", "Installed"], r.lines
    assert changes(r) == ["+ app==1.0", "+ lib==2.0", "+ util==0.3"]
    assert not any(p.endswith(".metadata") for p in universe.requests), universe.requests


def test_prepared_counts_each_wheel_once() -> None:
    from kea.cli.install_pipeline import Prepared

    made: list[int | None] = []
    seen: list[tuple[str, object]] = []

    class Bar:
        def __init__(self, total: int | None) -> None:
            made.append(total)

        def advance(self, name: str) -> None:
            seen.append(("advance", name))

        def set_total(self, total: int, completed: int) -> None:
            seen.append(("size", (total, completed)))

        def close(self) -> None:
            seen.append(("close", None))

    class File:
        def __init__(self, filename: str) -> None:
            self.filename = filename

    class Chosen:
        def __init__(self, name: str) -> None:
            self.name, self.file = name, File(f"{name}-1.0-py3-none-any.whl")

    bar = Prepared(Bar)
    bar.add("a-1.0-py3-none-any.whl", "a")  # while resolving: the bar appears, size unknown
    bar.add("a-1.0-py3-none-any.whl", "a")  # the same wheel again: not counted twice
    bar.size([Chosen("a"), Chosen("b")])
    bar.add("b-1.0-py3-none-any.whl", "b")
    bar.add("a-1.0-py3-none-any.whl", "a")
    bar.close()
    bar.close()
    assert made == [None]
    assert seen == [("advance", "a"), ("size", (2, 1)), ("advance", "b"), ("close", None)]

    quiet = Prepared(None)  # no bar: nothing is drawn, the count is kept all the same
    quiet.add("a-1.0-py3-none-any.whl", "a")
    quiet.size([Chosen("a")])
    quiet.close()
    assert quiet.counted == {"a-1.0-py3-none-any.whl"}


@pytest.mark.parametrize("flag", ["--no-progress", "-q"])
def test_no_progress_and_quiet_on_a_tty(
    kea: Kea, universe: SimpleIndex, tmp_path: Path, flag: str
) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = run_kea(kea, "pip", "install", flag, "-i", universe.url, "app", venv=venv, tty=True)
    assert r.returncode == 0, r.raw
    assert HIDE_CURSOR not in r.raw and BAR not in r.raw and "Preparing" not in r.raw, r.raw
    assert not RICH_IMPORT.search(r.raw), f"{flag}: rich is not even imported"
    if flag == "-q":
        assert r.lines == [], r.lines
    else:
        assert changes(r) == ["+ app==1.0", "+ lib==2.0", "+ util==0.3"]
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    assert (site / "app" / "__init__.py").is_file() and (site / "util-0.3.dist-info").is_dir()


def test_color_always_on_a_pipe(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    # --color always wins over NO_COLOR (set by the fixture) and over a pipe
    r = run_kea(kea, "pip", "install", "--color", "always", "-i", universe.url, "app", venv=venv,
                tty=False)  # fmt: skip
    assert r.returncode == 0, r.raw
    assert "\x1b[1;32m+\x1b[0m \x1b[1mapp\x1b[0m" in r.raw, r.raw
    assert re.search(r"\x1b\[2mResolved .*\x1b\[1m3 packages\x1b\[0m", r.raw), r.raw
    assert changes(r) == ["+ app==1.0", "+ lib==2.0", "+ util==0.3"]  # same text underneath
    assert HIDE_CURSOR not in r.raw and BAR not in r.raw  # colour is not a progress bar
    assert not RICH_IMPORT.search(r.raw)

    r = run_kea(kea, "pip", "install", "--color", "always", "--reinstall", "-i", universe.url,
                "app", venv=venv, tty=False)  # fmt: skip
    assert "\x1b[1;31m-\x1b[0m \x1b[1mapp\x1b[0m" in r.raw, r.raw

    r = run_kea(kea, "pip", "install", "--color", "always", "foo>=>1", venv=venv, tty=False)
    assert r.returncode != 0, r.raw
    assert r.body.startswith("\x1b[1;31merror:\x1b[0m invalid requirement"), r.body
    assert "\n\x1b[1;36mhint:\x1b[0m " in r.body, r.body

    # FORCE_COLOR colours a pipe under --color auto (the default) once NO_COLOR is gone
    r = run_kea(kea, "pip", "install", "foo>=>1", venv=venv, tty=False,
                env={"NO_COLOR": "<unset>", "FORCE_COLOR": "1"})  # fmt: skip
    assert r.body.startswith("\x1b[1;31merror:\x1b[0m invalid requirement"), r.body


def test_color_never_and_auto_on_a_tty(kea: Kea, universe: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    colourful = {"NO_COLOR": "<unset>", "FORCE_COLOR": "1"}
    # never: no colour on a terminal, even with FORCE_COLOR, and even in the progress bar
    r = run_kea(kea, "pip", "install", "--color", "never", "-i", universe.url, "app", venv=venv,
                tty=True, env=colourful)  # fmt: skip
    assert r.returncode == 0, r.raw
    assert BAR in r.raw  # the bar is still drawn, just without colour
    assert not SGR.search(r.raw), r.raw
    assert changes(r) == ["+ app==1.0", "+ lib==2.0", "+ util==0.3"]
    r = run_kea(kea, "pip", "install", "--color", "never", "foo>=>1", venv=venv, tty=True,
                env=colourful)  # fmt: skip
    assert r.returncode != 0 and r.body.startswith("error: invalid requirement"), r.body
    assert "\x1b" not in r.body, r.body

    # auto on a terminal: colour
    r = run_kea(kea, "pip", "install", "--no-progress", "--reinstall", "-i", universe.url, "app",
                venv=venv, tty=True, env={"NO_COLOR": "<unset>"})  # fmt: skip
    assert r.returncode == 0, r.raw
    assert "\x1b[1;32m+\x1b[0m \x1b[1mapp\x1b[0m" in r.raw, r.raw
    # auto on a terminal with NO_COLOR: none
    r = run_kea(kea, "pip", "install", "--no-progress", "--reinstall", "-i", universe.url, "app",
                venv=venv, tty=True, env={"NO_COLOR": "1"})  # fmt: skip
    assert r.returncode == 0 and not SGR.search(r.raw), r.raw


def test_coloured_errors_are_still_redacted(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    secret = "hunter2-very-secret"
    # an index URL with a password and a token in its query, on a port nobody listens on
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://alice:{secret}@127.0.0.1:{port}/simple/?token={secret}"
    for tty in (False, True):
        r = run_kea(kea, "pip", "install", "--color", "always", "-vv", "-i", url, "app",
                    venv=venv, tty=tty)  # fmt: skip
        assert r.returncode != 0, r.raw
        assert secret not in r.raw, r.raw
        assert "\x1b[1;31merror:\x1b[0m" in r.raw, r.raw
        assert "127.0.0.1" in r.raw  # the URL is there, redacted
        assert "****" in r.raw


def test_color_conventions() -> None:
    assert color_enabled("always", env={"NO_COLOR": "1"}, isatty=False)
    assert not color_enabled("never", env={"FORCE_COLOR": "1"}, isatty=True)
    assert color_enabled("auto", env={"TERM": "xterm"}, isatty=True)
    assert not color_enabled("auto", env={"TERM": "xterm"}, isatty=False)
    assert not color_enabled("auto", env={"TERM": "dumb"}, isatty=True)
    assert not color_enabled("auto", env={"NO_COLOR": "1", "FORCE_COLOR": "1"}, isatty=True)
    assert not color_enabled("auto", env={"NO_COLOR": "", "TERM": "xterm"}, isatty=False)
    assert color_enabled("auto", env={"NO_COLOR": ""}, isatty=True)  # empty NO_COLOR: unset
    assert color_enabled("auto", env={"FORCE_COLOR": "1"}, isatty=False)
    assert color_enabled("auto", env={"CLICOLOR_FORCE": "1"}, isatty=False)
    assert not color_enabled("auto", env={"FORCE_COLOR": "0"}, isatty=False)
