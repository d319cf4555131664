"""``wheel_parts`` reads wheel file names as packaging does, without importing its tags module."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from kea.dist.wheel_name import parse_dist_filename, wheel_parts

NAMES = [
    "foo-1.0-py3-none-any.whl",
    "Foo.Bar_baz-1.0-py3-none-any.whl",
    "foo-1.0-1-py3-none-any.whl",  # build tag
    "foo-1.0-1abc-py3-none-any.whl",
    "foo-1.0-abc-py3-none-any.whl",  # build tag not starting with a digit
    "foo-1.0-\u0661-py3-none-any.whl",  # a non-ASCII digit as the build tag
    "foo-1.0-1\nx-py3-none-any.whl",
    "foo-1.0-py2.py3-none-any.whl",  # compressed tag set
    "foo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "foo-1.0-CP311-CP311-Win_AMD64.whl",  # upper case: tags come back lower case
    "foo-1.0-py3-none.whl",  # too few parts
    "foo-1.0-1-2-py3-none-any.whl",  # too many
    "foo-1.0-py3-none-any.zip",
    "foo-notaversion-py3-none-any.whl",
    "foo-1.0.post1.dev2+local-py3-none-any.whl",
    "foo__bar-1.0-py3-none-any.whl",  # "__" is refused by PEP 427's escaping
    "foo bar-1.0-py3-none-any.whl",
    "-1.0-py3-none-any.whl",  # empty name
    "foo-1.0-py3..py2-none-any.whl",  # empty tag component
    "foo-1.0-3py-none-any.whl",  # interpreter not an identifier
    "foo-1.0-py3-none-.whl",
    "fóo-1.0-py3-none-any.whl",
]


@pytest.mark.parametrize("filename", NAMES)
def test_wheel_parts_agrees_with_packaging(filename: str) -> None:
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError):
        assert wheel_parts(filename) is None
        if filename.endswith(".whl"):
            assert parse_dist_filename(filename) is None
        return
    assert wheel_parts(filename) == (name, version, frozenset(str(t) for t in tags))
    assert parse_dist_filename(filename) == (name, version)


def test_reading_a_wheel_name_imports_no_tags_module() -> None:
    code = (
        "import sys; from kea.dist.wheel_name import wheel_parts; "
        "from kea.index.models import DistFile; "
        "f = DistFile('a-1.0-py3-none-any.whl', 'https://x/a-1.0-py3-none-any.whl'); "
        "assert f.wheel_info[2] == frozenset({'py3-none-any'}); "
        "print(sorted(m for m in sys.modules if m.startswith('packaging')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)
    assert "packaging.version" in loaded
    assert "packaging.tags" not in loaded and "packaging.utils" not in loaded
