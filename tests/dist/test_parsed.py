"""The memo of parsed requirements and marker results (``kea.dist.parsed``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from kea.dist import parsed

LINES = [
    "jupyter",
    "Foo.Bar>=1.0,<2",
    "requests[socks,security]>=2.8.1",
    'pywin32>=1.0; sys_platform == "win32"',
    'tomli>=1.1.0; python_version < "3.11"',
    'pytest; extra == "test"',
    'colorama; platform_system == "Windows" and extra == "cli"',
    "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
    'pkg[x] @ https://example.org/pkg-1.0-py3-none-any.whl ; os_name == "posix"',
]
ENV = {k: str(v) for k, v in default_environment().items()}


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    parsed.reset()
    yield
    parsed.reset()


def same(got: object, line: str) -> None:
    want = Requirement(line)
    assert got.name == want.name  # type: ignore[attr-defined]
    assert got.extras == want.extras  # type: ignore[attr-defined]
    assert str(got.specifier) == str(want.specifier)  # type: ignore[attr-defined]
    assert got.specifier == want.specifier  # type: ignore[attr-defined]
    assert str(got.marker) == str(want.marker) if want.marker else got.marker is None  # type: ignore[attr-defined]
    assert got.url == want.url  # type: ignore[attr-defined]
    assert str(got) == str(want)
    for extra in ("", "test", "cli"):
        if want.marker is not None:
            env = {**ENV, "extra": extra}
            assert got.marker.evaluate(env) == want.marker.evaluate(env)  # type: ignore[attr-defined]


@pytest.mark.parametrize("line", LINES)
def test_a_requirement_reads_as_packaging_reads_it_before_and_after_a_save(
    line: str, tmp_path: Path
) -> None:
    parsed.load(tmp_path)
    same(parsed.requirement(line), line)
    parsed.save()
    parsed.reset()
    parsed.load(tmp_path)
    same(parsed.requirement(line), line)


def test_an_invalid_requirement_raises_and_is_not_remembered(tmp_path: Path) -> None:
    parsed.load(tmp_path)
    with pytest.raises(parsed.InvalidRequirement, match="Expected"):
        parsed.requirement("foo >>> 1")
    with pytest.raises(ValueError):  # it is a ValueError, as packaging's is
        parsed.requirement("foo >>> 1")
    parsed.save()
    assert not (tmp_path / parsed.MEMO_NAME).exists()


def run(code: str, cache: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter with the memo of ``cache`` loaded; the packaging
    modules it imported."""
    prog = (
        "import sys, json; from pathlib import Path; from kea.dist import parsed; "
        f"parsed.load(Path({str(cache)!r})); ENV = {ENV!r}\n{code}\nparsed.save(); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('packaging'))))"
    )
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_a_second_run_parses_and_evaluates_without_packaging_parsers(tmp_path: Path) -> None:
    named = [line for line in LINES if " @ " not in line]  # URL lines are parsed every time
    work = (
        f"for line in {named!r}:\n"
        "    r = parsed.requirement(line)\n"
        "    if r.marker is not None:\n"
        "        print(line, r.marker.evaluate({**ENV, 'extra': 'test'}))\n"
    )
    first = run(work, tmp_path)
    assert "packaging.requirements" in first and "packaging.markers" in first
    second = run(work, tmp_path)
    assert "packaging.requirements" not in second and "packaging.markers" not in second
    assert "packaging.tags" not in second
    # Another target environment: its results are worked out, then remembered beside the first.
    other = {**ENV, "sys_platform": "win32", "platform_system": "Windows"}
    work_other = work.replace("{**ENV,", f"{{**{other!r},")
    assert "packaging.markers" in run(work_other, tmp_path)
    assert "packaging.markers" not in run(work_other, tmp_path)
    assert "packaging.markers" not in run(work, tmp_path)


def test_a_result_for_a_partial_environment_is_not_remembered(tmp_path: Path) -> None:
    parsed.load(tmp_path)
    marker = parsed.requirement('a; python_version < "3"').marker
    assert marker is not None
    assert marker.evaluate({"extra": ""}) is False  # packaging fills in the rest itself
    parsed.save()  # the requirement was new, the result is not kept
    parsed.reset()
    parsed.load(tmp_path)
    table = parsed._marks
    assert all(not t for t in table.values())


@pytest.mark.parametrize(
    "content",
    [
        b"\x00not msgpack at all",
        b"\x91\x01",  # a list, not a map
        b"\x82\xa5lines\x81\xa1a\x93\x01\x02\x03\xa5marks\x81\xa1e\x81\xa1k\x01",  # bad shapes
        b"\x81\xa3\xff\xfe\xfd\x01",  # a string that is not UTF-8: msgspec's UnicodeDecodeError
    ],
)
def test_a_damaged_memo_is_ignored(content: bytes, tmp_path: Path) -> None:
    (tmp_path / parsed.MEMO_NAME).write_bytes(content)
    parsed.load(tmp_path)
    same(parsed.requirement("requests>=2"), "requests>=2")
    parsed.save()  # and replaced by a good one
    parsed.reset()
    parsed.load(tmp_path)
    assert "requests>=2" in parsed._lines


def test_a_memo_entry_of_the_wrong_shape_is_parsed_again(tmp_path: Path) -> None:
    import msgspec

    doc = {"lines": {"a>=1": ["", [], ">=1", "", "", "a>=1"], "b": ["b", "x", "", "", "", "b"]}}
    (tmp_path / parsed.MEMO_NAME).write_bytes(msgspec.msgpack.encode(doc))
    parsed.load(tmp_path)
    assert parsed._lines == {}
    same(parsed.requirement("a>=1"), "a>=1")


def test_requirements_compare_as_packaging_compares_them() -> None:
    a = parsed.requirement("Foo.Bar[x]>=1.0")
    assert a == Requirement("foo-bar[x]>=1.0") and a == parsed.requirement("foo_bar[x] >= 1.0")
    assert hash(a) == hash(parsed.requirement("foo_bar[x] >= 1.0"))
    assert a != parsed.requirement("Foo.Bar[x]>=2.0") and a != "Foo.Bar[x]>=1.0"
    assert len({parsed.requirement("a"), parsed.requirement("A")}) == 1


def test_a_memo_past_its_bound_keeps_only_what_its_run_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parsed, "MAX_LINES", 3)
    parsed.load(tmp_path)
    for i in range(5):
        parsed.requirement(f"p{i}>=1")
    parsed.save()
    parsed.reset()
    parsed.load(tmp_path)
    assert len(parsed._lines) == 5  # this run used all five
    parsed.requirement("p4>=1")
    parsed.requirement("q>=2")
    parsed.save()
    parsed.reset()
    parsed.load(tmp_path)
    assert set(parsed._lines) == {"p4>=1", "q>=2"}


def test_a_url_requirement_is_parsed_every_time_and_never_written(tmp_path: Path) -> None:
    line = "pkg @ https://alice:s3cret-token@example.org/pkg-1.0-py3-none-any.whl"
    parsed.load(tmp_path)
    same(parsed.requirement(line), line)
    parsed.requirement("other>=1")
    parsed.save()
    data = (tmp_path / parsed.MEMO_NAME).read_bytes()
    assert b"s3cret-token" not in data and b"example.org" not in data
    assert b"other>=1" in data


def test_a_url_requirement_in_an_older_memo_is_dropped_on_load(tmp_path: Path) -> None:
    import msgspec

    url = "https://alice:s3cret-token@example.org/pkg-1.0-py3-none-any.whl"
    doc = {"lines": {f"pkg @ {url}": ["pkg", [], "", "", url, f"pkg@ {url}"]}}
    (tmp_path / parsed.MEMO_NAME).write_bytes(msgspec.msgpack.encode(doc))
    parsed.load(tmp_path)
    assert parsed._lines == {}
    parsed.requirement("other>=1")
    parsed.save()
    assert b"s3cret-token" not in (tmp_path / parsed.MEMO_NAME).read_bytes()


SPECS = ["", ">=1.0,<2", "==1.*", "~=2.2", "!=1.5", ">=2.0b1", "===weird", "==3.0rc1,>1"]


@pytest.mark.parametrize("text", SPECS)
def test_a_specifier_set_splits_as_packaging_splits_it_before_and_after_a_save(
    text: str, tmp_path: Path
) -> None:
    from packaging.specifiers import SpecifierSet

    want = SpecifierSet(text)
    expected = (tuple((s.operator, s.version) for s in want), any(s.prereleases for s in want))
    parsed.load(tmp_path)
    assert parsed.specifier_parts(text) == expected
    parsed.save()
    parsed.reset()
    parsed.load(tmp_path)
    assert parsed.specifier_parts(text) == expected


def test_specifier_text_needs_no_specifier_set() -> None:
    got = parsed.requirement("Foo.Bar >= 1.0, < 2")
    assert parsed.specifier_text(got) == str(Requirement("Foo.Bar >= 1.0, < 2").specifier)
    assert got._specifier is None  # type: ignore[attr-defined]  # never built
    assert parsed.specifier_text(Requirement("x>=3")) == ">=3"


def test_an_invalid_specifier_raises_and_is_not_remembered(tmp_path: Path) -> None:
    parsed.load(tmp_path)
    with pytest.raises(parsed.InvalidSpecifier):
        parsed.specifier_parts(">=3.6.*")  # a wildcard only goes with == and !=
    parsed.save()
    assert not (tmp_path / parsed.MEMO_NAME).exists()


def test_a_second_run_splits_specifiers_without_packaging_specifiers(tmp_path: Path) -> None:
    work = f"for text in {SPECS!r}:\n    print(parsed.specifier_parts(text))\n"
    assert "packaging.specifiers" in run(work, tmp_path)
    assert "packaging.specifiers" not in run(work, tmp_path)


def test_damaged_specifier_entries_are_ignored(tmp_path: Path) -> None:
    import msgspec

    doc = {
        "specs": {
            ">=1": [[[">=", "1"]], False],  # well formed: kept
            ">=2": [[[">=", 2]], False],  # a number where text belongs
            ">=3": [[], False],  # no pair
            ">=4": [[[">=", "4"]], "no"],
            "": [[["==", "1"]], False],
            ">>1": [[[">>", "1"]], False],  # not an operator
        }
    }
    (tmp_path / parsed.MEMO_NAME).write_bytes(msgspec.msgpack.encode(doc))
    parsed.load(tmp_path)
    assert parsed._specs == {">=1": (((">=", "1"),), False)}


def test_the_extra_a_line_needs_is_worked_out_once_and_remembered(tmp_path: Path) -> None:
    asked: list[str] = []

    def work(line: str) -> str | None:
        asked.append(line)
        return "test" if "extra" in line else None

    lines = ['pytest; extra == "test"', "idna>=2"]
    parsed.load(tmp_path)
    assert [parsed.extra_of(line, work) for line in lines] == ["test", None]
    assert [parsed.extra_of(line, work) for line in lines] == ["test", None]
    assert asked == lines
    parsed.save()
    parsed.reset()
    parsed.load(tmp_path)
    assert [parsed.extra_of(line, work) for line in lines] == ["test", None]
    assert asked == lines  # answered from the file


def test_damaged_extra_entries_are_ignored(tmp_path: Path) -> None:
    import msgspec

    doc = {parsed.EXTRAS_TABLE: {"a; extra == 'x'": "x", "b": 3, "c": None, "d": "Not_Canon"}}
    (tmp_path / parsed.MEMO_NAME).write_bytes(msgspec.msgpack.encode(doc))
    parsed.load(tmp_path)
    assert parsed._extras == {"a; extra == 'x'": "x"}


PLAIN_VERSIONS = [
    "1", "1.0", "01.2", "2026.10.19.post1", "1.0a1", "1.0b2", "1.0rc3", "1.0.post1",
    "1.0.dev0", "1.0a1.post2.dev3", "1.0+local", "1.0rc1+abc.5",
]  # fmt: skip


@pytest.mark.parametrize("version", PLAIN_VERSIONS)
def test_a_pinned_line_reads_as_packaging_reads_it_without_packaging(version: str) -> None:
    for name in ("a", "Foo_Bar", "x-y.z"):
        line = f"{name}=={version}"
        same(parsed.requirement(line), line)
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(f"=={version}")
    want = (tuple((s.operator, s.version) for s in spec), any(s.prereleases for s in spec))
    assert parsed.specifier_parts(f"=={version}") == want


def test_a_locked_file_s_lines_need_no_packaging_parser_on_a_first_run(tmp_path: Path) -> None:
    pins = [f"pkg{i}=={v}" for i, v in enumerate(PLAIN_VERSIONS)]
    work = (
        f"for line in {pins!r}:\n"
        "    r = parsed.requirement(line)\n"
        "    print(parsed.specifier_parts(parsed.specifier_text(r)))\n"
    )
    assert run(work, tmp_path) == []  # nothing of packaging imported, nothing remembered
    assert not (tmp_path / parsed.MEMO_NAME).exists()
    # Other spellings still go to packaging.
    for other in ("a == 1.0", "a==1.0.*", "a==1.0A1", "a==1.0-1", "a===1.0"):
        assert "packaging.requirements" in run(f"parsed.requirement({other!r})", tmp_path)


@pytest.mark.parametrize("line", ["alpha==" + "1" * 4301, "alpha>=1." + "9" * 5000 + ",<3"])
def test_a_number_int_cannot_take_is_an_invalid_requirement(line: str) -> None:
    """packaging's pattern takes a 5,000-digit version; Python's int() does not (over 4,300
    digits), so it used to fail later, as an unexpected ValueError, wherever it became a
    Version."""
    with pytest.raises(parsed.InvalidRequirement, match="more than 4,300 digits"):
        parsed.requirement(line)
    spec = line.partition("alpha")[2]
    with pytest.raises(parsed.InvalidSpecifier, match="more than 4,300 digits"):
        parsed.specifier_parts(spec)
    parsed.requirement("alpha==" + "1" * 4300)  # the most int() takes: still a requirement
