"""kea.cli.flags: ``kea pip install``'s click-free reader gives exactly click's params (values and
order), or declines and leaves the command to click; and a run it reads never imports click."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from kea.cli import flags
from kea.cli.pip_install import install


def _click_params(argv: list[str]) -> list[tuple[str, Any]]:
    ctx = install.make_context("install", list(argv))
    return list(ctx.params.items())


READ = [
    [],
    ["pkg"],
    ["-q", "--dry-run", "--python", "/x/bin/python", "-r", "req.txt", "--cache-dir", "/c"],
    ["-r", "a.txt", "-r", "b.txt", "-c", "c.txt", "--override", "o.txt", "-e", "./proj"],
    ["pkg", "-U", "-P", "six", "--upgrade-package", "idna", "other"],  # arguments interleaved
    ["--index-url=http://i/simple?a=b", "--extra-index-url", "http://e/", "-f", "/links"],
    [*["-v", "-v", "-q", "--no-cache", "-n", "--offline"][:-2], "--offline"],
    ["--refresh", "--refresh-package", "a", "--refresh-package", "b"],
    ["--no-refresh", "pkg"],
    ["--compile", "--link-mode", "copy", "--prerelease", "allow", "--resolution", "lowest"],
    ["--index-strategy", "unsafe-best-match", "--keyring-provider", "subprocess"],
    ["--color=never", "--no-progress", "--no-config", "--config-file", "kea.toml"],
    ["--system", "--target", "/t", "--only-binary", ":all:", "--no-binary", "x"],
    ["--exclude-newer", "2024-01-01", "--reinstall-package", "a", "--force-reinstall"],
    ["--python=3.12", "--", "-r", "--not-an-option"],  # after "--" everything is an argument
    ["-", "--index-url="],  # a lone "-" is an argument; an empty value is a value
    ["--default-index", "http://d/", "--index", "a=http://a/", "--allow-insecure-host", "h"],
]

DECLINED = [
    ["--help"],
    ["-h"],
    ["--bogus"],
    ["-Z", "pkg"],
    ["-qv"],  # grouped short flags
    ["-rreq.txt"],  # attached short value
    ["-r=req.txt"],
    ["-r"],  # a missing value
    ["-r", "-q"],  # click takes "-q" as the file name: left to click
    ["--dry-run=yes"],  # a value for a flag
    ["--python", "a", "--python", "b"],  # repeated single-value option
    ["--dry-run", "--dry-run"],
    ["--refresh", "--no-refresh"],
    ["--link-mode", "move"],  # not a choice: click's error
    ["--color", "ALWAYS"],
    ["-r", "a\x00b"],  # a NUL in a path: click's error
]


@pytest.mark.parametrize("argv", READ)
def test_reads_as_click_does(argv: list[str]) -> None:
    ours = flags.read(argv)
    assert ours is not None, argv
    assert list(ours.items()) == _click_params(argv)


@pytest.mark.parametrize("argv", DECLINED)
def test_declines_what_it_does_not_read(argv: list[str]) -> None:
    assert flags.read(argv) is None


def test_paths_checked_as_click_checks_them(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("pkg\n")
    # a directory where a file is wanted, and a file where a directory is wanted: click refuses
    assert flags.read(["-r", str(tmp_path)]) is None
    with pytest.raises(click.BadParameter):
        install.make_context("install", ["-r", str(tmp_path)])
    assert flags.read(["--cache-dir", str(tmp_path / "req.txt")]) is None
    with pytest.raises(click.BadParameter):
        install.make_context("install", ["--cache-dir", str(tmp_path / "req.txt")])
    for argv in (["-r", str(tmp_path / "req.txt")], ["--cache-dir", str(tmp_path)]):
        ours = flags.read(argv)
        assert ours is not None and list(ours.items()) == _click_params(argv)


def _random_argv(rng: random.Random) -> list[str]:
    argv: list[str] = []
    words = ["pkg", "a.txt", "http://i/simple", "allow", "copy", "x", "-", "--", "-q", ""]
    for _ in range(rng.randrange(0, 9)):
        pick = rng.random()
        if pick < 0.2:
            argv.append(rng.choice(words[:3]))
            continue
        opt = rng.choice(flags.INSTALL_ALL)
        name = rng.choice(opt.names + opt.off)
        if opt.kind in (flags.FLAG, flags.COUNT):
            argv.append(name if rng.random() < 0.95 else name + "=1")
            continue
        value = rng.choice((opt.choices or ()) + tuple(words))
        if name.startswith("--") and rng.random() < 0.3:
            argv.append(f"{name}={value}")
        else:
            argv += [name, value] if rng.random() < 0.95 else [name]
    return argv


def test_random_command_lines_agree_with_click() -> None:
    rng = random.Random(20261126)
    read = 0
    for _ in range(1500):
        argv = _random_argv(rng)
        ours = flags.read(argv)
        if ours is None:
            continue
        read += 1
        assert list(ours.items()) == _click_params(argv), argv
    assert read > 300  # the reader is not declining its way out of the comparison


def test_a_read_run_never_imports_click(tmp_path: Path) -> None:
    """A ``kea pip install`` read by kea.cli.flags: its errors are kea's one line, and click is
    never imported; one left to click gets click's error as one line."""
    code = (
        "import sys\n"
        "from kea.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code, 'click' in sys.modules)\n"
    )
    env = {**os.environ, "KEA_NO_CONFIG": "1", "KEA_CACHE_DIR": str(tmp_path / "cache")}
    base = [sys.executable, "-c", code, "pip", "install", "--python", sys.executable]
    missing = str(tmp_path / "missing.txt")
    out = subprocess.run([*base, "-r", missing], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "exit 1 False"
    assert out.stderr.startswith("error: ") and "missing.txt" in out.stderr
    out = subprocess.run([*base, "--bogus"], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "exit 2 True"
    assert out.stderr.startswith("error: No such option") and "--bogus" in out.stderr
