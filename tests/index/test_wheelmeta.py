"""Reading METADATA out of a remote zip with range requests: the zip layouts that occur."""

from __future__ import annotations

import asyncio
import html
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kea.index.html import parse_project_html
from kea.index.wheelmeta import RangeUnavailable, metadata_by_range, metadata_from_zip
from tests.cache.wheelmaker import build_wheel


class RangeFile:
    """Serves ranges of real bytes the way an HTTP server does (206 + Content-Range)."""

    def __init__(self, data: bytes, *, honour: bool = True) -> None:
        self.data = data
        self.honour = honour
        self.asked: list[str] = []

    async def __call__(self, value: str) -> tuple[int, Mapping[str, str], bytes]:
        self.asked.append(value)
        total = len(self.data)
        if not self.honour:
            return 200, {}, self.data
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", value)
        assert m
        if m.group(1) == "":
            start, end = max(0, total - int(m.group(2))), total - 1
        else:
            start, end = int(m.group(1)), min(int(m.group(2)), total - 1)
        return 206, {"Content-Range": f"bytes {start}-{end}/{total}"}, self.data[start : end + 1]


def rezip(src: Path, dest: Path, compression: int) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", compression) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
    return dest


def test_deflated_wheel_larger_than_the_tail(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "big", "1.0", requires=("a", "b>1"), padding=400_000)
    fetch = RangeFile(wheel.read_bytes())
    data = asyncio.run(metadata_by_range(fetch, wheel.name, tail=16 * 1024))
    assert data == metadata_from_zip(wheel)
    assert fetch.asked[0] == "bytes=-16384"
    assert len(fetch.asked) <= 3


def test_stored_members_and_small_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "small", "1.0")
    (tmp_path / "stored").mkdir()
    stored = rezip(wheel, tmp_path / "stored" / wheel.name, compression=zipfile.ZIP_STORED)
    fetch = RangeFile(stored.read_bytes())
    assert asyncio.run(metadata_by_range(fetch, wheel.name)) == metadata_from_zip(wheel)
    assert len(fetch.asked) == 1  # the whole small file came with the first tail request


def test_zip64_local_headers_with_their_own_extra_fields(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "z", "1.0", padding=50_000)
    out = tmp_path / "z64" / wheel.name
    out.parent.mkdir()
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            with zout.open(info.filename, "w", force_zip64=True) as w:
                w.write(zin.read(info))
    fetch = RangeFile(out.read_bytes())
    assert asyncio.run(metadata_by_range(fetch, wheel.name, tail=4096)) == metadata_from_zip(wheel)


def test_server_ignoring_range_hands_back_the_body(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "x", "1.0")
    with pytest.raises(RangeUnavailable) as e:
        asyncio.run(metadata_by_range(RangeFile(wheel.read_bytes(), honour=False), wheel.name))
    assert e.value.body == wheel.read_bytes()


def test_corrupt_tail_is_range_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RangeUnavailable):
        asyncio.run(metadata_by_range(RangeFile(b"\0" * 10_000), "x-1.0-py3-none-any.whl"))


_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_versions = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True)
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=20)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(_names, _versions, st.none() | _text, st.none() | _text, st.booleans()),
        min_size=1,
        max_size=8,
    )
)
def test_html_roundtrip(rows: list[tuple[str, str, str | None, str | None, bool]]) -> None:
    """Whatever attribute values a page escapes correctly are read back exactly."""
    anchors = []
    for name, version, rp, yanked, meta in rows:
        attrs = [f'href="/files/{name}-{version}-py3-none-any.whl#sha256={"ab" * 32}"']
        if rp is not None:
            attrs.append(f'data-requires-python="{html.escape(rp)}"')
        if yanked is not None:
            attrs.append(f'data-yanked="{html.escape(yanked)}"')
        if meta:
            attrs.append('data-core-metadata="true"')
        anchors.append(f"<a {' '.join(attrs)}>{name}</a>")
    page = parse_project_html(
        "<html><body>" + "\n".join(anchors) + "</body></html>", "http://h/s/x/"
    )
    assert len(page.files) == len(rows)
    for f, (name, version, rp, yanked, meta) in zip(page.files, rows, strict=True):
        assert f.filename == f"{name}-{version}-py3-none-any.whl"
        assert f.url == f"http://h/files/{f.filename}"
        assert f.hashes == {"sha256": "ab" * 32}
        assert f.requires_python == (rp.strip() or None if rp is not None else None)
        assert f.yanked == (False if yanked is None else (yanked or True))
        assert f.core_metadata is meta
