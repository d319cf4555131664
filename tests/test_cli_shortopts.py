"""kea.cli.shortopts: ``kea pip install``'s options parse exactly as click parses them, without
the long-option miss that imports difflib for every lone short option."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from kea.cli.pip_install import install
from kea.cli.shortopts import ShortFirstCommand, spell_out

ARGVS = [
    ["-r", "req.txt", "-q", "pkg"],
    ["-q", "-q", "-v", "--python", "/x/python", "-r", "a.txt", "-r", "b.txt"],
    ["-r", "-q"],  # "-q" is -r's value, as click reads it
    ["--index-url", "-r", "pkg"],  # "-r" is --index-url's value
    ["--index-url=http://i/simple", "-U", "-P", "six", "-c", "c.txt", "pkg"],
    ["-qv", "-rreq.txt", "pkg"],  # grouped and attached short options: click's own path
    ["-e", "./proj", "--", "-r"],  # after "--" everything is an argument
    ["--no-deps", "--prerelease", "allow", "-h"],
]


def _plain_install() -> click.Command:
    """The same command with click's own parsing (no spelling out)."""
    return click.Command("install", params=list(install.params), callback=install.callback)


@pytest.mark.parametrize("argv", ARGVS)
def test_same_parameters_as_click_alone(argv: list[str]) -> None:
    assert isinstance(install, ShortFirstCommand)
    ours = install.make_context("install", list(argv), resilient_parsing=True)
    theirs = _plain_install().make_context("install", list(argv), resilient_parsing=True)
    assert ours.params == theirs.params
    assert ours.args == theirs.args


def test_spelled_out_only_in_an_options_place() -> None:
    ctx = install.make_context("install", [], resilient_parsing=True)
    params = install.get_params(ctx)
    out = list(spell_out(params, ["-r", "-q", "-q", "-P", "-r", "-qv", "--", "-r"]))
    assert out == ["--requirements", "-q", "--quiet", "--upgrade-package", "-r", "-qv", "--", "-r"]


def test_unknown_short_option_keeps_clicks_error() -> None:
    with pytest.raises(click.NoSuchOption) as e:
        install.make_context("install", ["-Z", "pkg"])
    assert e.value.option_name == "-Z"


def test_lone_short_options_do_not_import_difflib() -> None:
    code = (
        "import sys\n"
        "from kea.cli.pip_install import install\n"
        "ctx = install.make_context('install', ['-q', '-r', 'x.txt', '-U', 'pkg'])\n"
        "assert ctx.params['requirements'] == ('x.txt',) and ctx.params['upgrade']\n"
        "print('difflib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
