from __future__ import annotations

import pytest
from packaging.tags import Tag, sys_tags

from kea.dist.metadata import decode_metadata, encode_metadata, parse_metadata
from kea.dist.placement import is_safe_relpath
from kea.dist.record import parse_record, write_record
from kea.dist.tags import TagRanker
from kea.dist.wheel_name import (
    is_sdist_filename,
    parse_dist_filename,
    parse_wheel_name,
    require_wheel,
)
from kea.errors import KeaError


def test_wheel_name_parts() -> None:
    w = parse_wheel_name("Foo_Bar-1.2.3-1build-cp311-cp311-manylinux_2_17_x86_64.whl")
    assert w.name == "foo-bar"
    assert str(w.version) == "1.2.3"
    assert w.build == (1, "build")
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") in w.tags


def test_bad_wheel_name_is_kea_error() -> None:
    with pytest.raises(KeaError, match="invalid wheel file name"):
        parse_wheel_name("nope.whl")


def test_dist_filename_name_and_version() -> None:
    wheel = parse_dist_filename("Foo_Bar-1.2.3-py3-none-any.whl")
    assert wheel is not None and (wheel[0], str(wheel[1])) == ("foo-bar", "1.2.3")
    sdist = parse_dist_filename("Foo.Bar-2.0rc1.tar.gz")
    assert sdist is not None and (sdist[0], str(sdist[1])) == ("foo-bar", "2.0rc1")
    for bad in ("nope.whl", "foo.tar.gz", "foo-notaversion.zip", "foo-1.0.egg"):
        assert parse_dist_filename(bad) is None


@pytest.mark.parametrize("name", ["foo-1.0.tar.gz", "foo-1.0.zip", "Foo-2.tar.bz2"])
def test_sdist_is_refused_with_clear_message(name: str) -> None:
    assert is_sdist_filename(name)
    with pytest.raises(KeaError) as e:
        require_wheel(name)
    assert str(e.value) == f"building from source is not supported yet: {name}"


def test_metadata_fields_and_roundtrip() -> None:
    text = (
        "Metadata-Version: 2.1\nName: My.Pkg\nVersion: 2.0rc1\nSummary: hi\n"
        "Requires-Python: >=3.8\nProvides-Extra: fast\n"
        "Requires-Dist: attrs>=20\nRequires-Dist: ujson; extra == 'fast'\n"
        "Description: first line\n  continued\n\nBody: not a header\n"
    )
    m = parse_metadata(text.encode())
    assert (m.name, m.version, m.canonical_name) == ("My.Pkg", "2.0rc1", "my-pkg")
    assert m.requires_dist == ("attrs>=20", "ujson; extra == 'fast'")
    assert m.requires_python == ">=3.8"
    assert m.provides_extra == ("fast",)
    assert decode_metadata(encode_metadata(m)) == m


@pytest.mark.parametrize(
    "text, message",
    [("Name: x\n", "no Version"), ("Version: 1\n", "no Name"), ("Name: x\nVersion: !!\n", "inv")],
)
def test_bad_metadata(text: str, message: str) -> None:
    with pytest.raises(KeaError, match=message):
        parse_metadata(text)


def test_tag_ranking_prefers_most_specific() -> None:
    supported = [str(t) for t in sys_tags()]
    ranker = TagRanker(supported)
    specific = supported[0]
    names = [
        "a-1.0-py3-none-any.whl",
        f"a-1.0-{specific}.whl",
        "a-1.0-cp27-cp27m-win32.whl",
    ]
    assert ranker.best(names) == f"a-1.0-{specific}.whl"
    assert ranker.rank_filename("a-1.0-cp27-cp27m-win32.whl") is None
    assert ranker.rank_filename("a-1.0-py3-none-any.whl") is not None
    # compressed tag sets take their best member
    r1 = ranker.rank_filename("a-1.0-py2.py3-none-any.whl")
    assert r1 == ranker.rank_filename("a-1.0-py3-none-any.whl")


def test_record_roundtrip_and_safety() -> None:
    text = 'a/b.py,sha256=abc,12\n"weird,name.py",,\nx.dist-info/RECORD,,\n'
    entries = parse_record(text)
    assert [e.path for e in entries] == ["a/b.py", "weird,name.py", "x.dist-info/RECORD"]
    assert entries[0].size == 12 and entries[1].size is None
    assert parse_record(write_record(entries)) == entries
    for bad in ["../x", "/etc/passwd", "a/../../x", "C:/x", "a\\..\\x", ""]:
        assert not is_safe_relpath(bad), bad
    assert is_safe_relpath("pkg/mod.py")
    assert is_safe_relpath("../../../bin/x") is False


def test_headers_continue_past_whitespace_only_continuation_lines() -> None:
    # jupyter_client's License field has continuation lines made of spaces only; the headers
    # after it (its Requires-Dist) must still be read.
    text = (
        "Metadata-Version: 2.1\nName: x\nVersion: 1\nLicense: a\n        \n        b\n"
        "Requires-Dist: y>=1\n\nbody: not a header\n"
    )
    md = parse_metadata(text)
    assert list(md.requires_dist) == ["y>=1"]


def test_write_record_matches_csv_with_and_without_quoting() -> None:
    import csv
    import io

    from kea.dist.record import RecordEntry, parse_record, write_record

    def by_csv(entries: list[RecordEntry]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for e in entries:
            w.writerow([e.path, e.hash, "" if e.size is None else str(e.size)])
        return buf.getvalue()

    plain = [
        RecordEntry("pkg/__init__.py", "sha256=abc", 12),
        RecordEntry("pkg-1.0.dist-info/RECORD", "", None),
    ]
    odd = [*plain, RecordEntry('pkg/a,b "c".py', "sha256=def", 3)]
    for entries in (plain, odd, []):
        assert write_record(entries) == by_csv(entries)
        assert parse_record(write_record(entries)) == entries


def test_canonicalize_name_agrees_with_packaging_and_its_memo_stays_bounded() -> None:
    from packaging.utils import canonicalize_name as packaging_canonical

    from kea.dist import names

    spellings = ["Foo.Bar_baz", "foo--bar", "A", "jupyterlab-server", "zope.interface", "x__-.y"]
    for _ in range(2):  # the second time from the memo
        for s in spellings:
            assert names.canonicalize_name(s) == packaging_canonical(s)
    bound = names.canonicalize_name.cache_info().maxsize
    assert bound == 4096
    many = [f"Pkg_{i}.X" for i in range(bound + 10)]
    assert [names.canonicalize_name(s) for s in many] == [f"pkg-{i}-x" for i in range(len(many))]
    assert names.canonicalize_name.cache_info().currsize <= bound
    assert names.canonicalize_name("Foo.Bar_baz") == "foo-bar-baz"
