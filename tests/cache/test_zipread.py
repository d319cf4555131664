"""kea.cache.zipread: wheels read whole from memory, and the shapes it leaves to zipfile."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from kea.cache import archive, zipread
from kea.cache.archive import WheelError, unpack_wheel
from tests.cache.wheelmaker import build_wheel


def _rewritten(whl: Path, out: Path, *, bzip2: str = "", prefix: bytes = b"") -> Path:
    """A copy of ``whl`` at ``out`` with member ``bzip2`` compressed by bzip2, and ``prefix``
    written before the archive (as a self-extracting archive has a stub)."""
    out.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(whl) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(out, "w") as zf:
        for info, data in members:
            method = zipfile.ZIP_BZIP2 if info.filename == bzip2 else zipfile.ZIP_DEFLATED
            zf.writestr(info.filename, data, compress_type=method)
    out.write_bytes(prefix + out.read_bytes())  # offsets stay relative to the archive's start
    return out


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each wheel unpacked from now on was read: "memory" or "zipfile"."""
    seen: list[str] = []
    real = archive._unpack_with_zipfile

    def spy(*args: object) -> str:
        seen.append("zipfile")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "_unpack_with_zipfile", spy)
    return seen


def _same_as_zipfile(whl: Path, target: Path) -> None:
    with zipfile.ZipFile(whl) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        for name in names:
            assert (target / name).read_bytes() == zf.read(name), name
    on_disk = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert on_disk == sorted(names)


@pytest.mark.parametrize(
    ("shape", "how"),
    [
        ({}, []),  # the common shape: from memory
        ({"bzip2": "demo/data.txt"}, ["zipfile"]),
        ({"prefix": b"#!/bin/sh\nexit 0\n"}, ["zipfile"]),
    ],
)
def test_uncommon_shapes_are_left_to_zipfile_and_unpack_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: dict[str, object], how: list[str]
) -> None:
    whl = build_wheel(tmp_path, "demo", "1.0", files={"demo/data.txt": b"payload\n" * 500})
    copy = _rewritten(whl, tmp_path / "copy" / whl.name, **shape)  # type: ignore[arg-type]
    seen = _reads(monkeypatch)
    target = tmp_path / "out"
    target.mkdir()
    assert unpack_wheel(copy, target) == "demo-1.0.dist-info"
    assert seen == how
    _same_as_zipfile(copy, target)


def test_a_zip_comment_is_read_from_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whl = build_wheel(tmp_path, "demo", "1.0")
    with zipfile.ZipFile(whl, "a") as zf:
        zf.comment = b"a comment"
    seen = _reads(monkeypatch)
    target = tmp_path / "out"
    target.mkdir()
    assert unpack_wheel(whl, target) == "demo-1.0.dist-info"
    assert seen == []
    _same_as_zipfile(whl, target)


def _second_wheel_in_comment(tmp_path: Path) -> Path:
    """A wheel whose comment holds a whole other wheel, then one stray byte: zipfile takes the
    hidden wheel's end record (the last one in the file)."""
    outer = build_wheel(tmp_path / "outer", "demo", "1.0", files={"demo/m.py": b"print('a')"})
    hidden = build_wheel(tmp_path / "hidden", "demo", "1.0", files={"demo/m.py": b"print('b')"})
    data = outer.read_bytes()
    comment = hidden.read_bytes() + b"x"
    assert len(comment) < 0xFFFF
    data = data[:-2] + len(comment).to_bytes(2, "little") + comment  # the comment length is last
    out = tmp_path / "both" / outer.name
    out.parent.mkdir()
    out.write_bytes(data)
    return out


@pytest.mark.parametrize("shape", ["second wheel in the comment", "count too low"])
def test_a_wheel_zipfile_would_read_otherwise_is_left_to_zipfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    # Whatever this reader would make of such a wheel, zipfile (pip's reader) decides: the two
    # readers never read one wheel two ways.
    if shape == "second wheel in the comment":
        whl = _second_wheel_in_comment(tmp_path)
    else:  # the end record counts one member less than the directory holds
        whl = build_wheel(tmp_path, "demo", "1.0", unlisted={"demo/evil.py": b"x"})
        data = bytearray(whl.read_bytes())
        end = data.rindex(b"PK\x05\x06")
        for field in (8, 10):  # entries on this disk, entries in all
            count = int.from_bytes(data[end + field : end + field + 2], "little")
            data[end + field : end + field + 2] = (count - 1).to_bytes(2, "little")
        whl.write_bytes(bytes(data))
    assert zipread.directory(whl.read_bytes()) is None
    seen = _reads(monkeypatch)
    target = tmp_path / "out"
    target.mkdir()
    with zipfile.ZipFile(whl) as zf:  # what pip would see
        expected = {n for n in zf.namelist() if not n.endswith("/")}
    try:
        unpack_wheel(whl, target)
    except WheelError as e:
        assert "demo/evil.py" in str(e) or "RECORD" in str(e)
    else:
        got = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
        assert got == expected
        assert (target / "demo" / "m.py").read_bytes() == b"print('b')"
    assert seen == ["zipfile"]


def test_a_record_too_large_to_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    monkeypatch.setattr(archive, "RECORD_MAX", 100)
    whl = build_wheel(tmp_path, "demo", "1.0")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"RECORD is \d+ bytes, more than kea reads \(100\)"):
        unpack_wheel(whl, target)
    assert list(target.iterdir()) == []


def _renamed(whl: Path, old: bytes, new: bytes, *, utf8: bool = False) -> Path:
    """A copy of ``whl`` with a member's name changed in place (same length), in its local
    header and its central directory entry, flagged UTF-8 there if ``utf8``."""
    data = bytearray(whl.read_bytes())
    assert len(old) == len(new) and data.count(old) == 2
    for _ in range(2):
        at = data.index(old)
        data[at : at + len(old)] = new
    if utf8:
        central = data.rindex(new) - 46  # the second: the central directory
        assert data[central : central + 4] == b"PK\x01\x02"
        flags = int.from_bytes(data[central + 8 : central + 10], "little") | 0x800
        data[central + 8 : central + 10] = flags.to_bytes(2, "little")
    out = whl.parent / "renamed" / whl.name
    out.parent.mkdir()
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(
    ("new", "utf8", "message"),
    [
        (b"demo/a\x00b.py", False, "empty or invalid path"),
        (b"demo/a\xffb.py", True, "not a valid wheel"),
    ],
)
def test_odd_names_are_refused_by_both_readers(
    tmp_path: Path, reader: str, new: bytes, utf8: bool, message: str
) -> None:
    whl = build_wheel(tmp_path, "demo", "1.0", files={"demo/axb.py": b"X = 1\n"})
    bad = _renamed(whl, b"demo/axb.py", new, utf8=utf8)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=message):
        unpack_wheel(bad, target)


def test_names_beyond_ascii_are_read_as_zipfile_reads_them(tmp_path: Path, reader: str) -> None:
    files = {"demo/ünïcode.txt": "ça va\n".encode(), "demo/日本.py": b"X = 1\n"}
    whl = build_wheel(tmp_path, "demo", "1.0", files=files)
    target = tmp_path / "out"
    target.mkdir()
    unpack_wheel(whl, target)
    _same_as_zipfile(whl, target)
    assert (target / "demo" / "ünïcode.txt").read_text() == "ça va\n"


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_cut_off_wheel_is_not_a_valid_wheel(tmp_path: Path, reader: str, keep: float) -> None:
    # Cut in the middle of the members, or of the central directory.
    whl = build_wheel(tmp_path, "demo", "1.0", padding=20_000)
    data = whl.read_bytes()
    cut = tmp_path / "cut" / whl.name
    cut.parent.mkdir()
    cut.write_bytes(data[: int(len(data) * keep)])
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match=r"not a valid wheel \(zip\) file"):
        unpack_wheel(cut, target)


def test_a_broken_central_directory_entry_is_refused(tmp_path: Path) -> None:
    whl = build_wheel(tmp_path, "demo", "1.0")
    data = bytearray(whl.read_bytes())
    first = data.index(b"PK\x01\x02")
    data[first : first + 4] = b"PK\x09\x09"
    with pytest.raises(zipread.BadZip, match="central directory"):
        zipread.directory(bytes(data))
    bad = tmp_path / "bad" / whl.name
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match="not a valid wheel"):
        unpack_wheel(bad, target)


def test_a_stored_member_is_read_and_checked(tmp_path: Path) -> None:
    whl = build_wheel(tmp_path, "demo", "1.0", files={"demo/raw.bin": bytes(range(256)) * 40})
    with zipfile.ZipFile(whl) as src:
        members = [(i.filename, src.read(i)) for i in src.infolist()]
    stored = tmp_path / "stored" / whl.name
    stored.parent.mkdir()
    with zipfile.ZipFile(stored, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    entries = {e.name: e for e in zipread.directory(stored.read_bytes()) or []}
    raw = stored.read_bytes()
    assert bytes(zipread.member_bytes(raw, entries["demo/raw.bin"])) == bytes(range(256)) * 40
    assert b"".join(zipread.member_chunks(raw, entries["demo/raw.bin"])) == bytes(range(256)) * 40
    # One byte of the stored data changed: the CRC-32 no longer matches.
    at = raw.index(bytes(range(256)))
    tampered = raw[:at] + b"\xff" + raw[at + 1 :]
    with pytest.raises(zipread.BadZip, match="bad CRC-32 or size"):
        zipread.member_bytes(tampered, entries["demo/raw.bin"])
    with pytest.raises(zipread.BadZip, match="bad CRC-32 or size"):
        list(zipread.member_chunks(tampered, entries["demo/raw.bin"]))


def test_a_deflated_member_is_streamed_in_pieces_and_checked(tmp_path: Path) -> None:
    """A deflated member many times CHUNK long, in and out, comes out whole; cut short or
    corrupted it is refused. (Its input goes to zlib a piece at a time: the whole rest each
    time made large members quadratic, bench/results/2026-11-27e.)"""
    import random

    rng = random.Random(5)
    # Half random bytes, half text: ~3x compression, like a shared library.
    content = b"".join(rng.randbytes(512) + b"def f(x):\n    return x\n" * 20 for _ in range(600))
    whl = build_wheel(tmp_path, "demo", "1.0", files={"demo/big.bin": content})
    raw = whl.read_bytes()
    entry = {e.name: e for e in zipread.directory(raw) or []}["demo/big.bin"]
    assert entry.method == 8 and entry.compressed > 4 * zipread.CHUNK
    pieces = list(zipread.member_chunks(raw, entry))
    assert b"".join(pieces) == content
    assert len(pieces) > 4 and max(len(p) for p in pieces) <= zipread.CHUNK
    # The deflate stream cut short (the member's declared sizes still claim all of it).
    start, stop = zipread.data_span(raw, entry)
    cut = zipread.Entry(*entry[:4], entry.compressed // 2, *entry[5:])
    with pytest.raises(zipread.BadZip, match="truncated deflate data"):
        list(zipread.member_chunks(raw, cut))
    # A byte in the middle of the stream changed: the stream breaks, or the CRC-32 tells.
    middle = (start + stop) // 2
    bad = raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :]
    with pytest.raises(zipread.BadZip, match=r"corrupt deflate data|bad CRC-32 or size"):
        list(zipread.member_chunks(bad, entry))


def _overlapping_zip() -> bytes:
    """A zip of two stored members where the second lies inside the first's data: its local
    header and bytes are part of ``outer.txt``. Each member reads fine on its own (names,
    sizes and CRCs agree); together they share bytes, as the members of an overlapping zip
    bomb share one deflate stream."""
    import struct
    import zlib

    def local(name: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(data)
        sizes = (crc, len(data), len(data), len(name), 0)
        head = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, *sizes)
        return head + name + data

    def central(name: bytes, data: bytes, offset: int) -> bytes:
        crc = zlib.crc32(data)
        sizes = (crc, len(data), len(data), len(name), 0, 0, 0, 0, 0o644 << 16, offset)
        head = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, *sizes)
        return head + name

    inner = b"inner bytes\n"
    outer = b"pad" + local(b"inner.txt", inner) + b"more"
    body = local(b"outer.txt", outer)
    inner_at = 30 + len(b"outer.txt") + 3
    cd = central(b"outer.txt", outer, 0) + central(b"inner.txt", inner, inner_at)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), len(body), 0)
    return body + cd + end


def test_members_that_overlap_are_refused_by_both_readers(tmp_path: Path, reader: str) -> None:
    data = _overlapping_zip()
    bomb = tmp_path / "bomb-1.0-py3-none-any.whl"
    bomb.write_bytes(data)
    with zipfile.ZipFile(bomb) as zf:  # each member alone is a valid zip member
        assert zf.read("inner.txt") == b"inner bytes\n"
    with pytest.raises(zipread.BadZip, match="members overlap"):
        zipread.directory(data)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(WheelError, match="members overlap in the archive"):
        unpack_wheel(bomb, target)
    assert list(target.iterdir()) == []


def test_a_member_running_into_the_central_directory_is_refused() -> None:
    with pytest.raises(zipread.BadZip, match="overlaps the central directory"):
        zipread.check_spans([(0, 50), (50, 120)], 100)
    zipread.check_spans([(0, 50), (50, 100)], 100)  # adjoining is fine


@pytest.mark.parametrize("bad", [False, True])
def test_a_wheel_is_mapped_and_unmapped_whatever_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: bool
) -> None:
    import mmap

    maps: list[mmap.mmap] = []
    real = mmap.mmap

    def spy(*args: object, **kwargs: object) -> mmap.mmap:
        m = real(*args, **kwargs)  # type: ignore[call-overload]
        maps.append(m)
        return m  # type: ignore[no-any-return]

    monkeypatch.setattr(mmap, "mmap", spy)
    whl = build_wheel(
        tmp_path, "demo", "1.0", files={"demo/a.py": b"A = 1\n"},
        bad_record_hash="demo/a.py" if bad else None,
    )  # fmt: skip
    target = tmp_path / "out"
    target.mkdir()
    if bad:
        with pytest.raises(WheelError, match="does not match its RECORD hash"):
            unpack_wheel(whl, target)
    else:
        assert unpack_wheel(whl, target) == "demo-1.0.dist-info"
        assert (target / "demo" / "a.py").read_bytes() == b"A = 1\n"
    assert len(maps) == 1 and maps[0].closed
