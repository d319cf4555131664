"""The layout of an archive is computed once and kept inside the archive directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kea.errors import KeaError
from kea.install.plan import WantedDist
from kea.install.wheel import LAYOUT_FILE, keep_layout, read_wheel
from tests.install.helpers import archive, install, py, site_packages, target_of
from tests.install.test_install import DEMO


def test_layout_is_cached_and_gives_the_same_install(tmp_path: Path, venv: Path) -> None:
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    exe = str(venv / "bin" / "python")
    first = read_wheel(arch, exe)
    assert (arch / LAYOUT_FILE).is_file()
    # The RECORD is not read again: a second read gives the same layout without it.
    record = next(arch.glob("*.dist-info")) / "RECORD"
    saved = record.read_bytes()
    record.write_text("garbage\n")
    try:
        second = read_wheel(arch, exe)
    finally:
        record.write_bytes(saved)
    assert (second.kept_rows, second.others, second.dirs, second.tops) == (
        first.kept_rows,
        first.others,
        first.dirs,
        first.tops,
    )
    assert first.kept_rows  # the usual case: RECORD lines kept as they are
    assert second.launchers == first.launchers and first.launchers
    assert (second.name, second.version, second.dist_info) == ("demo-pkg", "1.0", first.dist_info)

    target = target_of(venv, tmp_path / "cache")
    install(target, WantedDist("demo-pkg", "1.0", arch))
    assert py(venv, "import demo_pkg; print(demo_pkg.VALUE)") == "41"
    out = subprocess.run([str(venv / "bin" / "demo-cli")], capture_output=True, text=True)
    assert out.stdout.strip() == "demo says hi"
    # The cached layout is kea's, not the wheel's: it is not installed.
    assert not (site_packages(venv) / LAYOUT_FILE).exists()


def test_launchers_follow_the_interpreter_not_the_cache(tmp_path: Path) -> None:
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    one = dict(read_wheel(arch, "/opt/one/bin/python").launchers)
    two = dict(read_wheel(arch, "/opt/two/bin/python").launchers)
    assert one["demo-cli"].startswith(b"#!/opt/one/bin/python\n")
    assert two["demo-cli"].startswith(b"#!/opt/two/bin/python\n")


def test_corrupt_or_foreign_layout_is_recomputed(tmp_path: Path) -> None:
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    good = read_wheel(arch, "/usr/bin/python3")
    for junk in (b"", b"\x00\x01not marshal", b"\xe9\x03\x00\x00\x00"):
        (arch / LAYOUT_FILE).write_bytes(junk)
        again = read_wheel(arch, "/usr/bin/python3")
        assert (again.kept_rows, again.others) == (good.kept_rows, good.others)
    import marshal

    (arch / LAYOUT_FILE).write_bytes(marshal.dumps(("kea-layout-0", "x")))
    assert read_wheel(arch, "/usr/bin/python3").others == good.others


def test_launchers_are_installers_and_a_cached_layout_does_not_import_it(tmp_path: Path) -> None:
    from installer.scripts import Script

    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    exe = "/opt/venv/bin/python"
    ours = dict(read_wheel(arch, exe).launchers)
    name, theirs = Script("demo-cli", "demo_pkg.sub.cli", "main", section="console").generate(
        exe, "posix"
    )
    assert ours[name] == theirs

    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kea.install.wheel import read_wheel\n"
        f"layout = read_wheel(Path({str(arch)!r}), {exe!r})\n"
        "print(sorted(n for n, _ in layout.launchers), 'installer' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "['demo-cli'] False"


def test_keep_layout_stores_it_ahead_and_leaves_a_bad_wheel_to_the_install(
    tmp_path: Path,
) -> None:
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    keep_layout(arch)
    kept = (arch / LAYOUT_FILE).read_bytes()
    record = next(arch.glob("*.dist-info")) / "RECORD"
    record.write_text("garbage\n")  # not read again: the kept layout answers
    assert read_wheel(arch, "/usr/bin/python3").name == "demo-pkg"
    keep_layout(arch)  # already there: left as it is
    assert (arch / LAYOUT_FILE).read_bytes() == kept

    bad = archive(tmp_path / "bad", "demo-pkg", "1.0", **DEMO)
    bad_record = next(bad.glob("*.dist-info")) / "RECORD"
    bad_record.write_text(bad_record.read_text() + "../escape.py,,\n")
    keep_layout(bad)  # no error here, and nothing kept
    assert not (bad / LAYOUT_FILE).exists()
    with pytest.raises(KeaError, match="escape"):
        read_wheel(bad, "/usr/bin/python3")


def test_a_layout_kept_by_this_process_is_taken_from_memory_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kea.install.wheel import _load_layout, read_wheels

    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    keep_layout(arch)
    on_disk = _load_layout(arch)
    assert on_disk is not None
    (arch / LAYOUT_FILE).unlink()  # not read back: the layout kept in memory answers
    exe = "/opt/venv/bin/python"
    with ThreadPoolExecutor(1) as pool:
        [got] = read_wheels([arch], exe, pool)
        assert not (arch / LAYOUT_FILE).exists()
        fields = ("name", "version", "dist_info", "kept_rows", "others", "dirs", "tops")
        assert [getattr(got, f) for f in fields] == [getattr(on_disk, f) for f in fields]
        assert got.entry_points == on_disk.entry_points
        assert dict(got.launchers)["demo-cli"].startswith(b"#!/opt/venv/bin/python\n")
        # Taken once: the next install reads the archive again (here it computes and keeps
        # the layout file anew, the first one being gone).
        [again] = read_wheels([arch], exe, pool)
        assert (arch / LAYOUT_FILE).is_file()
        assert again.kept_rows == got.kept_rows


@pytest.mark.parametrize("name", ["WHEEL", "RECORD", "entry_points.txt"])
def test_a_dist_info_file_that_is_not_utf8_is_named_in_one_error(tmp_path: Path, name: str) -> None:
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    path = next(arch.glob("*.dist-info")) / name
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    keep_layout(arch)  # left to the install, which reports it
    assert not (arch / LAYOUT_FILE).exists()
    with pytest.raises(KeaError, match=rf"demo_pkg-1\.0\.dist-info/{name} is not UTF-8") as e:
        read_wheel(arch, "/usr/bin/python3")
    assert e.value.hint == "the wheel is malformed; nothing was installed"
