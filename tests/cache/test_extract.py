"""kea.cache.extract through unpack_wheel: raw reads, streamed large members, several threads."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kea.cache import extract, zipread
from kea.cache.archive import WheelError, unpack_wheel
from tests.cache.wheelmaker import build_wheel, with_hex_record


def _unpacked_equals_zip(whl: Path, target: Path) -> int:
    with zipfile.ZipFile(whl) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        for name in names:
            assert (target / name).read_bytes() == zf.read(name), name
    return len(names)


def test_many_members_unpack_on_several_threads_identically(tmp_path: Path, reader: str) -> None:
    files = {f"pkg/mod{i:03}.py": f"X = {i!r}\n".encode() * (i + 1) for i in range(300)}
    files["pkg/data.bin"] = os.urandom(5000)
    whl = build_wheel(tmp_path, "many", "1.0", files=files)
    target = tmp_path / "out"
    target.mkdir()
    assert unpack_wheel(whl, target) == "many-1.0.dist-info"
    assert _unpacked_equals_zip(whl, target) == 305  # 301 files + __init__, METADATA, WHEEL, RECORD


def _spy_streaming(monkeypatch: pytest.MonkeyPatch, reader: str) -> list[str]:
    """The names of the members read in pieces from now on, by either reader."""
    streamed: list[str] = []
    if reader == "zipfile":
        real_open = zipfile.ZipFile.open

        def spy(self: zipfile.ZipFile, name: object, *args: object, **kwargs: object) -> object:
            streamed.append(getattr(name, "filename", name))  # type: ignore[arg-type]
            return real_open(self, name, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    else:
        real_chunks = extract.member_chunks

        def spy_chunks(data: bytes, entry: zipread.Entry) -> Iterator[bytes | memoryview]:
            streamed.append(entry.name)
            return real_chunks(data, entry)

        monkeypatch.setattr(extract, "member_chunks", spy_chunks)
    return streamed


def test_member_above_the_raw_limit_is_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    monkeypatch.setattr(extract, "SMALL", 100)  # every padded module is "large"
    monkeypatch.setattr(extract, "SMALL_SHARED", 100)
    monkeypatch.setattr(zipread, "CHUNK", 4096)  # many pieces per member
    whl = build_wheel(tmp_path, "big", "1.0", padding=300_000)
    streamed = _spy_streaming(monkeypatch, reader)
    for threads in (None, 1):  # in this process; as a worker process unpacks
        target = tmp_path / f"out-{threads}"
        target.mkdir()
        streamed.clear()
        unpack_wheel(whl, target, threads=threads)
        _unpacked_equals_zip(whl, target)
        assert any(n.startswith("big/") for n in streamed), threads


def _flip_byte_in(whl: Path, member: str) -> Path:
    """A copy of ``whl`` with one byte of ``member``'s data flipped (as in transit)."""
    out = whl.with_name("corrupt-" + whl.name)
    data = bytearray(whl.read_bytes())
    with zipfile.ZipFile(whl) as zf:
        info = zf.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_corrupt_member_data_is_refused(tmp_path: Path, reader: str) -> None:
    files = {f"pkg/m{i}.py": b"VALUE = 'x' * 100\n" * 20 for i in range(100)}
    whl = build_wheel(tmp_path, "crc", "1.0", files=files)
    bad = _flip_byte_in(whl, "pkg/m50.py")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"cannot extract 'pkg/m50.py'"):
        unpack_wheel(bad, target)


def test_local_header_naming_another_member_is_refused(tmp_path: Path, reader: str) -> None:
    whl = build_wheel(tmp_path, "alias", "1.0", files={"pkg/aaa.py": b"A = 1\n"})
    data = whl.read_bytes()
    # Same length name in the local header only: the central directory still says pkg/aaa.py.
    idx = data.index(b"pkg/aaa.py")
    assert data.count(b"pkg/aaa.py") == 2  # local header, central directory (RECORD is deflated)
    bad = tmp_path / "bad" / whl.name
    bad.parent.mkdir()
    bad.write_bytes(data[:idx] + b"pkg/zzz.py" + data[idx + 10 :])
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match="local header names another member"):
        unpack_wheel(bad, target)


def test_record_mismatch_found_by_any_thread_stops_the_unpack(tmp_path: Path, reader: str) -> None:
    files = {f"pkg/m{i:03}.py": f"V = {i}\n".encode() for i in range(400)}
    whl = build_wheel(tmp_path, "rec", "1.0", files=files, bad_record_hash="pkg/m399.py")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"'pkg/m399.py' does not match its RECORD hash"):
        unpack_wheel(whl, target)


def test_record_digests_in_hex_are_checked_as_hex(tmp_path: Path, reader: str) -> None:
    # uv_build before 0.8.13 wrote RECORD digests in hex: such wheels install (pip and uv do
    # not check RECORD at all), and their files are still checked against those digests.
    files = {f"pkg/m{i:03}.py": f"V = {i}\n".encode() for i in range(100)}
    whl = with_hex_record(build_wheel(tmp_path / "good", "hexrec", "1.0", files=files))
    record = zipfile.ZipFile(whl).read("hexrec-1.0.dist-info/RECORD").decode()
    assert re.search(r"^pkg/m000\.py,sha256=[0-9a-f]{64},6$", record, re.MULTILINE), record
    target = tmp_path / "out"
    target.mkdir()
    assert unpack_wheel(whl, target) == "hexrec-1.0.dist-info"
    assert _unpacked_equals_zip(whl, target) == 104
    bad = build_wheel(tmp_path / "bad", "hexrec", "1.0", files=files, bad_record_hash="pkg/m050.py")
    with_hex_record(bad)
    target = tmp_path / "out-bad"
    target.mkdir()
    with pytest.raises(WheelError, match=r"'pkg/m050.py' does not match its RECORD hash"):
        unpack_wheel(bad, target)


def _with_central_field(whl: Path, member: str, offset: int, value: int) -> Path:
    """A copy of ``whl`` (in a ``bad/`` directory beside it) whose central directory header of
    ``member`` has the 4-byte field at ``offset`` (16: CRC-32, 24: uncompressed size) set to
    ``value``; the member's data is left as it is."""
    data = bytearray(whl.read_bytes())
    with zipfile.ZipFile(whl) as zf:
        info = zf.getinfo(member)
    name = member.encode()
    pos = data.index(name, info.header_offset + 30 + len(name)) - 46
    assert data[pos : pos + 4] == b"PK\x01\x02"
    data[pos + offset : pos + offset + 4] = value.to_bytes(4, "little")
    bad = whl.parent / "bad" / whl.name
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    return bad


def test_declared_size_bounds_inflation(tmp_path: Path, reader: str) -> None:
    # A member whose central directory under-states its size: the raw path inflates at most
    # size + 1 bytes and refuses it (no unbounded allocation).
    whl = build_wheel(tmp_path, "bomb", "1.0", files={"pkg/zeros.txt": b"\0" * 200_000})
    bad = _with_central_field(whl, "pkg/zeros.txt", 24, 1000)  # its uncompressed size
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"cannot extract 'pkg/zeros\.txt'"):
        unpack_wheel(bad, target)


@pytest.mark.parametrize(("field", "value"), [(16, 0x1234_5678), (24, 200_001)])
def test_central_directory_crc_or_overstated_size_is_refused(
    tmp_path: Path, field: int, value: int, reader: str
) -> None:
    # The inflated bytes are intact; only the central directory's CRC-32 (offset 16) or
    # uncompressed size (24, one byte more than the stream holds) is wrong.
    whl = build_wheel(tmp_path, "crcfield", "1.0", files={"pkg/zeros.txt": b"\0" * 200_000})
    bad = _with_central_field(whl, "pkg/zeros.txt", field, value)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"cannot extract 'pkg/zeros\.txt'.*bad CRC-32 or size"):
        unpack_wheel(bad, target)


@pytest.mark.parametrize(("field", "value"), [(16, 0x1234_5678), (24, 1000), (24, 200_001)])
def test_a_streamed_member_is_checked_as_a_whole_one_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: int, value: int, reader: str
) -> None:
    # As above, for a member read in pieces: a wrong CRC-32, an under-stated size (inflating
    # stops past it), an over-stated one.
    monkeypatch.setattr(extract, "SMALL", 100)
    monkeypatch.setattr(extract, "SMALL_SHARED", 100)
    whl = build_wheel(tmp_path, "crcfield", "1.0", files={"pkg/zeros.txt": b"\0" * 200_000})
    bad = _with_central_field(whl, "pkg/zeros.txt", field, value)
    streamed = _spy_streaming(monkeypatch, reader)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"cannot extract 'pkg/zeros\.txt'"):
        unpack_wheel(bad, target)
    assert "pkg/zeros.txt" in streamed


@pytest.mark.parametrize(
    "text",
    [
        "a.py,sha256=AAAA,4\nb/c.py,sha256=BBBB,\nx.dist-info/RECORD,,\n",
        "a.py,sha256=AAAA,4\r\nb.py,sha256= BBBB ,12\r\n\r\n",
        'a.py,sha256=AAAA,4\n"b,c.py",sha256=BBBB,5\n',  # quoted: read by csv
        "a.py,SHA256=AAAA,4\nb.py,sha512=CCCC,1,extra\n",
    ],
)
def test_record_rows_split_by_hand_read_as_csv_reads_them(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read_record`` splits a RECORD without quotes or stray line breaks itself; the rows,
    digests and sizes are what the ``csv`` reader gave."""
    import csv
    import io

    from kea.cache import archive

    by_hand = archive.read_record("w.whl", text.encode())
    monkeypatch.setattr(archive, "_rows", lambda t: csv.reader(io.StringIO(t)))
    assert by_hand == archive.read_record("w.whl", text.encode())
    assert by_hand["a.py"] == ("sha256", "AAAA", 4)


def test_the_whole_file_is_checked_before_anything_is_written(tmp_path: Path, reader: str) -> None:
    import hashlib

    whl = build_wheel(tmp_path, "demo", "1.0", files={"demo/a.py": b"a = 1\n"})
    sha = hashlib.sha256(whl.read_bytes()).hexdigest()
    for part in ((0, 1), (1, 2)):
        target = tmp_path / f"out{part[0]}"
        target.mkdir()
        with pytest.raises(WheelError, match=f"expected sha256:{'1' * 64}, got sha256:{sha}"):
            unpack_wheel(whl, target, part=part, hashes={"sha256": "1" * 64})
        assert list(target.iterdir()) == []
    target = tmp_path / "good"
    target.mkdir()
    assert unpack_wheel(whl, target, hashes={"sha256": sha}) == "demo-1.0.dist-info"
    assert (target / "demo" / "a.py").read_bytes() == b"a = 1\n"
