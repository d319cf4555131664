"""The wheel cache: verified streaming, one unpack per wheel, atomic archives, safe sharing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kea.cache import ARCHIVE, WHEELS, Cache
from kea.cache.store import WheelPointer, url_key
from kea.errors import KeaError
from kea.settings import Settings, load_settings
from tests.cache.wheelmaker import build_wheel, sha256_of


async def chunks_of(path: Path, size: int = 1000) -> AsyncIterator[bytes]:
    data = path.read_bytes()
    for i in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[i : i + size]


def leftovers(cache: Cache) -> list[str]:
    """Everything in the wheel buckets except lock files: what a failure must not leave."""
    out = []
    for bucket in (ARCHIVE, WHEELS):
        root = cache.root / bucket
        if root.is_dir():
            out += [str(p.relative_to(cache.root)) for p in root.iterdir()]
    return out


def test_store_wheel_streams_verifies_and_unpacks(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path, "demo", "1.0", files={"demo/tool.py": b"print('hi')\n"}, padding=5000
    )
    sha = sha256_of(wheel)
    cache = Cache(tmp_path / "cache")
    url = "https://user:pw@files.example/demo-1.0-py3-none-any.whl"
    archive = asyncio.run(cache.store_wheel(chunks_of(wheel), wheel.name, {"sha256": sha}, url=url))
    assert archive == cache.root / ARCHIVE / sha
    assert (archive / "demo" / "tool.py").read_bytes() == b"print('hi')\n"
    assert (archive / "demo-1.0.dist-info" / "RECORD").is_file()
    assert cache.archive_path(sha) == archive
    assert cache.archive_path("0" * 64) is None
    # Found again by sha256, or by its URL when the index gives no hash (credentials ignored).
    assert cache.find_archive(wheel.name, hashes={"sha256": sha}) == archive
    assert cache.find_archive(wheel.name, url=url.replace("user:pw@", "")) == archive
    assert cache.find_archive(wheel.name, url=url, hashes={"md5": "0" * 32}) is None
    # The pointer on disk never holds the credentials of the URL.
    pointers = list((cache.root / WHEELS).rglob("*.msgpack"))
    assert len(pointers) == 1
    assert b"pw@" not in pointers[0].read_bytes()
    assert leftovers(cache) == [f"{ARCHIVE}/{sha}", f"{WHEELS}/demo"]


def test_store_wheel_says_when_the_bytes_are_in(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", files={"demo/a.py": b"a = 1\n"}, padding=5000)
    sha = sha256_of(wheel)
    cache = Cache(tmp_path / "cache")
    sent = [0]
    told: list[tuple[int, bool]] = []

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in chunks_of(wheel):
            sent[0] += len(chunk)
            yield chunk

    def spooled() -> None:
        told.append((sent[0], (cache.root / ARCHIVE / sha).exists()))

    archive = asyncio.run(
        cache.store_wheel(counted(), wheel.name, {"sha256": sha}, spooled=spooled)
    )
    # Once, with every byte in and before the wheel was unpacked.
    assert told == [(wheel.stat().st_size, False)]
    assert (archive / "demo" / "a.py").read_bytes() == b"a = 1\n"


def test_executable_bit_is_kept(tmp_path: Path) -> None:
    import zipfile

    wheel = build_wheel(tmp_path, "exe", "1.0", files={"exe/run.sh": b"#!/bin/sh\n"})
    # Rewrite with a mode on run.sh (zipfile.writestr takes a ZipInfo).
    src = zipfile.ZipFile(wheel)
    rebuilt = tmp_path / "re" / wheel.name
    rebuilt.parent.mkdir()
    with zipfile.ZipFile(rebuilt, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "exe/run.sh":
                info.external_attr = 0o100755 << 16
            out.writestr(info, data)
    src.close()
    archive = asyncio.run(Cache(tmp_path / "c").unpack_local_wheel(rebuilt))
    assert os.access(archive / "exe" / "run.sh", os.X_OK)
    assert not os.access(archive / "exe" / "__init__.py", os.X_OK)


def test_hash_mismatch_while_streaming_leaves_nothing(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KeaError) as e:
        asyncio.run(cache.store_wheel(chunks_of(wheel), wheel.name, {"sha256": "1" * 64}))
    assert "hash mismatch for demo-1.0-py3-none-any.whl" in str(e.value)
    assert leftovers(cache) == []


def test_a_download_is_checked_before_an_archive_already_there_is_taken(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", files={"demo/a.py": b"a = 1\n"})
    sha = sha256_of(wheel)
    cache = Cache(tmp_path / "cache")
    first = "https://one.example/demo-1.0-py3-none-any.whl"
    archive = asyncio.run(
        cache.store_wheel(chunks_of(wheel), wheel.name, {"sha256": sha}, url=first)
    )
    before = sorted(p.relative_to(archive) for p in archive.rglob("*"))
    # Another URL claims the same sha256 but sends other bytes: the archive named by that
    # sha256 is there, yet the download is checked and refused, and no pointer is written.
    tampered = build_wheel(tmp_path / "t", "demo", "1.0", files={"demo/a.py": b"a = 2\n"})
    second = "https://two.example/demo-1.0-py3-none-any.whl"
    with pytest.raises(KeaError) as e:
        asyncio.run(cache.store_wheel(chunks_of(tampered), wheel.name, {"sha256": sha}, url=second))
    assert str(e.value).startswith(f"hash mismatch for {wheel.name}: expected sha256:{sha}")
    assert cache.find_archive(wheel.name, url=second) is None
    assert len(list((cache.root / WHEELS).rglob("*.msgpack"))) == 1
    assert sorted(p.relative_to(archive) for p in archive.rglob("*")) == before
    # The same bytes from the second URL are taken, checked, and pointed to.
    again = asyncio.run(
        cache.store_wheel(chunks_of(wheel), wheel.name, {"SHA256": sha.upper()}, url=second)
    )
    assert again == archive and cache.find_archive(wheel.name, url=second) == archive


@pytest.mark.parametrize("claim", ["../" * 3 + "x" * 55, "1" * 63, "g" * 64, ""])
def test_a_malformed_sha256_is_no_archive_name(tmp_path: Path, claim: str) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KeaError, match=f"hash mismatch for {wheel.name}: expected sha256:"):
        asyncio.run(cache.store_wheel(chunks_of(wheel), wheel.name, {"sha256": claim}))
    assert leftovers(cache) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", wheel.name]


def test_every_expected_hash_is_checked(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    sha, md5 = sha256_of(wheel), hashlib.md5(wheel.read_bytes()).hexdigest()
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KeaError, match="expected md5:0{32}, got md5:" + md5):
        asyncio.run(
            cache.store_wheel(chunks_of(wheel), wheel.name, {"sha256": sha, "md5": "0" * 32})
        )
    assert leftovers(cache) == []
    archive = asyncio.run(
        cache.store_wheel(
            chunks_of(wheel), wheel.name, {"sha256": sha, "md5": md5, "whirl-9": "?"}, url="u"
        )
    )
    pointer = cache.read_record(WHEELS, f"demo/{wheel.name}-{url_key('u')}.msgpack", WheelPointer)
    assert archive.name == sha and pointer is not None
    assert pointer.hashes == {"sha256": sha, "md5": md5}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bad_record_hash": "demo/__init__.py"}, "does not match its RECORD hash"),
        ({"extra_members": {"../evil.py": b"x"}}, "escapes the install target"),
        ({"extra_members": {"demo/../../evil.py": b"x"}}, "escapes the install target"),
        ({"extra_members": {"/etc/evil.py": b"x"}}, "escapes the install target"),
        ({"unlisted": {"demo/sneaky.py": b"x"}}, "is not listed in RECORD"),
    ],
)
def test_bad_wheels_are_refused_and_nothing_is_cached(
    tmp_path: Path, kwargs: dict[str, object], message: str, reader: str
) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", **kwargs)  # type: ignore[arg-type]
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KeaError) as e:
        asyncio.run(cache.store_wheel(chunks_of(wheel), wheel.name, {}))
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert leftovers(cache) == []
    assert not (tmp_path / "evil.py").exists() and not Path("/etc/evil.py").exists()
    with pytest.raises(KeaError):
        asyncio.run(cache.unpack_local_wheel(wheel))
    assert leftovers(cache) == []


def test_not_a_zip(tmp_path: Path, reader: str) -> None:
    bad = tmp_path / "demo-1.0-py3-none-any.whl"
    bad.write_bytes(b"this is not a zip")
    cache = Cache(tmp_path / "cache")
    with pytest.raises(KeaError, match="not a valid wheel"):
        asyncio.run(cache.unpack_local_wheel(bad))
    assert leftovers(cache) == []


def test_local_wheel_is_never_unzipped_twice(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    cache = Cache(tmp_path / "cache")
    first = asyncio.run(cache.unpack_local_wheel(wheel, {"sha256": sha256_of(wheel)}))
    # Overwrite the wheel with garbage of the same size and mtime: a second unzip (or even a
    # second read) would fail, so success proves the archive is reused as is.
    st = wheel.stat()
    wheel.write_bytes(b"\0" * st.st_size)
    os.utime(wheel, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = asyncio.run(cache.unpack_local_wheel(wheel))
    assert first == again
    assert (again / "demo" / "__init__.py").is_file()
    # A hash asked for is still checked against the one recorded when it was stored.
    with pytest.raises(KeaError, match="hash mismatch"):
        asyncio.run(cache.unpack_local_wheel(wheel, {"sha256": "2" * 64}))


def test_changed_local_wheel_is_unpacked_again(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    wheel = build_wheel(tmp_path, "demo", "1.0")
    first = asyncio.run(cache.unpack_local_wheel(wheel))
    wheel.unlink()
    build_wheel(tmp_path, "demo", "1.0", files={"demo/new.py": b"new = 1\n"})
    os.utime(wheel, ns=(1, 1))
    second = asyncio.run(cache.unpack_local_wheel(wheel))
    assert first != second
    assert (second / "demo" / "new.py").is_file()


_STORE_SCRIPT = """
import asyncio
import sys
from pathlib import Path
from kea.cache import Cache
print(asyncio.run(Cache(Path(sys.argv[1])).unpack_local_wheel(Path(sys.argv[2]))))
"""


def test_concurrent_processes_store_the_same_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", padding=200_000)
    copies = []
    for i in range(6):
        d = tmp_path / f"copy{i}"
        d.mkdir()
        copies.append(shutil.copy(wheel, d / wheel.name))
    cache_dir = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _STORE_SCRIPT, str(cache_dir), str(c)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in copies
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert paths == {str(cache_dir / ARCHIVE / sha256_of(wheel))}
    entries = [p.name for p in (cache_dir / ARCHIVE).iterdir()]
    assert entries == [sha256_of(wheel)]
    record = cache_dir / ARCHIVE / sha256_of(wheel) / "demo-1.0.dist-info" / "RECORD"
    assert record.read_text().count("\n") == 5  # __init__, _blob, METADATA, WHEEL, RECORD


def test_records_are_atomic_and_corrupt_ones_are_dropped(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    ptr = WheelPointer(filename="a-1-py3-none-any.whl", sha256="0" * 64, source="x")
    cache.write_record(WHEELS, "a/x.msgpack", ptr)
    assert cache.read_record(WHEELS, "a/x.msgpack", WheelPointer) == ptr
    assert cache.read_record(WHEELS, "a/missing.msgpack", WheelPointer) is None
    (cache.root / WHEELS / "a" / "x.msgpack").write_bytes(b"\xc1garbage")
    assert cache.read_record(WHEELS, "a/x.msgpack", WheelPointer) is None
    assert not (cache.root / WHEELS / "a" / "x.msgpack").exists()
    assert (cache.root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f59")


def test_a_record_directory_removed_meanwhile_is_made_again(tmp_path: Path) -> None:
    """Each record directory is made once a run; one removed since (``kea cache clean`` in
    another process) is made again rather than failing the write."""
    import shutil

    cache = Cache(tmp_path / "cache")
    ptr = WheelPointer(filename="a-1-py3-none-any.whl", sha256="0" * 64, source="x")
    cache.write_record(WHEELS, "a/x.msgpack", ptr)
    shutil.rmtree(cache.root / WHEELS / "a")
    cache.write_record(WHEELS, "a/y.msgpack", ptr)
    assert cache.read_record(WHEELS, "a/y.msgpack", WheelPointer) == ptr
    assert sorted(p.name for p in (cache.root / WHEELS / "a").iterdir()) == ["y.msgpack"]


def test_an_atomic_write_beside_a_relative_name_stays_in_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kea.atomic import atomic_write

    monkeypatch.chdir(tmp_path)
    atomic_write("memo.bin", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memo.bin"]
    assert (tmp_path / "memo.bin").read_bytes() == b"data"


def test_an_atomic_write_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    from kea.atomic import atomic_write

    (tmp_path / "taken").mkdir()  # the rename over a directory fails
    (tmp_path / "taken" / "inside").write_bytes(b"old")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "taken", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (tmp_path / "taken" / "inside").read_bytes() == b"old"


def test_cache_location_from_settings(tmp_path: Path) -> None:
    s = load_settings(cli={"cache_dir": str(tmp_path / "c1")}, env={}, cwd=tmp_path)
    assert Cache.from_settings(s).root == tmp_path / "c1"
    s = load_settings(env={"KEA_CACHE_DIR": str(tmp_path / "c2")}, cwd=tmp_path)
    assert Cache.from_settings(s).root == tmp_path / "c2"
    temp = Cache.from_settings(Settings(no_cache=True))
    assert temp.temporary
    temp.bucket(ARCHIVE)
    assert temp.root.is_dir()
    temp.close()
    assert not temp.root.exists()


def test_default_location_is_the_user_cache_dir(tmp_path: Path) -> None:
    code = "from kea.cache.store import default_cache_dir; print(default_cache_dir())"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    if sys.platform.startswith("linux"):
        assert out.stdout.strip() == str(tmp_path / "xdg" / "kea")


def test_temporary_cache_is_removed_at_exit(tmp_path: Path) -> None:
    code = (
        "from kea.cache import Cache\n"
        "from kea.settings import Settings\n"
        "c = Cache.from_settings(Settings(no_cache=True)); c.bucket('archive-v1')\n"
        "print(c.root)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    root = Path(out.stdout.strip())
    assert root.name.startswith("kea-cache-")
    assert not root.exists()


def test_sha256_helper_matches_hashlib(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    assert sha256_of(wheel) == hashlib.sha256(wheel.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("pkg/mod.py", "pkg/mod.py"),
        ("pkg//mod.py", "pkg/mod.py"),
        ("./pkg/mod.py", "pkg/mod.py"),
        ("pkg/./mod.py", "pkg/mod.py"),
        ("pkg/", "pkg"),
        (".hidden", ".hidden"),
        ("pkg/.data/x", "pkg/.data/x"),
        ("pkg/b..", "pkg/b.."),
        ("x..y/z", "x..y/z"),
        ("pkg/.icons/a.svg", "pkg/.icons/a.svg"),
        ("pkg/.../x", "pkg/.../x"),
        ("pkg/..x/y", "pkg/..x/y"),
        ("pkg/.", "pkg"),
        ("pkg/./.", "pkg"),
        (".", ""),
        ("./.hidden", ".hidden"),
        ("a/.//b/", "a/b"),
    ],
)
def test_member_paths_are_normalised(name: str, normal: str) -> None:
    from kea.cache.archive import check_member_path

    assert check_member_path("w.whl", name) == normal


@pytest.mark.parametrize(
    "name", ["../a", "a/../b", "a/..", "..", "/abs", "a\\b", "C:x", "", "a/./../b", "a//.."]
)
def test_member_paths_that_escape_are_refused(name: str) -> None:
    from kea.cache.archive import WheelError, check_member_path

    with pytest.raises(WheelError):
        check_member_path("w.whl", name)


def test_a_directory_where_a_record_goes_is_replaced(tmp_path: Path) -> None:
    """A damaged cache (a directory at a record's path) made every later write of that record
    fail with an unexpected IsADirectoryError."""
    cache = Cache(tmp_path / "cache")
    spot = cache.bucket("simple-v1") / "k" / "demo.msgpack"
    (spot / "junk").mkdir(parents=True)
    cache.write_record("simple-v1", "k/demo.msgpack", {"a": 1})
    assert spot.is_file()
    assert cache.read_record("simple-v1", "k/demo.msgpack", dict) == {"a": 1}
