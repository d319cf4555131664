"""kea.dist.placement: where each file of a wheel goes, from its RECORD and WHEEL."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from kea.dist import placement
from kea.dist.placement import is_safe_relpath, place
from kea.errors import KeaError

DI = "x-1.0.dist-info"
PURE = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
PLAT = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n"


def _place(text: str, wheel: str = PURE) -> placement.Placement:
    return place(text, wheel, DI, label="x.whl", headers_name="X")


@pytest.mark.parametrize(
    "text",
    [
        f"a.py,sha256=AAAA,4\nb/c.py,sha256=BBBB,\n{DI}/RECORD,,\n",
        "a.py,sha256=AAAA,4\r\nb.py,,\r\n\r\n,stray\n",
        "a.py,sha256=AAAA,4,more\nb/c/d.py,sha256=CCCC,\n",
    ],
)
def test_a_record_split_by_hand_is_placed_as_csv_reads_it(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, kept, others, dirs, tops = _place(text)
    assert key == "purelib" and others == []
    assert all("\r" not in row for row in kept)
    monkeypatch.setattr(placement, "plain_lines", lambda _: None)  # as csv reads it
    key2, kept2, others2, dirs2, tops2 = _place(text)
    assert kept2 == []  # csv's rows are written anew, not kept
    assert [row.partition(",")[0] for row in kept] == [o[2] for o in others2]
    assert all(o[0] == "purelib" and o[1] == o[2] for o in others2)
    assert (key2, dirs2, tops2) == (key, dirs, tops)


def test_a_record_that_needs_csv_is_read_by_it() -> None:
    key, kept, others, dirs, tops = _place(f'"a,b.py",sha256=AAAA,4\n{DI}/RECORD,,\n')
    assert kept == [] and others == [("purelib", "a,b.py", "a,b.py", "sha256=AAAA", 4)]
    assert tops == {("purelib", "a,b.py"): True}


RECORD = "\n".join(
    [
        "pkg/__init__.py,sha256=P,3",
        "pkg/sub/mod.py,sha256=M,5",
        "top.py,sha256=T,1",
        "x-1.0.data/scripts/tool,sha256=S,10",
        "x-1.0.data/data/share/doc/x.txt,sha256=D,2",
        "x-1.0.data/headers/x.h,sha256=H,",
        f"{DI}/METADATA,sha256=MD,40",
        f"{DI}/INSTALLER,sha256=I,4",
        f"{DI}/RECORD,,",
        "",
    ]
)


def test_every_file_gets_its_scheme_its_directories_and_its_top_level_entry() -> None:
    key, kept, others, dirs, tops = _place(RECORD, PLAT)
    assert key == "platlib"
    assert [row.partition(",")[0] for row in kept] == [
        "pkg/__init__.py", "pkg/sub/mod.py", "top.py", f"{DI}/METADATA"
    ]  # fmt: skip
    assert others == [
        ("scripts", "tool", "x-1.0.data/scripts/tool", "sha256=S", 10),
        ("data", "share/doc/x.txt", "x-1.0.data/data/share/doc/x.txt", "sha256=D", 2),
        ("headers", "X/x.h", "x-1.0.data/headers/x.h", "sha256=H", None),
    ]
    assert dirs == [
        ("data", "share"), ("headers", "X"), ("platlib", "pkg"), ("platlib", DI),
        ("data", "share/doc"), ("platlib", "pkg/sub"),
    ]  # fmt: skip
    assert list(tops.items()) == [
        (("platlib", "pkg"), False), (("platlib", "top.py"), True), (("scripts", "tool"), True),
        (("data", "share"), False), (("headers", "X"), False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../evil.py,sha256=E,1", "refusing path '../evil.py'"),
        ("/etc/passwd,sha256=E,1", "refusing path"),
        ("x-1.0.data/bogus/f,sha256=E,1", "unknown .data scheme"),
        ("x-1.0.data/data/../../f,sha256=E,1", "refusing path 'x-1.0.data/data/../../f'"),
        ("x-1.0.data/data//abs,sha256=E,1", "refusing path '/abs'"),  # under its scheme
        ("a.py,sha256=E,12x", "bad size '12x' for 'a.py'"),
        ('"a.py",sha256=E,12x', "bad size '12x' for 'a.py'"),  # through csv
    ],
)
def test_a_bad_row_is_refused(row: str, message: str) -> None:
    with pytest.raises(KeaError, match=message.replace(".", r"\.").replace("(", r"\(")) as e:
        place(f"ok.py,sha256=O,1\n{row}\n", PURE, DI, label="x.whl", headers_name="X")
    assert e.value.message.startswith("x.whl: ")


def test_a_size_int_reads_is_accepted_and_kept_as_written() -> None:
    _, kept, _, _, _ = _place("a.py,sha256=A, 12\nb.py,sha256=B,+3\n")
    assert kept == ["a.py,sha256=A, 12", "b.py,sha256=B,+3"]


@pytest.mark.parametrize(
    "path",
    ["a.py", "a/b.py", "...", "a/..b", "a..b/c", "..", "../x", "a/..", "a/../b", "a/./b",
     "a//b", "./a", "/a", "\\a", "a\\b", "C:/x", "c:", "a:b", "", "a/.../b", "..a"],
)  # fmt: skip
def test_a_safe_path_is_what_a_posix_path_without_parent_parts_is(path: str) -> None:
    parts = PurePosixPath(path).parts
    expected = (
        bool(path)
        and path[0] not in "/\\"
        and "\\" not in path
        and path[1:2] != ":"
        and ".." not in parts
    )
    assert is_safe_relpath(path) is expected
